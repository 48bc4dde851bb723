// Package throttle limits password guessing per client address prefix and
// per login, with exponential backoff: an [auth.Limiter] for the Manager and
// every edge that checks passwords.
package throttle

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"net/netip"
	"sync"
	"time"

	"github.com/appauth/appauth/auth"
)

// Options configure a [Throttle]. Every zero field takes the default
// given on it; the defaults are explained in the [Throttle] documentation.
type Options struct {
	// Now is the clock. Default: time.Now.
	Now func() time.Time

	// IPv4PrefixLen and IPv6PrefixLen group client addresses: failures are
	// counted per prefix. Default 32 (one IPv4 address) and 64 (one IPv6
	// subnet, since one host can use any address of its /64).
	IPv4PrefixLen int
	IPv6PrefixLen int

	// AddressLimit is how many failures one address prefix may have before it
	// must wait BaseDelay, doubling with every further failure. Default 10.
	AddressLimit int
	// LoginLimit is how many failures one login may have, from addresses
	// without a recent success for it, before such addresses must wait
	// BaseDelay, doubling with every further failure. Default 20.
	LoginLimit int
	// LoginLockout is how many such failures lock the login for addresses
	// without a recent success until ForgetAfter has passed. Default 100,
	// NIST SP 800-63B's maximum of consecutive failures per account.
	LoginLockout int

	// TrustedLoginLimit is how many failures one login may have from one
	// address prefix, trusted or not, before that prefix must wait
	// BaseDelay for it, doubling with every further failure; from
	// LoginLockout such failures on, the prefix is refused for the login
	// until ForgetAfter has passed. No success clears this count. Default
	// 50 (or LoginLockout, if lower).
	TrustedLoginLimit int

	// BaseDelay is the first wait; it doubles with every failure up to
	// MaxDelay. Default 1s and 15m.
	BaseDelay time.Duration
	MaxDelay  time.Duration
	// ForgetAfter is how long failures are remembered after the last one.
	// Default 24h; it must be at least MaxDelay.
	ForgetAfter time.Duration
	// TrustFor is how long a successful login from an address prefix keeps
	// that prefix exempt from the login's limits. Default 30 days.
	TrustFor time.Duration

	// MaxEntries bounds each of the three tables (address prefixes, logins,
	// and logins per prefix). Default 10,000 (about 4 MB in all). Set it above the number of
	// people active within TrustFor, so that their trusted prefixes stay.
	MaxEntries int
}

// Throttle limits password guessing, per client address prefix and per
// login, with exponential backoff. It implements [auth.Limiter]: pass it as
// [auth.Options].Limiter to the Manager, which checks app passwords and
// (through [auth.Manager.VerifyAccountPassword]) account passwords for every
// edge, so that every kind of guess counts together. It keeps everything in
// memory (each server its own), starts no goroutine and is safe for
// concurrent use. Logins are compared in their [auth.CanonicalLogin] form, so
// "sam", "SAM" and fullwidth "ｓａｍ" share one count.
//
// # Per address prefix
//
// Each IPv4 address and each IPv6 /64 may fail AddressLimit (10) times; then
// it waits 1s, 2s, 4s ... up to MaxDelay (15m) after each further failure,
// and gets [auth.ThrottleError] (HTTP 429 with Retry-After) meanwhile. A
// success of a login from the prefix takes that login's failures from there
// off the prefix's count, and no one else's: neither the attacker's own
// account nor the victim's phone behind the same NAT resets the count of
// guesses at other logins. Failures are forgotten 24h after the last one.
// Ten is enough for a person retyping and for clients that retry a refused
// request a few times; a repeat of the same failed username and password
// counts once, so a device with a stale password does not throttle its
// network.
//
// # Per login
//
// Failures against one login count from address prefixes that have not
// logged in to it successfully within TrustFor. After LoginLimit (20) such
// failures, untrusted prefixes wait with the same backoff; after
// LoginLockout (100) they are refused until ForgetAfter (24h) has passed
// since the last counted failure. So a login gets at most 100 guesses from
// the whole internet in about two days, within NIST's limit, while an
// attacker cannot lock the real user out of the devices and networks they
// already use: those prefixes are trusted and do not see the login's
// count. The cost: during an attack, a new device on a new network must wait.
// A success does not clear a login's count, or a phone syncing every few
// minutes would hand an attacker a fresh allowance each time.
//
// # Per login and address prefix
//
// A trusted prefix still has a bound of its own: every failure against a
// login from a prefix, trusted or not, counts in that pair's budget, which
// no success clears. After TrustedLoginLimit (50) it waits with the same
// backoff, and after LoginLockout (100) the pair is refused until
// ForgetAfter has passed. So no address gets more than LoginLockout guesses
// at one account per ForgetAfter, whoever else signs in from it.
//
// # Attempts in flight
//
// An allowed attempt counts as a provisional failure of its prefix, login
// and pair until its outcome is reported with Done (or Cancel, for an
// outage, which counts neither way), or until 10 seconds have passed (an
// outcome never reported). A burst of
// parallel attempts therefore cannot pass a limit: at most the remaining
// allowance is in flight at once, and beyond a limit one attempt at a time.
//
// # Memory and eviction
//
// Each table (address prefixes, logins, and pairs of the two) holds at most
// MaxEntries entries. To add one to a full table,
// the Throttle samples 8 entries and evicts the least valuable: forgotten
// ones first, then by failure count, with blocking entries, entries with
// attempts in flight and logins with a trusted prefix kept over one-failure
// entries. An attacker rotating usernames or addresses therefore mostly evicts
// its own one-failure entries; flushing a blocked login would need 8
// sampled entries all at least as bad, which the flood itself never makes.
// What eviction does give up: an attacker with more address prefixes than
// MaxEntries can shed per-address counts (the per-login limit still holds),
// and one that fills the login table with blocked logins can make the
// Throttle forget other logins' trusted prefixes. Neither grows memory.
//
// The Throttle never fails to record: a full table evicts rather than
// forgetting the new failure, and an address it cannot parse (for example a
// Unix socket peer) is counted in one bucket shared by all such clients
// rather than exempted. A username that is no valid login
// ([auth.CanonicalLogin] refuses it) names no account and counts for its
// address only.
type Throttle struct {
	opts Options
	seed maphash.Seed

	mu     sync.Mutex
	addrs  map[netip.Prefix]*record
	logins map[uint64]*loginRecord
	pairs  map[pairKey]*pairRecord
}

