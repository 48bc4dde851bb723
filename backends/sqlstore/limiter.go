package sqlstore

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/lib/pq"

	"github.com/appauth/appauth/auth"
)

// LimiterOptions configure a [Limiter]. Every zero field takes the default
// given on it, the same as package auth/throttle's, so that N servers
// together allow what one server alone does.
type LimiterOptions struct {
	// Front, if set, is asked first and told every outcome: an in-memory
	// Limiter (auth/throttle's Throttle) that refuses a known attacker
	// without a query and counts this server's attempts in flight. It must
	// implement [auth.LimiterCanceler].
	Front auth.Limiter
	// AddressLimit, LoginLimit, TrustedLoginLimit and LoginLockout are the
	// failures an address prefix, a login from untrusted prefixes, a login
	// from one prefix, and a login in any case may have before it waits:
	// 10, 20, 50, 100.
	AddressLimit, LoginLimit, TrustedLoginLimit, LoginLockout int
	// BaseDelay is the first wait past a limit, doubled per further
	// failure up to MaxDelay: 1s and 15m.
	BaseDelay, MaxDelay time.Duration
	// ForgetAfter forgets failures this long after the last one: 24h.
	ForgetAfter time.Duration
	// TrustFor is how long a success trusts its prefix for the login: 30
	// days.
	TrustFor time.Duration
	// IPv4PrefixLen and IPv6PrefixLen mask client addresses: 32 and 64.
	IPv4PrefixLen, IPv6PrefixLen int
	// Timeout bounds each query: 2s. A read that fails or times out
	// refuses the attempt with [auth.ErrUnavailable] (fail closed).
	Timeout time.Duration
	// Key keys the hashes of logins stored in the table (at least 32
	// bytes, the same on every server; the pepper will do). Required.
	Key []byte
	// Logger receives failed writes. Nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Limiter is an [auth.Limiter] whose failure counts live in PostgreSQL, so
// that servers sharing the database share one budget per address prefix and
// per login: an attacker spreading guesses over N servers gets what one
// server allows, not N times that. It follows auth/throttle's rules (per
// prefix, per login from untrusted prefixes, per login and prefix, the same
// exponential backoff), with one indexed read per attempt (reused for a
// second while it finds no failure, so a device that keeps syncing costs
// no query) and one upsert per failure; a success writes only when it
// trusts a prefix anew (at most once an hour per login and prefix on each
// server) or clears the prefix's count.
//
// What stays per server: attempts in flight (counted in front, and here
// against the shared count, so a burst on one server cannot pass a limit,
// but N servers hit at the same instant can each spend the remaining
// allowance once), and the "a repeated failure counts once" rule (a device
// with a stale password counts at most once per server).
//
// Create it with [NewLimiter]; it starts no goroutine. Call [Limiter.Purge]
// now and then to delete forgotten rows.
type Limiter struct {
	s    *Store
	o    LimiterOptions
	read string
	fail string
	ok   string
	purg string
	// loginKey, derived from Key, keys the names of login rows.
	loginKey [64]byte

	mu      sync.Mutex
	pending map[string]int       // row key -> attempts in flight here
	trusted map[string]time.Time // pair key -> when this server last wrote its trust
	// clean remembers, for cleanFor, attempts whose rows had no failure:
	// a device that keeps signing in costs no query. A failure here forgets
	// its entry, so an attacker gains at most one stale allowance per
	// other server (its own entry there, at most cleanFor old).
	clean map[string]time.Time
	names map[string]keys // username and address -> row keys
	// recent holds, per pair (or address without a login), fingerprints of
	// the last failed passwords here, so that a device repeating one
	// stale password counts once per server, as with auth/throttle. The
	// fingerprints are keyed by a per-process seed and never stored.
	recent map[string]*[4]uint64
	seed   maphash.Seed
}

// cleanFor is how long a read that found no failure is reused.
const cleanFor = time.Second

var (
	_ auth.Limiter         = (*Limiter)(nil)
	_ auth.LimiterCanceler = (*Limiter)(nil)
)

// maxTrustMemo bounds the memory of recently written trusts.
const maxTrustMemo = 10_000

// trustRefresh is how often a server rewrites the trust of a login and
// prefix that keeps succeeding.
const trustRefresh = time.Hour

// NewLimiter returns a Limiter on the PostgreSQL Store s; opts may not be
// nil (Key is required).
func NewLimiter(s *Store, opts *LimiterOptions) (*Limiter, error) {
	if s.dialect != postgresDialect {
		return nil, errors.New("sqlstore: NewLimiter needs PostgreSQL (one SQLite file serves one server, whose in-memory throttle is enough)")
	}
	if opts == nil || len(opts.Key) < auth.MinPepperLen {
		return nil, fmt.Errorf("sqlstore: LimiterOptions.Key must be at least %d bytes", auth.MinPepperLen)
	}
	o := *opts
	if o.Front != nil {
		if _, ok := o.Front.(auth.LimiterCanceler); !ok {
			return nil, fmt.Errorf("sqlstore: LimiterOptions.Front %T has no Cancel", o.Front)
		}
	}
	defInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	defInt(&o.AddressLimit, 10)
	defInt(&o.LoginLimit, 20)
	defInt(&o.LoginLockout, 100)
	defInt(&o.TrustedLoginLimit, min(50, o.LoginLockout))
	defInt(&o.IPv4PrefixLen, 32)
	defInt(&o.IPv6PrefixLen, 64)
	defDur(&o.BaseDelay, time.Second)
	defDur(&o.MaxDelay, 15*time.Minute)
	defDur(&o.ForgetAfter, 24*time.Hour)
	defDur(&o.TrustFor, 30*24*time.Hour)
	defDur(&o.Timeout, 2*time.Second)
	switch {
	case o.AddressLimit < 0 || o.LoginLimit < 0 || o.TrustedLoginLimit < 0 || o.LoginLockout < o.LoginLimit || o.LoginLockout < o.TrustedLoginLimit:
		return nil, errors.New("sqlstore: LimiterOptions: limits must not be negative, LoginLockout at least the other login limits")
	case o.BaseDelay < 0 || o.MaxDelay < o.BaseDelay || o.ForgetAfter < o.MaxDelay || o.TrustFor < 0 || o.Timeout < 0:
		return nil, errors.New("sqlstore: LimiterOptions: need 0 < BaseDelay <= MaxDelay <= ForgetAfter and no negative duration")
	case o.IPv4PrefixLen < 1 || o.IPv4PrefixLen > 32 || o.IPv6PrefixLen < 1 || o.IPv6PrefixLen > 128:
		return nil, errors.New("sqlstore: LimiterOptions: prefix lengths out of range")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	t := s.prefix + "throttle"
	m := hmac.New(sha256.New, o.Key)
	m.Write([]byte("appauth throttle login"))
	var lk [64]byte
	copy(lk[:], m.Sum(nil))
	o.Key = nil
	return &Limiter{
		s: s, o: o, loginKey: lk,
		read: "SELECT key, failures, clearable, last_at FROM " + t + " WHERE key = ANY($1)",
		// One statement per failure: the prefix's, the pair's and (unless
		// the prefix is trusted for the login) the login's count, each
		// restarting at 1 when its last failure is forgotten.
		fail: "INSERT INTO " + t + " AS r (key, failures, clearable, last_at) " +
			"SELECT k, 1, c, $5 FROM (VALUES ($1::text, 0), ($2::text, 1), ($3::text, 0)) v(k, c) " +
			"WHERE k IS NOT NULL AND (k IS DISTINCT FROM $3::text OR NOT EXISTS " +
			"(SELECT 1 FROM " + t + " WHERE key = $4::text AND last_at > $6)) " +
			"ON CONFLICT (key) DO UPDATE SET " +
			"failures = CASE WHEN r.last_at <= $7 THEN 1 ELSE r.failures + 1 END, " +
			"clearable = CASE WHEN r.last_at <= $7 THEN EXCLUDED.clearable ELSE r.clearable + EXCLUDED.clearable END, " +
			"last_at = EXCLUDED.last_at",
		// A success trusts the prefix for the login and takes the login's
		// failures from there off the prefix's count. It locks the
		// prefix's row and then the pair's (p, read first by c), the order
		// in which a failure's upsert takes them: in the other order, a
		// failure and a success at once deadlocked.
		ok: "WITH p AS (SELECT key, clearable FROM " + t + " WHERE key IN ($1, $2) ORDER BY key FOR UPDATE), " +
			"c AS (UPDATE " + t + " SET clearable = 0 WHERE key = $2 AND EXISTS (SELECT 1 FROM p WHERE key = $2 AND clearable > 0)), " +
			"a AS (UPDATE " + t + " SET failures = GREATEST(failures - (SELECT clearable FROM p WHERE key = $2), 0) " +
			"WHERE key = $1 AND EXISTS (SELECT 1 FROM p WHERE key = $2 AND clearable > 0)) " +
			"INSERT INTO " + t + " (key, failures, clearable, last_at) VALUES ($3, 0, 0, $4) " +
			"ON CONFLICT (key) DO UPDATE SET last_at = EXCLUDED.last_at",
		purg:    "DELETE FROM " + t + " WHERE (key LIKE 't:%' AND last_at <= $1) OR (key NOT LIKE 't:%' AND last_at <= $2)",
		pending: make(map[string]int),
		trusted: make(map[string]time.Time),
		clean:   make(map[string]time.Time),
		names:   make(map[string]keys),
		recent:  make(map[string]*[4]uint64),
		seed:    maphash.MakeSeed(),
	}, nil
}

// keys names the rows of an attempt: address prefix, pair, login and
// trust; the last three are empty without a valid login.
type keys struct{ addr, pair, login, trust string }

func (l *Limiter) keys(a auth.Attempt) keys {
	// Names are remembered: a device's attempts (Allow and Done each)
	// would otherwise canonicalize and hash its login every time.
	id := a.Username + "\x00" + a.RemoteAddr
	l.mu.Lock()
	k, ok := l.names[id]
	l.mu.Unlock()
	if ok {
		return k
	}
	k = l.name(a)
	l.mu.Lock()
	if len(l.names) >= maxTrustMemo {
		clear(l.names)
	}
	l.names[id] = k
	l.mu.Unlock()
	return k
}

func (l *Limiter) name(a auth.Attempt) keys {
	k := keys{addr: "a:" + l.prefix(a.RemoteAddr)}
	if a.Username == "" {
		return k
	}
	login, err := auth.CanonicalLogin(a.Username)
	if err != nil {
		return k
	}
	// SHA-256 of a secret 64-byte block and the login: keyed like an HMAC's
	// inner hash, at a third of its cost (this runs twice per attempt). The
	// digest only names a row; it authenticates nothing.
	buf := make([]byte, 0, 64+len(login))
	sum := sha256.Sum256(append(append(buf, l.loginKey[:]...), login...))
	h := hex.EncodeToString(sum[:16])
	p := strings.TrimPrefix(k.addr, "a:")
	return keys{addr: k.addr, pair: "p:" + p + "|" + h, login: "l:" + h, trust: "t:" + p + "|" + h}
}

func (k keys) memo() string { return k.addr + "\x00" + k.login }

func (k keys) list() []string {
	if k.login == "" {
		return []string{k.addr}
	}
	return []string{k.addr, k.pair, k.login, k.trust}
}

// prefix masks addr ("192.0.2.1", "[2001:db8::1]:443") to its prefix; an
// address that does not parse shares one bucket.
func (l *Limiter) prefix(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		ap, err := netip.ParseAddrPort(addr)
		if err != nil {
			return "-"
		}
		a = ap.Addr()
	}
	a = a.Unmap().WithZone("")
	bits := l.o.IPv6PrefixLen
	if a.Is4() {
		bits = l.o.IPv4PrefixLen
	}
	p, _ := a.Prefix(bits)
	return p.String()
}

type count struct {
	failures, clearable int
	last                time.Time
}

// Allow asks Front, then reads the shared counts (one indexed query) and
// returns a [*auth.ThrottleError] when the prefix, the login (from an
// untrusted prefix) or the pair must wait, or [auth.ErrUnavailable] when the
// database cannot answer.
func (l *Limiter) Allow(ctx context.Context, a auth.Attempt) error {
	if f := l.o.Front; f != nil {
		if err := f.Allow(ctx, a); err != nil {
			return err
		}
	}
	k := l.keys(a)
	now := l.o.Now()
	l.mu.Lock()
	at, memo := l.clean[k.memo()]
	l.mu.Unlock()
	var counts map[string]count
	if !memo || now.Sub(at) >= cleanFor || now.Before(at) {
		var err error
		if counts, err = l.counts(ctx, k); err != nil {
			l.cancelFront(a)
			return fmt.Errorf("sqlstore: limiter: %w", err)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if counts != nil {
		l.remember(k, counts, now)
	}
	wait := l.wait(counts[k.addr], l.pending[k.addr], l.o.AddressLimit, 0, now)
	if k.login != "" {
		tr, ok := counts[k.trust]
		if !ok || now.Sub(tr.last) >= l.o.TrustFor {
			wait = max(wait, l.wait(counts[k.login], l.pending[k.login], l.o.LoginLimit, l.o.LoginLockout, now))
		}
		wait = max(wait, l.wait(counts[k.pair], l.pending[k.pair], l.o.TrustedLoginLimit, l.o.LoginLockout, now))
		if counts[k.pair].clearable > 0 {
			delete(l.trusted, k.pair) // a success must clear them
		}
	}
	if wait > 0 {
		l.cancelFront(a)
		return &auth.ThrottleError{RetryAfter: wait}
	}
	for _, key := range []string{k.addr, k.pair, k.login} {
		if key != "" {
			l.pending[key]++
		}
	}
	return nil
}

// remember memoizes a read that found no failure (or forgets one that
// did). l.mu is held.
func (l *Limiter) remember(k keys, counts map[string]count, now time.Time) {
	for key, c := range counts {
		if c.failures > 0 && key != k.trust {
			delete(l.clean, k.memo())
			return
		}
	}
	if len(l.clean) >= maxTrustMemo {
		clear(l.clean)
	}
	l.clean[k.memo()] = now
}

func (l *Limiter) counts(ctx context.Context, k keys) (map[string]count, error) {
	out, err := bounded(l, ctx, func(ctx context.Context) (map[string]count, error) {
		rows, err := l.s.db.QueryContext(ctx, l.read, pq.Array(k.list()))
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		out := make(map[string]count, 4)
		for rows.Next() {
			var key string
			var c count
			var last dbTime
			if err := rows.Scan(&key, &c.failures, &c.clearable, &last); err != nil {
				return nil, err
			}
			c.last = last.t
			out[key] = c
		}
		return out, rows.Err()
	})
	if err != nil {
		return nil, translate("read throttle", err)
	}
	return out, nil
}

// bounded runs f under LimiterOptions.Timeout, also on a Store that does
// not honor its context (see waitBounded).
func bounded[T any](l *Limiter, ctx context.Context, f func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, l.o.Timeout)
	defer cancel()
	return waitBounded(l.s, ctx, f)
}

// wait is how long a row with c makes the next attempt wait: the block of
// its last failure, or while failures and this server's attempts in flight
// reach the limit, BaseDelay (one attempt at a time past a limit).
func (l *Limiter) wait(c count, pending, limit, lockout int, now time.Time) time.Duration {
	failures := c.failures
	if c.last.IsZero() || now.Sub(c.last) >= l.o.ForgetAfter {
		failures = 0
	}
	var block time.Duration
	switch {
	case lockout > 0 && failures >= lockout:
		block = l.o.ForgetAfter
	case failures >= limit:
		block = l.o.MaxDelay
		if n := failures - limit; n < 63 && l.o.BaseDelay <= l.o.MaxDelay>>n {
			block = l.o.BaseDelay << n
		}
	}
	if until := c.last.Add(block); block > 0 && until.After(now) {
		return until.Sub(now)
	}
	if pending > 0 && (failures+pending >= limit || lockout > 0 && failures+pending >= lockout) {
		return l.o.BaseDelay
	}
	return 0
}

func (l *Limiter) cancelFront(a auth.Attempt) {
	if f := l.o.Front; f != nil {
		f.(auth.LimiterCanceler).Cancel(a)
	}
}

// settle ends an attempt in flight on this server.
func (l *Limiter) settle(k keys, failed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if failed {
		delete(l.clean, k.memo())
	}
	for _, key := range []string{k.addr, k.pair, k.login} {
		if key == "" {
			continue
		}
		if l.pending[key] <= 1 {
			delete(l.pending, key)
		} else {
			l.pending[key]--
		}
	}
}

// Done records the outcome: a failure is one upsert; a success writes only
// to trust the prefix anew or to clear the prefix's count. A write that
// fails is logged (the count is then lost: Allow still fails closed while
// the database is down).
func (l *Limiter) Done(a auth.Attempt, success bool) {
	if f := l.o.Front; f != nil {
		f.Done(a, success)
	}
	k := l.keys(a)
	l.settle(k, !success)
	now := l.o.Now()
	if !success {
		if l.repeated(k, a) {
			return
		}
		_, err := bounded(l, context.Background(), func(ctx context.Context) (sql.Result, error) {
			return l.s.db.ExecContext(ctx, l.fail, k.addr, nullString(k.pair), nullString(k.login), nullString(k.trust),
				now.UTC(), now.Add(-l.o.TrustFor).UTC(), now.Add(-l.o.ForgetAfter).UTC())
		})
		if err != nil {
			l.o.Logger.Warn("sqlstore: limiter: cannot record a failure", "error", translate("record failure", err))
		}
		return
	}
	if k.login == "" {
		return
	}
	l.mu.Lock()
	at, ok := l.trusted[k.pair]
	fresh := ok && now.Sub(at) < trustRefresh && now.After(at)
	if !fresh {
		if len(l.trusted) >= maxTrustMemo {
			clear(l.trusted)
		}
		l.trusted[k.pair] = now
	}
	l.mu.Unlock()
	if fresh {
		return
	}
	if _, err := bounded(l, context.Background(), func(ctx context.Context) (sql.Result, error) {
		return l.s.db.ExecContext(ctx, l.ok, k.addr, k.pair, k.trust, now.UTC())
	}); err != nil {
		l.mu.Lock()
		delete(l.trusted, k.pair)
		l.mu.Unlock()
		l.o.Logger.Warn("sqlstore: limiter: cannot record a success", "error", translate("record success", err))
	}
}

// repeated reports whether a's username and password failed here among
// the last four failures of its pair, and remembers them otherwise.
func (l *Limiter) repeated(k keys, a auth.Attempt) bool {
	var h maphash.Hash
	h.SetSeed(l.seed)
	h.WriteString(a.Username)
	h.WriteByte(0)
	h.WriteString(a.Password)
	f := h.Sum64() | 1 // never 0, an empty slot
	id := k.pair
	if id == "" {
		id = k.addr
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.recent[id]
	if r == nil {
		if len(l.recent) >= maxTrustMemo {
			clear(l.recent)
		}
		r = new([4]uint64)
		l.recent[id] = r
	}
	for _, x := range r {
		if x == f {
			return true
		}
	}
	copy(r[1:], r[:3])
	r[0] = f
	return false
}

// Cancel settles an allowed attempt whose outcome is unknown, counting it
// neither way: it implements [auth.LimiterCanceler].
func (l *Limiter) Cancel(a auth.Attempt) {
	l.cancelFront(a)
	l.settle(l.keys(a), false)
}

// Purge deletes counts whose last failure is forgotten and trusts older
// than TrustFor, and returns how many rows it deleted. It ends once ctx is
// done.
func (l *Limiter) Purge(ctx context.Context) (int, error) {
	now := l.o.Now()
	res, err := waitBounded(l.s, ctx, func(ctx context.Context) (sql.Result, error) {
		return l.s.db.ExecContext(ctx, l.purg, now.Add(-l.o.TrustFor).UTC(), now.Add(-l.o.ForgetAfter).UTC())
	})
	if err != nil {
		return 0, translate("purge throttle", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }
