package auth

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/appauth/appauth/internal/safetext"
)

// EventType names what happened.
type EventType string

// Event types.
const (
	EventIssued        EventType = "issued"        // an app password or session was created
	EventRenamed       EventType = "renamed"       // an app password was renamed
	EventRevoked       EventType = "revoked"       // one or more credentials were revoked
	EventAuthenticated EventType = "authenticated" // a credential was accepted
	EventFailed        EventType = "failed"        // a credential was refused
	EventThrottled     EventType = "throttled"     // the Limiter refused an attempt
	EventUnavailable   EventType = "unavailable"   // a store or directory could not answer
)

// Event is one audit record. It never holds a secret.
//
// The hook ([Options].OnEvent) gets every event, except, with
// [Options].QuietHits, the unmeasured successes of app passwords answered
// from the cache, which [Stats].CachedSuccesses counts. The audit log writes
// every one as a line, except successes of app passwords
// (EventAuthenticated with [KindAppPassword]): those are counted into one
// "auth used" line (event=used, count, since) per credential, client
// address and user agent per [Options].LastUsedInterval, written when due
// and by [Manager.Close], and have a line of their own only at Debug.
type Event struct {
	Type         EventType // what happened
	Time         time.Time // when, in UTC
	Kind         Kind      // app password or session
	UserID       string    // the owner's stable ID, if known
	Login        string    // the owner's login, or the presented username on failure
	CredentialID string    // the credential concerned, if known
	Name         string    // an issued app password's name ("My iPhone")
	RemoteAddr   string    // the client's address, as given by the edge
	UserAgent    string    // the client's User-Agent
	// Reason says why an attempt failed (for logs only, never for the client):
	// "malformed", "unknown", "wrong_user", "expired", "owner_invalid",
	// "account_password" (a password that is no app password, most likely
	// the account password, where an app password was expected), and for
	// account passwords "wrong_password" (or an unknown login) and
	// "invalid_login" (no account can have it), ...;
	// on a revocation the Manager made itself, why ("session_limit"); on
	// "unavailable" from a verify, what could not answer: "store",
	// "directory" (or the account-password verifier) or "limiter".
	Reason string
	// Count is how many credentials a revocation removed.
	Count int
	// Err is the error behind an "unavailable" or "throttled" event.
	Err error
	// Duration is how long a verify decision took (authenticated, failed,
	// throttled or unavailable from Authenticate, bearer tokens,
	// AuthenticateSession and VerifyAccountPassword), measured on the
	// monotonic clock. It is zero for other events, and always when
	// [Options].OnEvent is nil (nothing would read it). App-password
	// verifies are sampled: one in 64 is measured from its start (a clock
	// read costs a tenth of a cache hit), the other hits have a zero
	// Duration, and the other misses and refusals before the cache are
	// measured from their cache lookup or refusal (leaving out the token
	// check and HMAC before it, well under a microsecond).
	Duration time.Duration
	// Cache says whether the credential cache answered a verify decision.
	Cache CacheOutcome

	start verifyStart // start of a verify; the hook turns it into Duration
}

// verifyStart is when a verify began: an offset on a clock anchor's
// monotonic reading (no time.Time arithmetic on the verify path).
type verifyStart struct {
	a   *clockAnchor // nil: not measured
	off time.Duration
}

// CacheOutcome says whether a verify was answered from the credential cache.
type CacheOutcome uint8

// Cache outcomes.
const (
	CacheNone CacheOutcome = iota // the cache was not consulted (or is off)
	CacheHit                      // a cached credential or a cached "unknown"
	CacheMiss                     // the store was asked
)

// String returns "none", "hit" or "miss".
func (c CacheOutcome) String() string {
	switch c {
	case CacheHit:
		return "hit"
	case CacheMiss:
		return "miss"
	}
	return "none"
}

