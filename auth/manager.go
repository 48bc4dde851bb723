package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/appauth/appauth/internal/safetext"
	"github.com/appauth/appauth/internal/token"
)

// Token prefixes: identifiable by secret scanners, and never confused with
// each other (a session cookie is not an app password).
const (
	appPasswordPrefix = "aap"
	sessionPrefix     = "aas"
)

// maxLoginLen bounds a presented username; longer ones are refused unread.
const maxLoginLen = 256

// maxClientInfoLen bounds the stored address and user agent of a use.
const maxClientInfoLen = 200

// Manager issues, verifies and revokes app passwords and browser sessions.
// It implements [Authenticator]. Create it with [NewManager] and stop it with
// [Manager.Close]. It is safe for concurrent use.
type Manager struct {
	store *boundedStore
	dir   Directory
	opts  Options
	log   *slog.Logger
	// audits: log is not the discarding one, so a success may have an
	// audit line to count (see cachedHit).
	audits bool

	appCodec, sessionCodec *token.Codec
	macKeys                []macKey // of opts.Peppers
	audit                  auditQueue

	cache     *credCache
	users     *userCache
	usage     usageQueue
	stop      chan struct{}
	done      chan struct{}
	closed    sync.Once
	err       error
	userLocks [64]sync.Mutex // see lockUser
	checks    chan struct{}  // slots for account-password checks
	lockSeed  maphash.Seed

	// graceServed counts requests served from a directory answer kept
	// through an outage (see [Manager.Stats]).
	graceServed atomic.Uint64

	// monoClock: Options.Now is time.Now, whose readings are monotonic;
	// verifies then read the clock through anchor.
	monoClock bool
	anchor    atomic.Pointer[clockAnchor]
	// coarse is the clock app-password verifies read (see hotNow);
	// clockDone is closed when its ticker has stopped.
	coarse    coarseClock
	clockDone chan struct{}

	// peppersChecked: Check has passed (see create).
	peppersChecked atomic.Bool

	// Background owner re-checks while the directory is down.
	refreshCtx    context.Context
	refreshCancel context.CancelFunc
	refreshing    sync.WaitGroup

	// stopWatch ends the store's change notification, if it has one.
	stopWatch context.CancelFunc
	watching  sync.WaitGroup
}

var _ Authenticator = (*Manager)(nil)

// NewManager returns a Manager over store and directory. opts.Peppers is
// required; see [Options] for the rest.
func NewManager(store Store, directory Directory, opts *Options) (*Manager, error) {
	if store == nil {
		return nil, errors.New("auth: NewManager: nil Store")
	}
	if directory == nil {
		return nil, errors.New("auth: NewManager: nil Directory")
	}
	if opts == nil {
		opts = &Options{}
	}
	o := opts.withDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	o.Peppers = cloneAll(o.Peppers)
	appCodec, err := token.New(appPasswordPrefix)
	if err != nil {
		return nil, err
	}
	sessionCodec, err := token.New(sessionPrefix)
	if err != nil {
		return nil, err
	}
	userCacheSize := max(o.CacheSize, 10_000)
	m := &Manager{
		store:        newBoundedStore(store, o.StoreTimeout),
		dir:          directory,
		opts:         o,
		log:          o.Logger,
		audits:       o.Logger.Handler() != slog.DiscardHandler,
		appCodec:     appCodec,
		sessionCodec: sessionCodec,
		cache:        newCredCache(o.CacheSize, o.CacheTTL, o.NegativeCacheTTL),
		users:        newUserCache(userCacheSize),
		stop:         make(chan struct{}),
		done:         make(chan struct{}),
		lockSeed:     maphash.MakeSeed(),
		checks:       make(chan struct{}, o.MaxPasswordChecks),
		monoClock:    opts.Now == nil,
	}
	m.reanchor()
	m.audit.max = max(maxPendingUses, o.CacheSize)
	m.refreshCtx, m.refreshCancel = context.WithCancel(context.Background())
	for _, p := range o.Peppers {
		m.macKeys = append(m.macKeys, newMacKey(p.Key))
	}
	go m.flushLoop()
	m.clockDone = make(chan struct{})
	if m.monoClock {
		m.coarse.wake = make(chan struct{}, 1)
		go m.clockLoop()
	} else {
		close(m.clockDone) // an injected clock is read as it is
	}
	if w, ok := store.(ChangeWatcher); ok && m.opts.CacheSize > 0 {
		ctx, cancel := context.WithCancel(context.Background())
		m.stopWatch = cancel
		m.watching.Go(func() { m.watchLoop(ctx, w) })
	}
	return m, nil
}

