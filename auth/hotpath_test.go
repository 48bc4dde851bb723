package auth_test

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/internal/testkit"
)

// TestCachedVerifyAllocatesNothing: a cached verify of an app password
// returns the Principal shared by every request of that credential and
// owner answer, so it allocates nothing (issue 15: 1 allocation or none).
func TestCachedVerifyAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector (sync.Pool drops items); make test runs this without it")
	}
	e := newEnv(t, func(o *auth.Options) { o.Logger = nil })
	_, secret := e.issue(t, e.alice, "phone")
	c := auth.Attempt{Username: "alice", Password: secret, RemoteAddr: "192.0.2.7", UserAgent: "DAVx5/4.4"}
	if _, err := e.m.Authenticate(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if n := testing.AllocsPerRun(200, func() {
		if _, err := e.m.Authenticate(ctx, c); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("cached verify: %v allocations, want 0", n)
	}
}

// TestCachedPrincipalIsShared: cached verifies of one credential return
// the same Principal until the owner's directory answer changes; then a
// new one carries the new answer, and a disabled owner or a revocation is
// refused at once as before.
func TestCachedPrincipalIsShared(t *testing.T) {
	e := newEnv(t, nil)
	ap, secret := e.issue(t, e.alice, "phone")
	p1, err := e.auth(t, "alice", secret)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := e.auth(t, "alice", secret)
	if err != nil {
		t.Fatal(err)
	}
	if p1 != p2 {
		t.Errorf("two cached verifies returned different Principals (%p, %p): want one shared", p1, p2)
	}
	if p1.User.ID != "u-alice" || p1.CredentialID != ap.ID || p1.Method != auth.MethodAppPassword {
		t.Errorf("principal = %+v", p1)
	}
	// Bearer: the same credential, the same owner answer.
	pb, err := e.m.AuthenticateToken(t.Context(), secret, "192.0.2.7", "DAVx5/4.4")
	if err != nil {
		t.Fatal(err)
	}
	if pb.User.ID != "u-alice" || pb.CredentialID != ap.ID {
		t.Errorf("bearer principal = %+v", pb)
	}

	// The directory changes the owner; after the re-check the new answer
	// is in a new Principal, and the old one is untouched.
	renamed := *e.alice
	renamed.DisplayName = "Alice Liddell"
	if err := e.dir.AddUser(renamed, ""); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(5*time.Minute + time.Second) // the default OwnerCheckInterval
	p3, err := e.auth(t, "alice", secret)
	if err != nil {
		t.Fatal(err)
	}
	if p3 == p1 || p3.User.DisplayName != "Alice Liddell" || p1.User.DisplayName != "Alice" {
		t.Errorf("after the re-check: new %q (same: %v), old %q", p3.User.DisplayName, p3 == p1, p1.User.DisplayName)
	}
	// Presented with another username: refused, though the credential is cached.
	if _, err := e.auth(t, "bob", secret); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("another username: %v", err)
	}
	// Disabled: refused after the next re-check.
	if err := e.dir.SetDisabled("alice", true); err != nil {
		t.Fatal(err)
	}
	if _, err := e.auth(t, "alice", secret); err != nil {
		t.Fatalf("disabled, before the re-check: %v", err)
	}
	e.clock.Add(5*time.Minute + time.Second)
	if _, err := e.auth(t, "alice", secret); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("disabled owner: %v", err)
	}
	if err := e.dir.SetDisabled("alice", false); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(5*time.Minute + time.Second)
	if _, err := e.auth(t, "alice", secret); err != nil {
		t.Fatalf("enabled again: %v", err)
	}
	if err := e.m.RevokeAppPassword(t.Context(), e.alice.ID, ap.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.auth(t, "alice", secret); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("after revoke: %v", err)
	}
}