// verifyNow is [Manager.now] for a verify decision, and its monotonic
// start when the event hook may read its Duration. With the default clock
// both come from one monotonic reading (see clockAnchor) while the coarse
// clock's ticker keeps the anchor true: on some hosts time.Now costs 60 ns,
// a noticeable part of a cached verify.
func (m *Manager) verifyNow() (now time.Time, start verifyStart) {
	a := m.anchor.Load()
	if !m.monoClock {
		now = m.now()
		if m.opts.OnEvent != nil {
			// An injected clock has no monotonic reading.
			start = verifyStart{a, time.Since(a.mono)}
		}
		return now, start
	}
	var d time.Duration
	if m.coarse.now.Load() != 0 {
		// The ticker re-anchors whenever the anchor strays (see clockLoop).
		d = time.Since(a.mono)
		now = a.wall.Add(d).Truncate(time.Microsecond)
	} else {
		// Nothing re-anchors it each tick: the anchor may lag after a
		// suspend or a clock step, so the wall clock is read (once, for
		// both readings).
		t := time.Now()
		d, now = t.Sub(a.mono), t.UTC().Truncate(time.Microsecond)
	}
	if m.opts.OnEvent != nil {
		start = verifyStart{a, d}
	}
	return now, start
}

// measure makes sure that the verify decision fail is measured, from now
// if it was not sampled at its start: misses and refusals before the cache
// are always measured, hits only when sampled.
func (m *Manager) measure(fail *Event) {
	if fail.start.a == nil && m.opts.OnEvent != nil {
		fail.start = m.startNow()
	}
}

// startNow is the start of a measured verify, on the monotonic clock.
func (m *Manager) startNow() verifyStart {
	a := m.anchor.Load()
	return verifyStart{a, time.Since(a.mono)}
}

// hotNow is the time of an app-password verify, in unix nanoseconds: the
// coarse clock, one atomic load, while it runs, else the exact clock (and
// it wakes the coarse one). The coarse clock lags the exact one by a tick (plus the
// ticker's scheduling delay); nothing it decides needs better: the cache
// and owner-check intervals are seconds and minutes, the last-used and
// audit times are for people. Only an expiry decides at an instant, and
// verify reads the exact clock for it when it is within exactMargin.
func (m *Manager) hotNow() int64 {
	if !m.monoClock {
		return m.now().UnixNano()
	}
	if n := m.coarse.now.Load(); n != 0 {
		if !m.coarse.read.Load() {
			m.coarse.read.Store(true) // one write per tick, not per verify
		}
		return n
	}
	select {
	case m.coarse.wake <- struct{}{}:
	default:
	}
	now, _ := m.verifyNow()
	return now.UnixNano()
}

// Coarse clock parameters: the tick, how many idle ticks stop it (an idle
// server is not woken a thousand times a second), and how close to an
// expiry the exact clock decides (far more than any plausible lag).
const (
	coarseTick      = time.Millisecond
	coarseIdleTicks = 1000
	exactMargin     = time.Hour
	// maxAnchorDrift is how far the anchored time may stray from the wall
	// clock before a tick re-anchors it (NTP's slew moves them apart by
	// at most 0.5 ms a second).
	maxAnchorDrift = 10 * time.Millisecond
)

// coarseClock is a time that a ticker advances while verifies read it.
type coarseClock struct {
	now  atomic.Int64  // unix nanoseconds at microsecond precision; 0 while stopped
	read atomic.Bool   // read since the last tick
	wake chan struct{} // starts the ticker
}

// clockLoop runs the coarse clock's ticker while verifies read it, until
// Close.
func (m *Manager) clockLoop() {
	defer close(m.clockDone)
	// Each tick reads the wall clock itself and re-anchors when the anchor
	// has drifted from it: after a suspend (which the monotonic clock does
	// not count) or a step of the wall clock the anchored time can lag by
	// hours, more than exactMargin, until the background re-anchor.
	exact := func() int64 {
		t := time.Now()
		a := m.anchor.Load()
		if d := t.Sub(a.mono) - t.Round(0).Sub(a.wall); d > maxAnchorDrift || d < -maxAnchorDrift {
			m.reanchor()
		}
		return t.UTC().Truncate(time.Microsecond).UnixNano()
	}
	for {
		select {
		case <-m.stop:
			return
		case <-m.coarse.wake:
		}
		t := time.NewTicker(coarseTick)
		m.coarse.now.Store(exact())
		for idle := 0; idle < coarseIdleTicks; {
			select {
			case <-m.stop:
				t.Stop()
				m.coarse.now.Store(0)
				return
			case <-t.C:
				m.coarse.now.Store(exact())
				if m.coarse.read.Swap(false) {
					idle = 0
				} else {
					idle++
				}
			}
		}
		t.Stop()
		m.coarse.now.Store(0)
	}
}

