package auth

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"runtime"
	"time"
)

// Pepper is a secret HMAC key for credential hashes. Keep it outside the
// database: with it, a stolen database cannot even be brute-forced offline.
type Pepper struct {
	// ID names the key in stored records, so keys can be rotated. 1-32
	// characters of [A-Za-z0-9._-].
	ID string
	// Key is at least 32 bytes from a cryptographic random source.
	Key []byte
}

// MinPepperLen is the shortest [Pepper] key accepted.
const MinPepperLen = 32

// Options configure a [Manager]. Only Peppers is required; every zero field
// takes the default given on it.
type Options struct {
	// Peppers are the HMAC keys. The last one issues new credentials; all of
	// them verify. Required.
	Peppers []Pepper
	// SharedPeppers says that several servers share the store (and must
	// share the pepper file): [Manager.Check] then refuses a key that is
	// not the one recorded for its ID even when no stored credential uses
	// it yet, since another server may be issuing under the recorded key
	// at this moment. Without it, such a key is recorded anew (one server
	// whose pepper file was remade before any credential existed).
	SharedPeppers bool

	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Logger receives audit lines (issued, used, failed, revoked) and errors,
	// never a secret. Default: discard.
	Logger *slog.Logger
	// OnEvent, if set, is called synchronously for every event (but see
	// QuietHits). It must be fast and must not call back into the Manager.
	OnEvent func(Event)
	// QuietHits keeps OnEvent from being called for the successes of app
	// passwords answered from the credential cache, the common case of a
	// verify, except the one in about 64 whose Duration is measured (see
	// [Event].Duration): [Stats].CachedSuccesses counts every one of them
	// instead, and package auth/metrics reads that count at scrape time.
	// Set it when the hook needs no per-request success (metrics, or
	// auth/notify, which reads only issued events): the call and the copy
	// of the Event are then no cost of a cached verify. Failures, throttles,
	// outages, misses and every other event still reach OnEvent. Default
	// false: OnEvent sees every event.
	QuietHits bool
	// Limiter, if set, throttles authentication attempts: app passwords
	// and, through [Manager.VerifyAccountPassword], account passwords, so
	// that every kind of guess counts together.
	Limiter Limiter
	// MaxPasswordChecks bounds how many account-password checks
	// ([Manager.VerifyAccountPassword]) run at once, so that a burst of
	// sign-ins cannot tie up every core with password hashing or flood the
	// directory with binds. Default 2 × GOMAXPROCS.
	MaxPasswordChecks int

	// CacheSize bounds the cache of verified credentials (and, separately, of
	// directory answers). Default 10,000; negative disables caching. The
	// caches are split into 32 shards; a cached verify takes no lock (the
	// credential cache is read with atomic loads, writers lock one shard),
	// and a full cache may hold up to 32 entries more than CacheSize. Each
	// cached credential holds about 0.8 KB, its shared Principal included
	// (BenchmarkCacheMemory): size it
	// to the active credentials, since a cache smaller than they are turns
	// repeated use into store queries.
	CacheSize int
	// CacheTTL is how long a cached credential is trusted before it is read
	// from the store again. It bounds how late a revocation made on another
	// server is noticed. Default 30s.
	CacheTTL time.Duration
	// NegativeCacheTTL is how long an unknown secret is remembered, so a
	// client retrying a stale password costs no store query. Default 5s.
	NegativeCacheTTL time.Duration
	// LastUsedInterval is the most often one credential's last-used time is
	// written to the store, and the interval over which its successful uses
	// are counted into one "auth used" audit line per client address and
	// user agent (see [Event]). A session's use is written as often as
	// every tenth of SessionIdleTimeout when that is shorter, since its
	// idle check reads it. Default 60s.
	LastUsedInterval time.Duration
	// OwnerCheckInterval is how often an owner is looked up in the directory
	// again; a deleted or disabled user loses access at the next check.
	// Default 5m.
	OwnerCheckInterval time.Duration
	// OwnerGracePeriod is how long the last good directory answer is used
	// while the directory is unreachable. After it, requests fail with
	// ErrUnavailable; nothing is revoked. Default 1h.
	OwnerGracePeriod time.Duration

	// ExpireUnusedAfter, if set, makes an app password expire once it has
	// gone unused this long (counted from its creation when it was never
	// used), as Nextcloud does with 365 days: a forgotten device stops
	// being a way in. It is checked at every verify, and the hourly purge
	// deletes such passwords from a store that can ([UnusedPurger]).
	// [AppPassword].UnusedExpiresAt says when. At least 24 hours; default
	// 0: off.
	ExpireUnusedAfter time.Duration

	// MaxAppPasswords is the most app passwords one user may hold. Default 100.
	MaxAppPasswords int
	// MaxNameLength bounds an app password's name, in characters. Default 100.
	MaxNameLength int

	// MaxSessions is the most browser sessions one user may hold; a new
	// sign-in beyond it signs out the least recently used. Default 50.
	MaxSessions int

	// StoreTimeout bounds every call to the Store (and the final write in
	// [Manager.Close]): a store that has not answered by then is
	// ErrUnavailable, whatever its driver does. The Manager's calls to the
	// Directory and PasswordVerifier get the same deadline, passed in their
	// context. Default 5s.
	StoreTimeout time.Duration

	// SessionIdleTimeout ends a browser session unused for this long.
	// Default 24h.
	SessionIdleTimeout time.Duration
	// SessionLifetime ends a browser session this long after sign-in,
	// however active. Default 14 days.
	SessionLifetime time.Duration
}