// watchLoop drops from the cache what other processes revoke or change,
// reconnecting after a failure. While it cannot watch, CacheTTL bounds how
// stale the cache can be.
func (m *Manager) watchLoop(ctx context.Context, w ChangeWatcher) {
	changed := func(userID, id string) {
		switch {
		case userID == "":
			m.cache.clear()
		case id == "":
			m.cache.invalidate(userID)
		default:
			m.cache.invalidate(userID, id)
		}
	}
	for ctx.Err() == nil {
		err := w.WatchChanges(ctx, changed)
		if errors.Is(err, errors.ErrUnsupported) {
			m.log.Debug("auth: store cannot report changes; the cache relies on CacheTTL", "error", err)
			return
		}
		if err != nil {
			m.log.Warn("auth: watch store changes", "error", err)
			m.cache.clear() // changes may be missed until the next watch
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func cloneAll(ps []Pepper) []Pepper {
	out := make([]Pepper, len(ps))
	for i, p := range ps {
		out[i] = Pepper{ID: p.ID, Key: append([]byte(nil), p.Key...)}
	}
	return out
}

// Close writes pending last-used updates and stops the background work. It
// is bounded: it waits at most [Options.StoreTimeout] for the final write
// (and as long again for the change watcher and for background owner
// re-checks), and if the write fails or
// times out it returns an error saying how many updates it dropped. Those
// are only last-used times; no credential is lost. The Manager must not be
// used after Close.
func (m *Manager) Close() error {
	m.closed.Do(func() {
		if m.stopWatch != nil {
			m.stopWatch()
			m.waitBounded(&m.watching, "the store's change watcher")
		}
		m.refreshCancel()
		m.waitBounded(&m.refreshing, "background owner re-checks")
		close(m.stop)
		<-m.done
		<-m.clockDone
	})
	return m.err
}

// waitBounded waits for wg, at most StoreTimeout: a store or directory
// that ignores its context cannot hold Close.
func (m *Manager) waitBounded(wg *sync.WaitGroup, what string) {
	stopped := make(chan struct{})
	go func() { wg.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(m.opts.StoreTimeout):
		m.log.Warn("auth: close: " + what + " did not stop in time; leaving them")
	}
}

// purgeEvery is how often expired credentials are deleted from a store
// that can (see [ExpiredPurger]).
const purgeEvery = time.Hour

func (m *Manager) flushLoop() {
	defer close(m.done)
	every := min(m.opts.LastUsedInterval, 5*time.Second)
	flush := time.NewTicker(every)
	defer flush.Stop()
	purge := time.NewTicker(purgeEvery)
	defer purge.Stop()
	for {
		select {
		case <-flush.C:
			m.reanchor()
			if err := m.usage.flush(context.Background(), m.store); err != nil {
				m.log.Warn("auth: write last-used times", "error", err)
			}
			m.flushUses(context.Background(), m.now(), false)
		case <-purge.C:
			m.purgeExpired(context.Background())
		case <-m.stop:
			m.flushUses(context.Background(), m.now(), true)
			// The store bounds the write by StoreTimeout.
			if err := m.usage.flush(context.Background(), m.store); err != nil {
				n := m.usage.len()
				m.log.Error("auth: close: last-used updates dropped", "count", n, "error", err)
				m.err = fmt.Errorf("auth: close: dropped %d last-used updates: %w", n, err)
			}
			return
		}
	}
}

// purgeExpired deletes expired credentials if the store can, and with
// Options.ExpireUnusedAfter the app passwords unused that long. They are
// refused anyway; this only keeps the store from growing. With a
// [JobClaimer] store only the server that claims the run purges.
func (m *Manager) purgeExpired(ctx context.Context) (int, error) {
	// Servers sharing the store take turns: one claim per interval. The
	// claim's interval is a little shorter than the tick's, so that a tick
	// that comes early still finds the job due.
	run, err := m.store.claimJob(ctx, "purge", m.now(), purgeEvery-purgeEvery/12)
	if err != nil {
		m.log.Warn("auth: claim the purge", "error", err)
		return 0, err
	}
	if !run {
		return 0, nil
	}
	n, ok, err := m.store.deleteExpired(ctx, m.now())
	if ok {
		if err != nil {
			m.log.Warn("auth: delete expired credentials", "error", err)
		} else if n > 0 {
			m.log.Info("auth: deleted expired credentials", "count", n)
		}
	}
	if m.opts.ExpireUnusedAfter == 0 {
		return n, err
	}
	// The last-used times must be in the store first: a password used a
	// minute ago is not unused because its use is still queued.
	if ferr := m.usage.flush(ctx, m.store); ferr != nil {
		m.log.Warn("auth: delete unused app passwords: last-used times not written; not purging", "error", ferr)
		return n, errors.Join(err, ferr)
	}
	u, ok, uerr := m.store.deleteUnused(ctx, KindAppPassword, m.now().Add(-m.opts.ExpireUnusedAfter))
	if !ok {
		return n, err
	}
	if uerr != nil {
		m.log.Warn("auth: delete unused app passwords", "error", uerr)
	} else if u > 0 {
		m.log.Info("auth: deleted unused app passwords", "count", u)
	}
	return n + u, errors.Join(err, uerr)
}

// hitSample is how many cache hits one measured duration stands for: one
// app-password verify in hitSample, chosen at random, is measured from its
// start.
const hitSample = 64

// tokenBuf holds a canonical token, on the stack of the verify that
// writes it.
type tokenBuf [64]byte

func (m *Manager) newest() int { return len(m.opts.Peppers) - 1 }

// now is the clock in UTC at microsecond precision, the finest that every
// store keeps, so a record reads back as it was written.
func (m *Manager) now() time.Time { return m.opts.Now().UTC().Truncate(time.Microsecond) }

// Authenticate verifies an app password presented with its owner's username.
// It returns ErrInvalidCredentials for anything that is not a valid app
// password of that user, ErrThrottled from the Limiter, and ErrUnavailable
// when the store or directory cannot answer.
//
// The returned Principal is shared by the requests of this credential
// while its owner's directory answer is current: it must not be modified
// (see [Principal]).
//
// An address the Limiter throttles (perhaps for someone else's guesses
// behind the same NAT) still gets in with an app password this Manager has
// verified and cached; anything else from it is throttled. That is no
// oracle: only the exact secret hits the cache, and every other answer is
// the same 429.
func (m *Manager) Authenticate(ctx context.Context, c Attempt) (*Principal, error) {
	c.clip()
	p, allowed, err := m.appPassword(ctx, &c, true)
	// Only a refusal counts against the client; an outage is not its fault.
	// Only attempts the Limiter allowed are reported: not one refused
	// before it was asked (a malformed one, which costs nothing), nor one
	// it refused, not even the success of a cached secret, which changes
	// nothing in its state (so a device behind a throttled NAT does not
	// reset it).
	if allowed {
		m.settle(c, err)
	}
	return p, err
}

// settle reports an attempt's outcome to the Limiter: Done for a success
// or a refusal, Cancel (when the Limiter has it) for an outage, nothing
// for an attempt the Limiter itself refused.
func (m *Manager) settle(c Attempt, err error) {
	l := m.opts.Limiter
	switch {
	case l == nil || errors.Is(err, ErrThrottled):
	case err == nil || errors.Is(err, ErrInvalidCredentials):
		l.Done(c, err == nil)
	default:
		if lc, ok := l.(LimiterCanceler); ok {
			lc.Cancel(c)
		}
	}
}

// appPassword verifies an app password. With byUsername, c.Username must
// name its owner (Basic auth); without, the owner is whoever it belongs to
// (a bearer token).
//
// allowed reports that the Limiter allowed the attempt, so its outcome
// must be reported to it.
func (m *Manager) appPassword(ctx context.Context, c *Attempt, byUsername bool) (p *Principal, allowed bool, err error) {
	nowNs := m.hotNow()
	// One verify in hitSample is measured from its start (a random choice:
	// no state shared between cores); a miss is measured from its cache
	// lookup if not (see verify).
	sampled := m.opts.OnEvent != nil && mrand.Uint32N(hitSample) == 0
	var buf tokenBuf
	if !sampled && (m.opts.OnEvent == nil || m.opts.QuietHits) {
		if p := m.cachedHit(ctx, &buf, c, byUsername, nowNs); p != nil {
			return p, false, nil
		}
	}
	now := time.Unix(0, nowNs).UTC()
	fail := Event{Type: EventFailed, Time: now, Kind: KindAppPassword, Login: c.Username, RemoteAddr: c.RemoteAddr, UserAgent: c.UserAgent}
	if sampled {
		fail.start = m.startNow()
	}
	var login string
	if byUsername {
		if login, err = CanonicalLogin(c.Username); err != nil {
			m.measure(&fail)
			return nil, false, m.deny(ctx, fail, "malformed")
		}
	}
	// Past the Limiter's refusal (a cache hit goes on), only a success goes
	// through; any failure is the refusal. A cache hit asks the Limiter
	// only when it fails after all (see verify).
	var lim limiterState
	e, err := m.verify(ctx, &buf, KindAppPassword, *c, &fail, &lim)
	if err != nil {
		return m.refuse(ctx, *c, &fail, &lim, err)
	}
	cred := e.cred
	if !byUsername {
		fail.Login = cred.Login
	} else if cred.Login != login && !SameLogin(cred.Login, login) {
		return m.refuse(ctx, *c, &fail, &lim, m.deny(ctx, fail, "wrong_user"))
	}
	// The Principal of the last success, while the owner answer it was
	// built from is the cached one and due for no re-check, is shared: a
	// cached verify allocates nothing. Otherwise owner decides, as always.
	hp := e.hot.Load()
	if !hp.current(nowNs) {
		ue, err := m.owner(ctx, cred, &fail)
		if err != nil {
			return m.refuse(ctx, *c, &fail, &lim, err)
		}
		if hp == nil || hp.owner != ue {
			hp = &hotPrincipal{owner: ue, p: &Principal{User: *ue.user, Method: MethodAppPassword, CredentialID: cred.ID, Scopes: cred.Scopes}}
			e.hot.Store(hp)
		}
	}
	m.touch(e, c, nowNs)
	fail.Type, fail.UserID, fail.Login, fail.CredentialID = EventAuthenticated, cred.UserID, cred.Login, cred.ID
	m.succeeded(ctx, e, &fail)
	return hp.p, lim.allowed, nil
}

// cachedHit is appPassword's common case, an app password it verified
// before presented again, spelled as shown or canonical, by its owner's
// login, with no event to report for it: one HMAC and a cache probe
// (whose hit proves the secret's characters: see token.AppendUsual),
// without the failure event, the Limiter or the owner re-check. It
// returns nil whenever anything else is to be decided or recorded (a
// miss, another spelling of the login, an expiry within exactMargin, an
// owner answer due, an audit line of its own), and has then done nothing:
// appPassword decides all.
func (m *Manager) cachedHit(ctx context.Context, buf *tokenBuf, c *Attempt, byUsername bool, now int64) *Principal {
	canonical, ok := m.appCodec.AppendUsual(buf[:0], c.Password)
	if !ok {
		return nil
	}
	var key hashKey
	m.macKeys[m.newest()].sum(&key, canonical)
	e, _ := m.cache.get(&key, now)
	if e == nil || now >= e.quickUntil || (byUsername && e.cred.Login != c.Username) ||
		(m.opts.ExpireUnusedAfter > 0 && m.unusedExpired(e, now)) {
		return nil
	}
	hp := e.hot.Load()
	audit := m.audits && m.log.Enabled(ctx, slog.LevelInfo)
	if !hp.current(now) || (audit && m.log.Enabled(ctx, slog.LevelDebug)) {
		return nil
	}
	m.touch(e, c, now)
	m.cache.hit(e)
	if audit && !m.usedAgain(e, c.RemoteAddr, c.UserAgent) {
		ev := Event{Type: EventAuthenticated, Time: time.Unix(0, now).UTC(), Kind: KindAppPassword, UserID: e.cred.UserID,
			Login: e.cred.Login, CredentialID: e.cred.ID, RemoteAddr: c.RemoteAddr, UserAgent: c.UserAgent, Cache: CacheHit}
		m.used(ctx, e, &ev)
	}
	return hp.p
}

// current reports whether hp may be returned again at now: its owner
// answer is still the cached one, due for no re-check.
func (hp *hotPrincipal) current(now int64) bool {
	return hp != nil && !hp.owner.replaced.Load() && now < hp.owner.due && !hp.owner.failing
}

// expiresSoon reports whether cred expires within exactMargin of now (or
// has expired), where the exact clock decides (see hotNow).
func expiresSoon(cred *StoredCredential, now time.Time) bool {
	return !cred.ExpiresAt.IsZero() && cred.ExpiresAt.Sub(now) < exactMargin
}

// refuse turns a failure of an app-password attempt into appPassword's
// results, the error being what the Limiter's answer makes it: a cache hit
// that fails after all asks the Limiter now (lim.deferred), and an attempt
// the Limiter refused but whose exact hit went on is its refusal
// (lim.refused).
func (m *Manager) refuse(ctx context.Context, c Attempt, fail *Event, lim *limiterState, err error) (*Principal, bool, error) {
	if lim.deferred && errors.Is(err, ErrInvalidCredentials) {
		if lerr := m.opts.Limiter.Allow(ctx, c); lerr != nil {
			return nil, false, m.throttled(ctx, *fail, lerr)
		}
		lim.allowed = true // Authenticate reports the failure
	}
	if lim.refused != nil && errors.Is(err, ErrInvalidCredentials) {
		return nil, lim.allowed, m.throttled(ctx, *fail, lim.refused)
	}
	return nil, lim.allowed, err
}

// verify runs the part of the verify path that app passwords and sessions
// share: format and checksum, throttle (app passwords), HMAC, cache, store,
// expiry. fail is the failure event to emit, stamped with the attempt's
// time; verify adds what it learns to it.
//
// For app passwords, when the Limiter refuses the attempt but the secret
// is an exact hit in the cache of verified credentials, verify goes on and
// sets lim.refused to the Limiter's error: the caller must turn any later
// failure into it. lim.allowed reports that the Limiter allowed it.
func (m *Manager) verify(ctx context.Context, buf *tokenBuf, kind Kind, c Attempt, fail *Event, lim *limiterState) (*cacheEntry, error) {
	codec := m.appCodec
	if kind == KindSession {
		codec = m.sessionCodec
	}
	// The shape now, the check character only if the cache does not know
	// the secret (below): a cached one passed it when first verified.
	canonical, err := codec.AppendShape(buf[:0], c.Password)
	if err != nil {
		reason := "malformed"
		if kind == KindAppPassword && c.Password != "" && !LooksLikeAppPassword(c.Password) {
			// Most likely the account password, which DAV refuses.
			reason = "account_password"
		}
		m.measure(fail)
		return nil, m.deny(ctx, *fail, reason)
	}
	now := fail.Time
	var key hashKey
	m.macKeys[m.newest()].sum(&key, canonical)
	e, unknown := m.cache.get(&key, now.UnixNano())
	if e == nil && !unknown && !codec.Checked(canonical) {
		// A typo: refused before the Limiter or the store is asked.
		m.measure(fail)
		return nil, m.deny(ctx, *fail, "malformed")
	}
	if m.cache.max > 0 {
		fail.Cache = CacheMiss
		if e != nil || unknown {
			fail.Cache = CacheHit
		}
	}
	if fail.Cache != CacheHit {
		m.measure(fail) // every miss is measured, from here if not from its start
	}
	if l := m.opts.Limiter; l != nil && kind == KindAppPassword {
		if e != nil && e.cred.Kind == kind && lim != nil {
			// An exact hit of a verified app password guesses nothing:
			// the Limiter (whose lock all verifies would share) is asked
			// only if the attempt fails after all (expired, wrong user,
			// disabled owner), and a success is not reported to it.
			lim.deferred = true
		} else if err := l.Allow(ctx, c); err != nil {
			if e == nil || e.cred.Kind != kind || !errors.Is(err, ErrThrottled) {
				return nil, m.throttled(ctx, *fail, err)
			}
			lim.refused = err
		} else {
			lim.allowed = true
		}
	}
	if unknown {
		return nil, m.deny(ctx, *fail, "unknown")
	}
	if e == nil {
		gen := m.cache.generation()
		cred, err := m.lookup(ctx, canonical, key)
		switch {
		case errors.Is(err, ErrNotFound):
			m.cache.putUnknown(key, now.UnixNano(), gen)
			return nil, m.deny(ctx, *fail, "unknown")
		case err != nil:
			return nil, m.unavailable(ctx, *fail, "store", err)
		}
		e = m.cache.put(key, cred, now.UnixNano(), gen)
	}
	cred := e.cred
	fail.UserID, fail.CredentialID = cred.UserID, cred.ID
	if cred.Kind != kind {
		return nil, m.deny(ctx, *fail, "wrong_kind")
	}
	if expiresSoon(cred, now) {
		now = m.now() // near the boundary, the exact clock decides (see hotNow)
		if !now.Before(cred.ExpiresAt) {
			return nil, m.deny(ctx, *fail, "expired")
		}
	}
	if kind == KindAppPassword && m.opts.ExpireUnusedAfter > 0 && m.unusedExpired(e, now.UnixNano()) {
		return nil, m.deny(ctx, *fail, "unused")
	}
	if kind == KindSession {
		idleSince := time.Unix(0, max(e.lastUsed.Load(), cred.CreatedAt.UnixNano()))
		if now.Sub(idleSince) >= m.opts.SessionIdleTimeout {
			return nil, m.deny(ctx, *fail, "idle")
		}
	}
	return e, nil
}

// unusedExpired reports whether the app password in e has gone unused for
// Options.ExpireUnusedAfter at now. A use still queued for the store (the
// entry was evicted and read again) counts.
func (m *Manager) unusedExpired(e *cacheEntry, now int64) bool {
	idleSince := max(e.lastUsed.Load(), e.cred.CreatedAt.UnixNano())
	if now-idleSince < int64(m.opts.ExpireUnusedAfter) {
		return false
	}
	if u, ok := m.usage.peek(e.cred.ID); ok && now-u.At.UnixNano() < int64(m.opts.ExpireUnusedAfter) {
		return false
	}
	return true
}

// limiterState is what the Limiter said about an app-password attempt.
type limiterState struct {
	allowed  bool  // Allow returned nil: report the outcome
	refused  error // Allow refused, and a cache hit goes on (see verify)
	deferred bool  // a cache hit: Allow not asked yet, only if it fails
}

// lookup finds the credential for canonical, trying every pepper (newest
// first, whose hash is already in key) and checking the stored hash in
// constant time.
func (m *Manager) lookup(ctx context.Context, canonical []byte, key hashKey) (*StoredCredential, error) {
	for i := m.newest(); i >= 0; i-- {
		k := key
		if i != m.newest() {
			m.macKeys[i].sum(&k, canonical)
		}
		cred, err := m.store.CredentialByHash(ctx, k[:])
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if !hmac.Equal(cred.Hash, k[:]) || cred.KeyID != m.opts.Peppers[i].ID {
			return nil, fmt.Errorf("auth: store returned a credential that does not match the hash")
		}
		return cred, nil
	}
	return nil, ErrNotFound
}

// ownerRetry is how long after a failed owner re-check the next one runs.
const ownerRetry = 30 * time.Second

// owner returns the credential's owner as the directory last described it
// (in the returned entry's user, never nil),
// looking them up again when the answer is older than OwnerCheckInterval.
//
// While the directory is down, requests are served from the last good
// answer for OwnerGracePeriod without waiting on it: after a failed re-check
// the next one is due ownerRetry later and runs in the background, one per
// login at a time.
func (m *Manager) owner(ctx context.Context, cred *StoredCredential, fail *Event) (*userEntry, error) {
	now := fail.Time.UnixNano()
	e := m.users.get(cred.Login)
	if e == nil || now >= e.due {
		servable := e.servable(now, m.opts.OwnerGracePeriod)
		switch {
		case servable && e.failing:
			// The directory is known to be down: serve the last good
			// answer and re-check in the background, one at a time.
			if e.checking.CompareAndSwap(false, true) {
				old := e // a copy, so that e itself stays off the heap on every verify
				m.refreshing.Go(func() { m.recheckOwner(cred.Login, old) })
			}
		case servable && !e.checking.CompareAndSwap(false, true):
			// Another request is asking the directory: don't wait for it.
		default:
			// A client that hangs up says nothing about the directory: the
			// lookup keeps the request's deadline, not its cancellation, so
			// that a cancelled one is not kept as an outage (serving the
			// old answer for ownerRetry).
			dctx, cancel := context.WithoutCancel(ctx), context.CancelFunc(func() {})
			if d, ok := ctx.Deadline(); ok {
				dctx, cancel = context.WithDeadline(dctx, d)
			}
			var err error
			e, err = m.checkOwner(dctx, cred.Login, e, now)
			cancel()
			if err != nil {
				return nil, m.unavailable(ctx, *fail, "directory", fmt.Errorf("directory: %w", err))
			}
		}
	}
	if e.failing {
		m.graceServed.Add(1) // served from the last good answer
	}
	if e.user == nil || e.user.Disabled || e.user.ID != cred.UserID {
		return nil, m.deny(ctx, *fail, "owner_invalid")
	}
	return e, nil
}

// checkOwner asks the directory about login and stores the answer. On an
// outage it keeps the last good answer (old) for the grace period, due for
// a retry after ownerRetry, and returns an error only when there is none.
func (m *Manager) checkOwner(ctx context.Context, login string, old *userEntry, now int64) (*userEntry, error) {
	ctx, cancel := context.WithTimeout(ctx, m.opts.StoreTimeout)
	u, err := m.dir.LookupUser(ctx, login)
	cancel()
	var e *userEntry
	switch {
	case err == nil:
		e = &userEntry{user: u, due: now + int64(m.opts.OwnerCheckInterval), lastGood: now}
	case errors.Is(err, ErrNotFound):
		e = &userEntry{due: now + int64(m.opts.OwnerCheckInterval)}
	case old.servable(now, m.opts.OwnerGracePeriod):
		m.log.WarnContext(ctx, "auth: directory unavailable, using last known owner", "login", safetext.Escape(login), "error", err)
		e = &userEntry{user: old.user, due: now + int64(min(ownerRetry, m.opts.OwnerCheckInterval)), lastGood: old.lastGood, failing: true}
	default:
		if old != nil {
			old.checking.Store(false)
		}
		return nil, err
	}
	m.users.put(login, e)
	return e, nil
}

// recheckOwner re-checks login in the background, bounded by StoreTimeout
// and ended by Close.
func (m *Manager) recheckOwner(login string, old *userEntry) {
	m.checkOwner(m.refreshCtx, login, old, m.now().UnixNano())
}

// touch queues a last-used update unless one was queued for this credential
// within LastUsedInterval.
func (m *Manager) touch(e *cacheEntry, c *Attempt, now int64) {
	m.touchEvery(e, c, now, m.opts.LastUsedInterval)
}

// sessionUseInterval is how often a session's use is queued: the idle
// check reads the last one queued (or, on another server, written), which
// lags the last request by up to this interval, so it must be short next
// to SessionIdleTimeout, or an active session is signed out as idle.
func (m *Manager) sessionUseInterval() time.Duration {
	return min(m.opts.LastUsedInterval, m.opts.SessionIdleTimeout/10)
}

// touchEvery is touch with interval for LastUsedInterval.
func (m *Manager) touchEvery(e *cacheEntry, c *Attempt, now int64, interval time.Duration) {
	last := e.lastUsed.Load()
	if now-last < int64(interval) || !e.lastUsed.CompareAndSwap(last, now) {
		return
	}
	m.usage.add(Usage{UserID: e.cred.UserID, ID: e.cred.ID, At: time.Unix(0, now).UTC(),
		Addr: safetext.Truncate(c.RemoteAddr, maxClientInfoLen), Client: safetext.Truncate(c.UserAgent, maxClientInfoLen)}, interval)
}

// clip bounds a's address and user agent, as they are stored, before they
// reach the Limiter, the audit records or an event: an edge may pass on a
// header of any size.
func (a *Attempt) clip() {
	if len(a.RemoteAddr) > maxClientInfoLen || len(a.UserAgent) > maxClientInfoLen {
		a.RemoteAddr = safetext.Truncate(a.RemoteAddr, maxClientInfoLen)
		a.UserAgent = safetext.Truncate(a.UserAgent, maxClientInfoLen)
	}
}

// deny records a refusal and returns ErrInvalidCredentials: the one answer
// for every reason, so a client cannot tell them apart.
func (m *Manager) deny(ctx context.Context, ev Event, reason string) error {
	ev.Reason = reason
	m.emit(ctx, ev)
	return ErrInvalidCredentials
}

// unavailable records an outage and returns it as ErrUnavailable.
// what is the part that could not answer (see [Event].Reason).
func (m *Manager) unavailable(ctx context.Context, ev Event, what string, err error) error {
	if !errors.Is(err, ErrUnavailable) {
		err = fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	ev.Type, ev.Err, ev.Reason = EventUnavailable, err, what
	m.emit(ctx, ev)
	return err
}

func newID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