// clockAnchor relates the wall clock to the monotonic one: a verify reads
// only the monotonic clock (one clock read instead of two) and adds it to
// wall. The background loop re-anchors it every few seconds; the coarse
// clock's ticker, whenever it has drifted from the wall clock (a suspend,
// which the monotonic clock does not count, or a step of the wall clock),
// within a tick; and while the ticker is stopped verifies read the wall
// clock instead (see verifyNow).
type clockAnchor struct {
	wall time.Time // UTC, without a monotonic reading
	mono time.Time // the same instant, with one
}

func (m *Manager) reanchor() {
	t := time.Now()
	m.anchor.Store(&clockAnchor{wall: t.UTC().Round(0), mono: t})
}

// emit writes e to the audit log and the event hook. It checks the log level
// first so a discarded audit line costs nothing on the verify path.
func (m *Manager) emit(ctx context.Context, e Event) {
	// A refused login, and the client of an issue, may come unbounded.
	e.Login = safetext.Truncate(e.Login, maxLoginLen)
	e.RemoteAddr = safetext.Truncate(e.RemoteAddr, maxClientInfoLen)
	e.UserAgent = safetext.Truncate(e.UserAgent, maxClientInfoLen)
	m.hook(&e)
	level := slog.LevelInfo
	switch e.Type {
	case EventFailed, EventThrottled:
		level = slog.LevelWarn
	case EventUnavailable:
		level = slog.LevelError
	}
	m.logEvent(ctx, level, &e)
}

// hook gives e to the event hook, if there is one, with its Duration.
func (m *Manager) hook(e *Event) {
	if m.opts.OnEvent == nil {
		return
	}
	if a := e.start.a; a != nil {
		e.Duration, e.start = time.Since(a.mono)-e.start.off, verifyStart{}
	}
	m.opts.OnEvent(*e)
}

// succeeded records the success e of cache entry ce: the hook sees every
// one; the audit log counts it in a coalesced "auth used" line (see
// auditQueue), and writes a line of its own only at Debug.
//
// A success answered from the cache is counted in its shard (see
// [Stats].CachedSuccesses); with [Options].QuietHits the hook sees it only
// when its duration is measured.
func (m *Manager) succeeded(ctx context.Context, ce *cacheEntry, e *Event) {
	if e.Cache != CacheHit {
		m.hook(e)
	} else {
		m.cache.hit(ce)
		if !m.opts.QuietHits || e.start.a != nil {
			m.hook(e)
		}
	}
	if !m.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	if m.used(ctx, ce, e) {
		m.logEvent(ctx, slog.LevelDebug, e)
	}
}

// logEvent writes e's audit line at level, if that level is enabled.
func (m *Manager) logEvent(ctx context.Context, level slog.Level, e *Event) {
	if !m.log.Enabled(ctx, level) {
		return
	}
	var buf [10]slog.Attr // room for every attribute: no allocation for the slice
	attrs := append(buf[:0],
		slog.String("event", string(e.Type)),
		slog.String("kind", string(e.Kind)),
		slog.String("login", safetext.Escape(e.Login)),
	)
	if e.UserID != "" {
		attrs = append(attrs, slog.String("user_id", e.UserID))
	}
	if e.CredentialID != "" {
		attrs = append(attrs, slog.String("credential_id", e.CredentialID))
	}
	if e.RemoteAddr != "" {
		attrs = append(attrs, slog.String("remote_addr", safetext.Escape(e.RemoteAddr)))
	}
	if e.UserAgent != "" {
		attrs = append(attrs, slog.String("user_agent", safetext.Escape(e.UserAgent)))
	}
	if e.Reason != "" {
		attrs = append(attrs, slog.String("reason", e.Reason))
	}
	if e.Count != 0 {
		attrs = append(attrs, slog.Int("count", e.Count))
	}
	if e.Err != nil {
		attrs = append(attrs, slog.String("error", e.Err.Error()))
	}
	m.log.LogAttrs(ctx, level, messages[e.Type], attrs...)
}

// messages are the audit lines' messages, built once.
var messages = map[EventType]string{
	EventIssued: "auth issued", EventRenamed: "auth renamed", EventRevoked: "auth revoked",
	EventAuthenticated: "auth authenticated", EventFailed: "auth failed",
	EventThrottled: "auth throttled", EventUnavailable: "auth unavailable",
}
