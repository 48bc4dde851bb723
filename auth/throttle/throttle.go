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
	"strings"
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

	// MaxEntries bounds each of the two tables (address prefixes and
	// logins). Default 10,000 (about 3 MB in all). Set it above the number of
	// people active within TrustFor, so that their trusted prefixes stay.
	MaxEntries int
}

// Throttle limits password guessing, per client address prefix and per
// login, with exponential backoff. It implements [auth.Limiter]: pass it as
// [auth.Options].Limiter to the Manager, and the same one as the Limiter of
// the edges that check account passwords (httpauth, settings), so that
// every kind of guess counts together. It keeps everything in memory (each
// server its own), starts no goroutine and is safe for concurrent use.
//
// # Per address prefix
//
// Each IPv4 address and each IPv6 /64 may fail AddressLimit (10) times; then
// it waits 1s, 2s, 4s ... up to MaxDelay (15m) after each further failure,
// and gets [auth.ThrottleError] (HTTP 429 with Retry-After) meanwhile. A
// success from the prefix clears its count; failures are forgotten 24h after
// the last one. Ten is enough for a person retyping and for clients that
// retry a refused request a few times; a repeat of the same failed username
// and password counts once, so a device with a stale password does not
// throttle its network. After that, one address gets about 100 guesses a day.
//
// # Per login
//
// Failures against one login count only from address prefixes that have not
// logged in to it successfully within TrustFor. After LoginLimit (20) such
// failures, untrusted prefixes wait with the same backoff; after
// LoginLockout (100) they are refused until ForgetAfter (24h) has passed
// since the last counted failure. So a login gets at most 100 guesses from
// the whole internet in about two days, within NIST's limit, while an
// attacker cannot lock the real user out of the devices and networks they
// already use: those prefixes are trusted and see only their own per-address
// limit. The cost: during an attack, a new device on a new network must wait.
// A success does not clear a login's count, or a phone syncing every few
// minutes would hand an attacker a fresh allowance each time.
//
// # Memory and eviction
//
// Each table holds at most MaxEntries entries. To add one to a full table,
// the Throttle samples 8 entries and evicts the least valuable: forgotten
// ones first, then by failure count, with blocking entries and logins with a
// trusted prefix kept over one-failure entries. An attacker rotating usernames or addresses therefore mostly evicts
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
// rather than exempted. Once an address prefix or login is one failure short
// of its limit, it gets one attempt at a time (the others wait at most
// BaseDelay), so parallel requests cannot all pass before the first of them
// fails; below that, a burst of parallel first attempts can exceed the limit
// once, by its size, and is then met by the backoff.
type Throttle struct {
	opts Options
	seed maphash.Seed

	mu     sync.Mutex
	addrs  map[netip.Prefix]*record
	logins map[uint64]*loginRecord
}

var _ auth.Limiter = (*Throttle)(nil)

// record counts failures of one address prefix or one login.
type record struct {
	failures     int
	last         int64 // last counted failure, Unix nanoseconds
	blockedUntil int64
	// recent holds fingerprints of the last failed username and password
	// pairs, so that a client repeating one failure counts once.
	recent [4]uint64
	next   int
	// probeUntil is set while the one attempt allowed at the edge of the
	// limit is in flight (see atEdge); it expires by itself in case the
	// attempt's outcome is never reported.
	probeUntil int64
}

// probeTimeout bounds how long an attempt in flight at the edge of a limit
// holds back the next one when its outcome is never reported (an outage).
const probeTimeout = 10 * time.Second

type loginRecord struct {
	record
	trusted [4]trustedPrefix
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
	case o.AddressLimit < 0 || o.LoginLimit < 0 || o.LoginLockout < 0 || o.MaxEntries < 0:
		return nil, errors.New("throttle: Options: limits and MaxEntries must not be negative")
	case o.LoginLockout < o.LoginLimit:
		return nil, fmt.Errorf("throttle: Options.LoginLockout %d is below LoginLimit %d", o.LoginLockout, o.LoginLimit)
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
	}, nil
}