// TestQuietHits: with Options.QuietHits the event hook is not called for
// unmeasured cached successes, which Stats counts instead; every other
// event still reaches it. Without it the hook sees every success.
func TestQuietHits(t *testing.T) {
	for _, quiet := range []bool{false, true} {
		var mu sync.Mutex
		var hits, measured, failed int
		e := newEnv(t, func(o *auth.Options) {
			o.QuietHits = quiet
			o.OnEvent = func(ev auth.Event) {
				mu.Lock()
				defer mu.Unlock()
				switch {
				case ev.Type == auth.EventAuthenticated && ev.Cache == auth.CacheHit:
					hits++
					if ev.Duration > 0 {
						measured++
					}
				case ev.Type == auth.EventFailed:
					failed++
				}
			}
		})
		_, secret := e.issue(t, e.alice, "phone")
		const n = 500
		for range n + 1 { // the first is a miss
			if _, err := e.auth(t, "alice", secret); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := e.auth(t, "bob", secret); !errors.Is(err, auth.ErrInvalidCredentials) {
			t.Fatal(err)
		}
		if got := e.m.Stats().CachedSuccesses; got != n {
			t.Errorf("quiet=%v: Stats.CachedSuccesses = %d, want %d", quiet, got, n)
		}
		mu.Lock()
		switch {
		case !quiet && hits != n:
			t.Errorf("hook saw %d cached successes, want every one of %d", hits, n)
		case quiet && hits != measured:
			t.Errorf("quiet: hook saw %d cached successes, %d of them measured: want only measured ones", hits, measured)
		case quiet && hits > n/8:
			t.Errorf("quiet: hook saw %d of %d cached successes, want about 1 in 64", hits, n)
		}
		if failed != 1 {
			t.Errorf("quiet=%v: hook saw %d failures, want 1", quiet, failed)
		}
		mu.Unlock()
	}
}

// TestParallelCachedVerifiesAndRevokes: verifies of many cached
// credentials on every core while others are issued, revoked and the cache
// churns (a cache smaller than the credentials): under -race, the
// lock-free read path shows no race, a revoked credential is refused once
// Revoke returns, and the others keep working.
func TestParallelCachedVerifiesAndRevokes(t *testing.T) {
	e := newEnv(t, func(o *auth.Options) { o.CacheSize = 40; o.Logger = nil })
	type cred struct {
		ap       *auth.AppPassword
		secret   string
		revoking atomic.Bool // set before Revoke is called
		revoked  atomic.Bool // set once it returned
	}
	creds := make([]*cred, 64)
	for i := range creds {
		ap, s := e.issue(t, e.alice, "device")
		creds[i] = &cred{ap: ap, secret: s}
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var bad atomic.Int64
	for w := range 4 {
		wg.Go(func() {
			for i := w; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				c := creds[i%len(creds)]
				wasRevoked := c.revoked.Load()
				_, err := e.m.Authenticate(t.Context(), auth.Attempt{Username: "alice", Password: c.secret, RemoteAddr: "192.0.2.7"})
				if wasRevoked && err == nil {
					bad.Add(1)
				}
				if err != nil && !c.revoking.Load() {
					t.Errorf("credential %s refused: %v", c.ap.ID, err)
				}
			}
		})
	}
	for i := 0; i < len(creds); i += 2 {
		creds[i].revoking.Store(true)
		if err := e.m.RevokeAppPassword(t.Context(), e.alice.ID, creds[i].ap.ID); err != nil {
			t.Fatal(err)
		}
		creds[i].revoked.Store(true)
		if _, err := e.auth(t, "alice", creds[i].secret); !errors.Is(err, auth.ErrInvalidCredentials) {
			t.Errorf("revoked %s: %v", creds[i].ap.ID, err)
		}
	}
	close(stop)
	wg.Wait()
	if n := bad.Load(); n > 0 {
		t.Errorf("%d verifies that began after Revoke returned succeeded", n)
	}
}

// TestTypoOfACachedSecret: the check character is tested only for secrets
// the cache does not know, so a typo of a cached secret (another hash, a
// miss) is still refused before the Limiter, the store or the directory is
// asked, and the cached secret itself keeps working.
func TestTypoOfACachedSecret(t *testing.T) {
	lim := &testkit.Limiter{}
	e := newEnv(t, func(o *auth.Options) { o.Limiter = lim })
	_, secret := e.issue(t, e.alice, "phone")
	if _, err := e.auth(t, "alice", secret); err != nil {
		t.Fatal(err)
	}
	allowed, lookups, dir := len(lim.Allowed()), e.store.Lookups.Load(), e.dir.lookups.Load()
	for _, typo := range []string{testkit.Typo(secret), strings.ToUpper(testkit.Typo(secret))} {
		if _, err := e.auth(t, "alice", typo); !errors.Is(err, auth.ErrInvalidCredentials) {
			t.Fatalf("typo %q: %v", typo, err)
		}
	}
	if n := len(lim.Allowed()) - allowed; n != 0 {
		t.Errorf("typos asked the Limiter %d times", n)
	}
	if n := e.store.Lookups.Load() - lookups; n != 0 {
		t.Errorf("typos reached the store %d times", n)
	}
	if n := e.dir.lookups.Load() - dir; n != 0 {
		t.Errorf("typos reached the directory %d times", n)
	}
	if _, err := e.auth(t, "alice", strings.ToUpper(secret)); err != nil {
		t.Errorf("the cached secret, upper case: %v", err)
	}
}

// TestExpiryDecidedByTheExactClock: app-password verifies read a coarse
// clock that a ticker advances, which lags the real one; an expiry is
// decided by the exact clock near its boundary, so a credential is refused
// the moment it expires, even while the coarse clock still says before.
func TestExpiryDecidedByTheExactClock(t *testing.T) {
	e := realClockEnv(t, nil)
	m, alice := e.m, e.alice
	for round := range 5 {
		expires := time.Now().Add(50 * time.Millisecond).Truncate(time.Microsecond)
		_, secret, err := m.IssueAppPassword(t.Context(), alice, auth.IssueRequest{Name: fmt.Sprint("short-lived ", round), ExpiresAt: expires})
		if err != nil {
			t.Fatal(err)
		}
		c := auth.Attempt{Username: "alice", Password: secret}
		if _, err := m.Authenticate(t.Context(), c); err != nil {
			t.Fatalf("before its expiry: %v", err)
		}
		waitFor(t, "the coarse clock to run after a verify", m.CoarseClockRunning)
		for time.Now().Before(expires) { // the state waited for is the clock itself
			runtime.Gosched()
		}
		if _, err := m.Authenticate(t.Context(), c); !errors.Is(err, auth.ErrInvalidCredentials) {
			t.Fatalf("round %d: right after its expiry: %v, want ErrInvalidCredentials", round, err)
		}
	}
}

// TestCoarseClockStopsWhenIdle: the ticker runs only while verifies read
// it (an idle server is not woken every millisecond), starts again with
// the next verify, and Close stops it.
func TestCoarseClockStopsWhenIdle(t *testing.T) {
	e := realClockEnv(t, nil)
	m := e.m
	_, secret := e.issue(t, e.alice, "phone")
	c := auth.Attempt{Username: "alice", Password: secret}
	for range 2 {
		if _, err := m.Authenticate(t.Context(), c); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the coarse clock to run after a verify", m.CoarseClockRunning)
		// It stops after about a second without a verify.
		waitFor(t, "the coarse clock to stop when idle", func() bool { return !m.CoarseClockRunning() })
	}
	if _, err := m.Authenticate(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if m.CoarseClockRunning() {
		t.Error("the coarse clock runs after Close")
	}
}

// realClockEnv is newEnv on the real clock, whose app-password verifies
// read the coarse clock, with the default, discarding logger.
func realClockEnv(t *testing.T, edit func(*auth.Options)) *env {
	return newEnv(t, func(o *auth.Options) {
		o.Now, o.Logger = nil, nil
		if edit != nil {
			edit(o)
		}
	})
}

// waitFor waits for cond, polling, for at most 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited 30 s for %s", what)
		}
	}
}