var (
	_ auth.Limiter         = (*Throttle)(nil)
	_ auth.LimiterCanceler = (*Throttle)(nil)
)

// record counts failures of one address prefix, login or pair.
type record struct {
	failures     int
	last         int64 // last counted failure, Unix nanoseconds
	blockedUntil int64
	// recent holds fingerprints of the last failed username and password
	// pairs, so that a client repeating one failure counts once.
	recent [4]uint64
	next   int
	// pending counts allowed attempts whose outcome is not reported yet:
	// provisional failures. They all expire at pendingUntil, in case the
	// outcomes are never reported.
	pending      int
	pendingUntil int64
}

// pendingTimeout bounds how long an attempt in flight counts as a
// provisional failure when its outcome is never reported (an outage).
const pendingTimeout = 10 * time.Second

type loginRecord struct {
	record
	trusted [4]trustedPrefix
}

// pairKey names one login from one address prefix.
type pairKey struct {
	prefix netip.Prefix
	login  uint64
}

// pairRecord counts a login's failures from one prefix. Its record is the
// budget no success clears; cleared counts the failures that a success of
// the login there takes off the prefix's count.
type pairRecord struct {
	record
	clearable int
}

type trustedPrefix struct {
	prefix netip.Prefix
	at     int64
}

// New returns a Throttle; opts may be nil for the defaults.
func New(opts *Options) (*Throttle, error) {
	o := Options{}
	if opts != nil {
		o = *opts
	}
	if o.Now == nil {
		o.Now = time.Now
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
	defInt(&o.IPv4PrefixLen, 32)
	defInt(&o.IPv6PrefixLen, 64)
	defInt(&o.AddressLimit, 10)
	defInt(&o.LoginLimit, 20)
	defInt(&o.LoginLockout, 100)
	defInt(&o.TrustedLoginLimit, min(50, o.LoginLockout))
	defInt(&o.MaxEntries, 10_000)
	defDur(&o.BaseDelay, time.Second)
	defDur(&o.MaxDelay, 15*time.Minute)
	defDur(&o.ForgetAfter, 24*time.Hour)
	defDur(&o.TrustFor, 30*24*time.Hour)
	switch {
	case o.IPv4PrefixLen < 0 || o.IPv4PrefixLen > 32:
		return nil, fmt.Errorf("throttle: Options.IPv4PrefixLen %d: want 1-32", o.IPv4PrefixLen)
	case o.IPv6PrefixLen < 0 || o.IPv6PrefixLen > 128:
		return nil, fmt.Errorf("throttle: Options.IPv6PrefixLen %d: want 1-128", o.IPv6PrefixLen)
	case o.AddressLimit < 0 || o.LoginLimit < 0 || o.LoginLockout < 0 || o.TrustedLoginLimit < 0 || o.MaxEntries < 0:
		return nil, errors.New("throttle: Options: limits and MaxEntries must not be negative")
	case o.LoginLockout < o.LoginLimit:
		return nil, fmt.Errorf("throttle: Options.LoginLockout %d is below LoginLimit %d", o.LoginLockout, o.LoginLimit)
	case o.LoginLockout < o.TrustedLoginLimit:
		return nil, fmt.Errorf("throttle: Options.LoginLockout %d is below TrustedLoginLimit %d", o.LoginLockout, o.TrustedLoginLimit)
	case o.BaseDelay < 0 || o.MaxDelay < o.BaseDelay:
		return nil, errors.New("throttle: Options: need 0 < BaseDelay <= MaxDelay")
	case o.ForgetAfter < o.MaxDelay:
		return nil, errors.New("throttle: Options: ForgetAfter must be at least MaxDelay")
	case o.TrustFor < 0:
		return nil, errors.New("throttle: Options.TrustFor must not be negative")
	}
	return &Throttle{
		opts:   o,
		seed:   maphash.MakeSeed(),
		addrs:  make(map[netip.Prefix]*record),
		logins: make(map[uint64]*loginRecord),
		pairs:  make(map[pairKey]*pairRecord),
	}, nil
}

// Allow returns a [*auth.ThrottleError] when c's address prefix, c's login
// from an address prefix without a recent success, or c's login from this
// prefix must wait. It never fails otherwise. An allowed attempt counts as
// a provisional failure until [Throttle.Done] reports its outcome.
func (t *Throttle) Allow(ctx context.Context, c auth.Attempt) error {
	now := t.opts.Now().UnixNano()
	prefix := t.prefix(c.RemoteAddr)
	login, hasLogin := t.loginKey(c.Username)
	t.mu.Lock()
	defer t.mu.Unlock()
	o := &t.opts
	var wait int64
	ar := t.addrs[prefix]
	if ar != nil {
		wait = ar.check(now, o.AddressLimit, 0, o)
	}
	var lr *loginRecord
	var pr *pairRecord
	trusted := false
	if hasLogin {
		lr = t.logins[login]
		pr = t.pairs[pairKey{prefix, login}]
		trusted = lr != nil && lr.trusts(prefix, now, o.TrustFor)
		if lr != nil && !trusted {
			wait = max(wait, lr.check(now, o.LoginLimit, o.LoginLockout, o))
		}
		if pr != nil {
			wait = max(wait, pr.check(now, o.TrustedLoginLimit, o.LoginLockout, o))
		}
	}
	if wait > 0 {
		return &auth.ThrottleError{RetryAfter: time.Duration(wait)}
	}
	if ar == nil {
		ar = t.addrRecord(prefix, now)
	}
	ar.begin(now)
	if hasLogin {
		if lr == nil {
			lr = t.loginRecord(login, now)
		}
		if pr == nil {
			pr = t.pairRecord(pairKey{prefix, login}, now)
		}
		lr.begin(now) // also from a trusted prefix: Done settles it either way
		pr.begin(now)
	}
	return nil
}

// Done records the outcome of an attempt and settles its provisional
// failure. A success of a login takes that login's failures from the
// address prefix off the prefix's count and trusts the prefix for the login;
// a failure counts against the prefix, against the pair of login and
// prefix, and against the login unless the prefix is trusted for it.
func (t *Throttle) Done(c auth.Attempt, success bool) {
	now := t.opts.Now().UnixNano()
	prefix := t.prefix(c.RemoteAddr)
	login, hasLogin := t.loginKey(c.Username)
	var fingerprint uint64
	if !success {
		fingerprint = t.fingerprint(c)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	o := &t.opts
	ar := t.addrs[prefix]
	var lr *loginRecord
	var pr *pairRecord
	if hasLogin {
		lr, pr = t.logins[login], t.pairs[pairKey{prefix, login}]
	}
	if ar != nil {
		ar.settle()
	}
	if lr != nil {
		lr.settle()
	}
	if pr != nil {
		pr.settle()
	}
	if success {
		if !hasLogin {
			return
		}
		if pr != nil && ar != nil {
			ar.failures = max(ar.failures-pr.clearable, 0)
			if ar.failures < o.AddressLimit {
				ar.blockedUntil = 0
			}
		}
		if pr != nil {
			pr.clearable = 0
		}
		if lr == nil {
			lr = t.loginRecord(login, now)
		}
		lr.trust(prefix, now)
		return
	}
	if ar == nil {
		ar = t.addrRecord(prefix, now)
	}
	counted := ar.fail(now, fingerprint, o.AddressLimit, 0, o)
	if !hasLogin {
		return
	}
	if lr == nil {
		lr = t.loginRecord(login, now)
	}
	if !lr.trusts(prefix, now, o.TrustFor) {
		lr.fail(now, fingerprint, o.LoginLimit, o.LoginLockout, o)
	}
	if pr == nil {
		pr = t.pairRecord(pairKey{prefix, login}, now)
	}
	pr.fail(now, fingerprint, o.TrustedLoginLimit, o.LoginLockout, o)
	if counted {
		pr.clearable++
	}
}

// Cancel settles an allowed attempt whose outcome is unknown (an outage)
// without counting it: it implements [auth.LimiterCanceler].
func (t *Throttle) Cancel(c auth.Attempt) {
	prefix := t.prefix(c.RemoteAddr)
	login, hasLogin := t.loginKey(c.Username)
	t.mu.Lock()
	defer t.mu.Unlock()
	if r := t.addrs[prefix]; r != nil {
		r.settle()
	}
	if !hasLogin {
		return
	}
	if r := t.logins[login]; r != nil {
		r.settle()
	}
	if r := t.pairs[pairKey{prefix, login}]; r != nil {
		r.settle()
	}
}

// addrRecord adds the record of an address prefix, evicting another if
// the table is full. t.mu is held.
func (t *Throttle) addrRecord(prefix netip.Prefix, now int64) *record {
	if len(t.addrs) >= t.opts.MaxEntries {
		evict(t.addrs, func(r *record) int64 { return r.value(now, &t.opts) })
	}
	r := &record{}
	t.addrs[prefix] = r
	return r
}

// pairRecord returns the record of a login from a prefix, adding it (and
// evicting another if the table is full) when missing. t.mu is held.
func (t *Throttle) pairRecord(k pairKey, now int64) *pairRecord {
	if r := t.pairs[k]; r != nil {
		return r
	}
	if len(t.pairs) >= t.opts.MaxEntries {
		evict(t.pairs, func(r *pairRecord) int64 { return r.value(now, &t.opts) })
	}
	r := &pairRecord{}
	t.pairs[k] = r
	return r
}

// loginRecord returns the record of login, adding it (and evicting another
// if the table is full) when missing. t.mu is held.
func (t *Throttle) loginRecord(login uint64, now int64) *loginRecord {
	if r := t.logins[login]; r != nil {
		return r
	}
	if len(t.logins) >= t.opts.MaxEntries {
		evict(t.logins, func(r *loginRecord) int64 {
			v := r.value(now, &t.opts)
			if r.anyTrusted(now, t.opts.TrustFor) {
				// A trusted prefix is what keeps its owner in during an
				// attack: keep it over anything but a worse attack.
				v += 2 * int64(t.opts.LoginLimit)
			}
			return v
		})
	}
	r := &loginRecord{}
	t.logins[login] = r
	return r
}

// evict removes the least valuable of up to 8 entries of m, sampled from a
// random position (Go randomizes where map iteration starts).
func evict[K comparable, V any](m map[K]V, value func(V) int64) {
	var victim K
	best, n := int64(0), 0
	for k, v := range m {
		if s := value(v); n == 0 || s < best {
			victim, best = k, s
		}
		if n++; n == 8 {
			break
		}
	}
	if n > 0 {
		delete(m, victim)
	}
}

// value ranks a record for eviction: its live failure count, doubled, plus
// one while it blocks, plus its attempts in flight.
func (r *record) value(now int64, o *Options) int64 {
	v := int64(r.inflight(now))
	if now-r.last >= int64(o.ForgetAfter) {
		return v
	}
	v += 2 * int64(r.failures)
	if r.blockedUntil > now {
		v++
	}
	return v
}

// inflight returns the attempts in flight that have not expired.
func (r *record) inflight(now int64) int {
	if r.pendingUntil <= now {
		return 0
	}
	return r.pending
}

// begin counts an allowed attempt as a provisional failure.
func (r *record) begin(now int64) {
	r.pending = r.inflight(now) + 1
	r.pendingUntil = now + int64(pendingTimeout)
}

// settle ends an attempt's provisional failure.
func (r *record) settle() {
	if r.pending > 0 {
		r.pending--
	}
}

// check returns how long the record makes the next attempt wait, in
// nanoseconds: the block of its last failure, or, while failures and
// attempts in flight together reach limit (or lockout), until one of those
// in flight is settled, at most BaseDelay at a time. So below the limit at
// most the remaining allowance is in flight, and beyond it one attempt at a
// time.
func (r *record) check(now int64, limit, lockout int, o *Options) int64 {
	failures := r.failures
	if now-r.last >= int64(o.ForgetAfter) {
		failures = 0
	} else if r.blockedUntil > now {
		return r.blockedUntil - now
	}
	p := r.inflight(now)
	if p > 0 && (failures+p >= limit || lockout > 0 && failures+p >= lockout) {
		return min(r.pendingUntil-now, int64(o.BaseDelay))
	}
	return 0
}

// fail counts a failure unless it repeats a recent one (then it reports
// false), and sets the block: none up to limit-1 failures, then BaseDelay doubling per failure
// up to MaxDelay, and ForgetAfter from lockout failures on (0: never).
func (r *record) fail(now int64, fingerprint uint64, limit, lockout int, o *Options) (counted bool) {
	if now-r.last >= int64(o.ForgetAfter) {
		*r = record{pending: r.pending, pendingUntil: r.pendingUntil}
	}
	for _, f := range r.recent {
		if f == fingerprint && f != 0 {
			return false
		}
	}
	r.recent[r.next] = fingerprint
	r.next = (r.next + 1) % len(r.recent)
	r.failures++
	r.last = now
	switch {
	case lockout > 0 && r.failures >= lockout:
		r.blockedUntil = now + int64(o.ForgetAfter)
	case r.failures >= limit:
		d := o.MaxDelay
		// BaseDelay<<n only while it stays within MaxDelay: beyond, it would
		// overflow to a negative wait (no block at all).
		if n := r.failures - limit; n < 63 && o.BaseDelay <= o.MaxDelay>>n {
			d = o.BaseDelay << n
		}
		r.blockedUntil = now + int64(d)
	}
	return true
}

// trusts reports whether prefix logged in successfully within trustFor.
func (r *loginRecord) trusts(prefix netip.Prefix, now int64, trustFor time.Duration) bool {
	for _, tp := range r.trusted {
		if tp.prefix == prefix && tp.at != 0 && now-tp.at < int64(trustFor) {
			return true
		}
	}
	return false
}

func (r *loginRecord) anyTrusted(now int64, trustFor time.Duration) bool {
	for _, tp := range r.trusted {
		if tp.at != 0 && now-tp.at < int64(trustFor) {
			return true
		}
	}
	return false
}

// trust records a success from prefix, replacing the oldest entry if the
// prefix is new.
func (r *loginRecord) trust(prefix netip.Prefix, now int64) {
	oldest := 0
	for i, tp := range r.trusted {
		if tp.prefix == prefix && tp.at != 0 {
			r.trusted[i].at = now
			return
		}
		if tp.at < r.trusted[oldest].at {
			oldest = i
		}
	}
	r.trusted[oldest] = trustedPrefix{prefix: prefix, at: now}
}

// prefix returns the masked prefix of addr ("192.0.2.1", "[2001:db8::1]:443"
// or "192.0.2.1:80"), or the zero Prefix, one shared bucket, when addr is
// not an IP address.
func (t *Throttle) prefix(addr string) netip.Prefix {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		ap, err := netip.ParseAddrPort(addr)
		if err != nil {
			return netip.Prefix{}
		}
		a = ap.Addr()
	}
	a = a.Unmap().WithZone("")
	bits := t.opts.IPv6PrefixLen
	if a.Is4() {
		bits = t.opts.IPv4PrefixLen
	}
	p, _ := a.Prefix(bits)
	return p
}

// loginKey identifies a login by its canonical form, as the Manager and
// the directories match them, in fixed size whatever its length. It
// reports false for no username or one that is no valid login.
func (t *Throttle) loginKey(username string) (uint64, bool) {
	if username == "" {
		return 0, false
	}
	login, err := auth.CanonicalLogin(username)
	if err != nil {
		return 0, false
	}
	return maphash.String(t.seed, login), true
}

// fingerprint identifies a failed username and password pair in memory
// only, keyed by a per-process random seed; it never leaves the Throttle.
func (t *Throttle) fingerprint(c auth.Attempt) uint64 {
	var h maphash.Hash
	h.SetSeed(t.seed)
	if login, err := auth.CanonicalLogin(c.Username); err == nil {
		h.WriteString(login)
	} else {
		h.WriteString(c.Username)
	}
	h.WriteByte(0)
	h.WriteString(c.Password)
	return h.Sum64() | 1 // never 0, which marks an empty slot
}

// size returns the number of entries in the address, login and pair tables.
func (t *Throttle) size() (addresses, logins, pairs int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.addrs), len(t.logins), len(t.pairs)
}