// Limiter throttles authentication attempts (package auth/throttle has one).
// Allow is called before a credential is looked up and returns nil, an error
// matching [ErrThrottled] (typically a [*ThrottleError]), or [ErrUnavailable]
// when it cannot decide (it must fail closed). Done reports the outcome of
// each attempt Allow allowed, once, and is called for no other attempt (so
// a Limiter may count attempts in flight); an outage is reported with
// [LimiterCanceler].Cancel when the Limiter has it, or not at all.
//
// An app password that is an exact hit in the Manager's cache of verified
// credentials guesses nothing: the Manager asks the Limiter about it only
// when it fails after all (expired, wrong user, disabled owner), so a
// Limiter sees every failure but not the successes of cached secrets.
type Limiter interface {
	// Allow decides whether the attempt may be evaluated.
	Allow(ctx context.Context, a Attempt) error
	// Done reports whether an allowed attempt succeeded.
	Done(a Attempt, success bool)
}

// LimiterCanceler is an optional [Limiter] capability: Cancel settles an
// allowed attempt whose outcome is unknown (the store or directory could not
// answer, or the server was too busy to check), counting it neither as a
// failure nor as a success. The Manager calls it after such outages, so
// that a Limiter that counts attempts in flight (package auth/throttle)
// frees them at once.
type LimiterCanceler interface {
	Cancel(a Attempt)
}

func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.CacheSize == 0 {
		o.CacheSize = 10_000
	}
	def(&o.CacheTTL, 30*time.Second)
	def(&o.NegativeCacheTTL, 5*time.Second)
	def(&o.LastUsedInterval, time.Minute)
	def(&o.OwnerCheckInterval, 5*time.Minute)
	def(&o.OwnerGracePeriod, time.Hour)
	def(&o.SessionIdleTimeout, 24*time.Hour)
	def(&o.SessionLifetime, 14*24*time.Hour)
	def(&o.StoreTimeout, 5*time.Second)
	if o.MaxSessions == 0 {
		o.MaxSessions = 50
	}
	if o.MaxAppPasswords == 0 {
		o.MaxAppPasswords = 100
	}
	if o.MaxPasswordChecks == 0 {
		o.MaxPasswordChecks = 2 * runtime.GOMAXPROCS(0)
	}
	if o.MaxNameLength == 0 {
		o.MaxNameLength = 100
	}
	return o
}

func (o *Options) validate() error {
	if len(o.Peppers) == 0 {
		return fmt.Errorf("auth: missing required option \"Peppers\"")
	}
	// A typed nil (a *throttle.Throttle left nil) would panic on the first
	// attempt rather than throttle it.
	if v := reflect.ValueOf(o.Limiter); o.Limiter != nil && v.Kind() == reflect.Pointer && v.IsNil() {
		return fmt.Errorf("auth: Limiter is a nil %T", o.Limiter)
	}
	seen := map[string]bool{}
	for i, p := range o.Peppers {
		if !validKeyID(p.ID) {
			return fmt.Errorf("auth: Peppers[%d]: ID must be 1-32 characters of [A-Za-z0-9._-]", i)
		}
		if seen[p.ID] {
			return fmt.Errorf("auth: Peppers[%d]: duplicate ID %q", i, p.ID)
		}
		seen[p.ID] = true
		if len(p.Key) < MinPepperLen {
			return fmt.Errorf("auth: Peppers[%d] (%s): key is %d bytes, need at least %d", i, p.ID, len(p.Key), MinPepperLen)
		}
	}
	for name, d := range map[string]time.Duration{
		"CacheTTL": o.CacheTTL, "NegativeCacheTTL": o.NegativeCacheTTL,
		"LastUsedInterval": o.LastUsedInterval, "OwnerCheckInterval": o.OwnerCheckInterval,
		"OwnerGracePeriod": o.OwnerGracePeriod, "SessionIdleTimeout": o.SessionIdleTimeout,
		"SessionLifetime": o.SessionLifetime, "StoreTimeout": o.StoreTimeout,
		"ExpireUnusedAfter": o.ExpireUnusedAfter,
	} {
		if d < 0 {
			return fmt.Errorf("auth: option %q must not be negative", name)
		}
	}
	if o.ExpireUnusedAfter > 0 && o.ExpireUnusedAfter < 24*time.Hour {
		return fmt.Errorf("auth: ExpireUnusedAfter is %v; it must be 0 (off) or at least 24h", o.ExpireUnusedAfter)
	}
	if o.MaxAppPasswords < 0 || o.MaxNameLength < 0 || o.MaxPasswordChecks < 0 || o.MaxSessions < 0 {
		return fmt.Errorf("auth: MaxAppPasswords, MaxNameLength, MaxPasswordChecks and MaxSessions must not be negative")
	}
	return nil
}

func validKeyID(id string) bool {
	if len(id) == 0 || len(id) > 32 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}