// TestExpiryAfterAClockJump: after a suspend (which the monotonic clock
// does not count) or a step of the wall clock, the verify clocks' anchor
// lags the wall clock until it is re-anchored; an app password that
// expired meanwhile is refused all the same, whether the coarse clock
// runs (its next tick re-anchors) or is stopped (the exact clock decides).
func TestExpiryAfterAClockJump(t *testing.T) {
	// The background re-anchor no sooner than every 5 s.
	e := realClockEnv(t, func(o *auth.Options) { o.LastUsedInterval = time.Hour })
	m, alice := e.m, e.alice
	const lag = 2 * time.Hour // more than any margin the exact clock decides in
	for _, running := range []bool{true, false} {
		expires := time.Now().Add(50 * time.Millisecond).Truncate(time.Microsecond)
		_, secret, err := m.IssueAppPassword(t.Context(), alice, auth.IssueRequest{Name: fmt.Sprint("short-lived ", running), ExpiresAt: expires})
		if err != nil {
			t.Fatal(err)
		}
		c := auth.Attempt{Username: "alice", Password: secret}
		if _, err := m.Authenticate(t.Context(), c); err != nil {
			t.Fatalf("before its expiry: %v", err)
		}
		for time.Now().Before(expires) { // the state waited for is the clock itself
			runtime.Gosched()
		}
		if running {
			waitFor(t, "the coarse clock to run after a verify", m.CoarseClockRunning)
			m.LagClock(lag)
			// A tick after the jump, as a request arriving after a resume.
			before := m.CoarseClock()
			waitFor(t, "a tick of the coarse clock", func() bool { return m.CoarseClock() != before })
		} else {
			waitFor(t, "the coarse clock to stop when idle", func() bool { return !m.CoarseClockRunning() })
			m.LagClock(lag)
		}
		if _, err := m.Authenticate(t.Context(), c); !errors.Is(err, auth.ErrInvalidCredentials) {
			t.Fatalf("coarse clock running %v: %v after its expiry and a clock jump of %v, want ErrInvalidCredentials", running, err, lag)
		}
	}
}