// Allow returns a [*auth.ThrottleError] when c's address prefix, or c's
// login from an address prefix without a recent success, must wait.
// It never fails otherwise.
func (t *Throttle) Allow(ctx context.Context, c auth.Attempt) error {
	now := t.opts.Now().UnixNano()
	prefix := t.prefix(c.RemoteAddr)
	var login uint64
	if c.Username != "" {
		login = t.loginKey(c.Username)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var wait int64
	var edge []*record // records whose next failure blocks
	if r := t.addrs[prefix]; r != nil {
		wait = r.wait(now, t.opts.ForgetAfter)
		if r.atEdge(now, t.opts.AddressLimit, t.opts.ForgetAfter) {
			edge = append(edge, r)
		}
	}
	if c.Username != "" {
		if r := t.logins[login]; r != nil && !r.trusts(prefix, now, t.opts.TrustFor) {
			wait = max(wait, r.wait(now, t.opts.ForgetAfter))
			if r.atEdge(now, t.opts.LoginLimit, t.opts.ForgetAfter) {
				edge = append(edge, &r.record)
			}
		}
	}
	// At the edge of a limit, one attempt at a time: otherwise parallel
	// requests would all pass before the first of them fails and blocks.
	for _, r := range edge {
		if r.probeUntil > now {
			wait = max(wait, min(r.probeUntil-now, int64(t.opts.BaseDelay)))
		}
	}
	if wait > 0 {
		return &auth.ThrottleError{RetryAfter: time.Duration(wait)}
	}
	for _, r := range edge {
		r.probeUntil = now + int64(probeTimeout)
	}
	return nil
}

// Done records the outcome of an attempt. A success clears the address
// prefix's failures and trusts the prefix for the login; a failure counts
// against the prefix, and against the login unless the prefix is trusted
// for it.
func (t *Throttle) Done(c auth.Attempt, success bool) {
	now := t.opts.Now().UnixNano()
	prefix := t.prefix(c.RemoteAddr)
	var login, fingerprint uint64
	if c.Username != "" {
		login = t.loginKey(c.Username)
	}
	if !success {
		fingerprint = t.fingerprint(c)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if r := t.addrs[prefix]; r != nil {
		r.probeUntil = 0
	}
	if r := t.logins[login]; c.Username != "" && r != nil {
		r.probeUntil = 0
	}
	if success {
		delete(t.addrs, prefix)
		if c.Username != "" {
			t.loginRecord(login, now).trust(prefix, now)
		}
		return
	}
	r := t.addrs[prefix]
	if r == nil {
		if len(t.addrs) >= t.opts.MaxEntries {
			evict(t.addrs, func(r *record) int64 { return r.value(now, &t.opts) })
		}
		r = &record{}
		t.addrs[prefix] = r
	}
	r.fail(now, fingerprint, t.opts.AddressLimit, 0, &t.opts)
	if c.Username != "" {
		lr := t.loginRecord(login, now)
		if !lr.trusts(prefix, now, t.opts.TrustFor) {
			lr.fail(now, fingerprint, t.opts.LoginLimit, t.opts.LoginLockout, &t.opts)
		}
	}
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
// one while it blocks.
func (r *record) value(now int64, o *Options) int64 {
	if now-r.last >= int64(o.ForgetAfter) {
		return 0
	}
	v := 2 * int64(r.failures)
	if r.blockedUntil > now {
		v++
	}
	return v
}

// atEdge reports whether the record's next failure will block.
func (r *record) atEdge(now int64, limit int, forget time.Duration) bool {
	return now-r.last < int64(forget) && r.failures >= limit-1
}

// wait returns how long the record still blocks, in nanoseconds.
func (r *record) wait(now int64, forget time.Duration) int64 {
	if now-r.last >= int64(forget) || r.blockedUntil <= now {
		return 0
	}
	return r.blockedUntil - now
}

// fail counts a failure unless it repeats a recent one, then sets the
// block: none up to limit-1 failures, then BaseDelay doubling per failure
// up to MaxDelay, and ForgetAfter from lockout failures on (0: never).
func (r *record) fail(now int64, fingerprint uint64, limit, lockout int, o *Options) {
	if now-r.last >= int64(o.ForgetAfter) {
		*r = record{}
	}
	for _, f := range r.recent {
		if f == fingerprint && f != 0 {
			return
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

// loginKey identifies a login case-insensitively, as the Manager matches
// them, in fixed size whatever the username's length.
func (t *Throttle) loginKey(username string) uint64 {
	return maphash.String(t.seed, strings.ToLower(username))
}

// fingerprint identifies a failed username and password pair in memory
// only, keyed by a per-process random seed; it never leaves the Throttle.
func (t *Throttle) fingerprint(c auth.Attempt) uint64 {
	var h maphash.Hash
	h.SetSeed(t.seed)
	h.WriteString(strings.ToLower(c.Username))
	h.WriteByte(0)
	h.WriteString(c.Password)
	return h.Sum64() | 1 // never 0, which marks an empty slot
}

// size returns the number of entries in the address and login tables.
func (t *Throttle) size() (addresses, logins int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.addrs), len(t.logins)
}