// TestParallelCachedVerifiesAndRevokeAll: RevokeAllAppPasswords (the
// cache's scan by owner) racing cached verifies of two users' credentials
// under -race, the cache churning (more credentials than it holds): once
// it returns, no verify of the revoked owner's credentials succeeds, and
// the other owner's keep working throughout. The readers read the shared
// Principal's fields while they race.
func TestParallelCachedVerifiesAndRevokeAll(t *testing.T) {
	e := newEnv(t, func(o *auth.Options) { o.CacheSize = 24; o.Logger = nil })
	type cred struct {
		login, secret string
	}
	var creds []cred
	for i := range 16 {
		_, a := e.issue(t, e.alice, fmt.Sprint("alice device ", i))
		_, b := e.issue(t, e.bob, fmt.Sprint("bob device ", i))
		creds = append(creds, cred{"alice", a}, cred{"bob", b})
	}
	var revoked atomic.Bool // set once RevokeAllAppPasswords returned
	var bad, bobRefused atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Go(func() {
			for i := w; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				c := creds[i%len(creds)]
				wasRevoked := revoked.Load()
				p, err := e.m.Authenticate(t.Context(), auth.Attempt{Username: c.login, Password: c.secret, RemoteAddr: "192.0.2.7"})
				switch {
				case err == nil && p.User.Login != c.login:
					t.Errorf("%s's credential authenticated %q", c.login, p.User.Login)
				case err == nil && c.login == "alice" && wasRevoked:
					bad.Add(1)
				case err != nil && c.login == "bob":
					bobRefused.Add(1)
				}
				if err == nil && (len(p.Scopes) != 0 || c.login == "alice" && !slices.Equal(p.User.Groups, []string{"staff"})) {
					t.Errorf("%s: Principal %+v", c.login, p)
				}
			}
		})
	}
	// Let every worker go through the credentials (and the cache churn)
	// before revoking.
	for n := e.store.Lookups.Load(); e.store.Lookups.Load() < n+int64(len(creds)); {
		runtime.Gosched()
	}
	n, err := e.m.RevokeAllAppPasswords(t.Context(), e.alice.ID)
	if err != nil || n != 16 {
		t.Fatalf("RevokeAllAppPasswords = %d, %v", n, err)
	}
	revoked.Store(true)
	for _, c := range creds {
		if _, err := e.auth(t, c.login, c.secret); c.login == "alice" && !errors.Is(err, auth.ErrInvalidCredentials) {
			t.Errorf("alice's revoked credential: %v", err)
		} else if c.login == "bob" && err != nil {
			t.Errorf("bob's credential after alice's were revoked: %v", err)
		}
	}
	close(stop)
	wg.Wait()
	if n := bad.Load(); n > 0 {
		t.Errorf("%d verifies that began after RevokeAllAppPasswords returned succeeded", n)
	}
	if n := bobRefused.Load(); n > 0 {
		t.Errorf("bob's credentials refused %d times", n)
	}
}

// TestSpellingsOfACachedSecret: a verified app password is a cache hit in
// every spelling it is accepted in (the quick one, as shown or canonical,
// and any other, through the full check), and only there: the shown
// spelling with another separator, or junk of the same length, are
// refused and are no hit.
func TestSpellingsOfACachedSecret(t *testing.T) {
	e := newEnv(t, nil)
	_, secret := e.issue(t, e.alice, "phone")
	if _, err := e.auth(t, "alice", secret); err != nil {
		t.Fatal(err)
	}
	canonical := strings.ReplaceAll(secret, "-", "")
	body := canonical[len("aap"):]
	moved := "aap" + body[:7] + "-" + body[7:15] + "-" + body[15:23] + "-" + body[23:] + "-"
	for _, spelling := range []string{secret, canonical, strings.ToUpper(secret), "aap " + body[:16] + " " + body[16:], "AAP_" + body, moved} {
		hits := e.m.Stats().CachedSuccesses
		if _, err := e.auth(t, "alice", spelling); err != nil {
			t.Errorf("%q: %v", spelling, err)
		}
		if n := e.m.Stats().CachedSuccesses - hits; n != 1 {
			t.Errorf("%q: %d cache hits, want 1", spelling, n)
		}
	}
	lookups := e.store.Lookups.Load()
	for _, wrong := range []string{
		strings.ReplaceAll(secret, "-", "+"),
		"aap-" + strings.Repeat("o", 8) + secret[12:],
		"aap" + body[1:] + body[:1],
	} {
		hits := e.m.Stats().CachedSuccesses
		if _, err := e.auth(t, "alice", wrong); !errors.Is(err, auth.ErrInvalidCredentials) {
			t.Errorf("%q: %v, want ErrInvalidCredentials", wrong, err)
		}
		if n := e.m.Stats().CachedSuccesses - hits; n != 0 {
			t.Errorf("%q: %d cache hits, want none", wrong, n)
		}
	}
	if n := e.store.Lookups.Load() - lookups; n > 1 {
		t.Errorf("the wrong spellings reached the store %d times, want at most once (the rotated body, if its check character passes)", n)
	}
}
