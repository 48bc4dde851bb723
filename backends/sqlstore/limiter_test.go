package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/throttle"
	"github.com/appauth/appauth/backends/sqlstore"
	"github.com/appauth/appauth/internal/benchpair"
	"github.com/appauth/appauth/internal/testenv"
	"github.com/appauth/appauth/internal/testkit"
)

// nodes returns n Limiters, each on a Store of its own (n servers) on the
// database dsn, each with an in-memory Throttle in front, all on clock.
func nodes(t *testing.T, dsn string, n int, clock *testkit.Clock) []auth.Limiter {
	t.Helper()
	var out []auth.Limiter
	for range n {
		front, err := throttle.New(&throttle.Options{Now: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		l, err := sqlstore.NewLimiter(mustOpen(t, sqlstore.OpenPostgres, dsn), &sqlstore.LimiterOptions{
			Front: front, Key: testkit.Pepper().Key, Now: clock.Now,
		})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, l)
	}
	return out
}

// inMemory returns n independent Throttles: n servers without a shared
// limiter, the baseline the shared one must beat.
func inMemory(t *testing.T, n int, clock *testkit.Clock) []auth.Limiter {
	var out []auth.Limiter
	for range n {
		th, err := throttle.New(&throttle.Options{Now: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, th)
	}
	return out
}

// guess spreads attempts round-robin over ls, each a distinct wrong
// password from the address and login attempt(i) names, advancing the clock
// past every refusal's Retry-After (an attacker that waits exactly as long
// as it is told, but not past the end), until the clock has run for span. It returns how many
// attempts were evaluated (allowed), all reported as failures.
func guess(t *testing.T, ls []auth.Limiter, clock *testkit.Clock, span time.Duration, attempt func(i int) auth.Attempt) int {
	t.Helper()
	evaluated := 0
	end := clock.Now().Add(span)
	for i := 0; clock.Now().Before(end); i++ {
		l := ls[i%len(ls)]
		a := attempt(i)
		a.Password = fmt.Sprint("wrong-", i)
		err := l.Allow(t.Context(), a)
		var te *auth.ThrottleError
		switch {
		case err == nil:
			evaluated++
			l.Done(a, false)
		case errors.As(err, &te):
			clock.Add(min(te.RetryAfter, end.Sub(clock.Now()))) // at most to the end of the run
		default:
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	return evaluated
}

// TestLimiterSharedAcrossServers: three servers on one database give an
// attacker spreading guesses round-robin what one server gives, per
// address (AddressLimit before the first wait) and per login from many
// addresses (LoginLockout in the whole ForgetAfter), where three
// independent in-memory throttles give three times as much.
func TestLimiterSharedAcrossServers(t *testing.T) {
	dsn := testenv.Postgres(t)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

	// Per address: no waiting; the first refusal ends the run.
	oneAddress := func(i int) auth.Attempt { return auth.Attempt{Username: "victim", RemoteAddr: "203.0.113.7"} }
	count := func(ls []auth.Limiter, clock *testkit.Clock) int {
		n := 0
		for i := range 300 {
			a := oneAddress(i)
			a.Password = fmt.Sprint("wrong-", i)
			l := ls[i%len(ls)]
			if l.Allow(t.Context(), a) == nil {
				n++
				l.Done(a, false)
			}
		}
		return n
	}
	c1 := testkit.NewClock(start)
	if got := count(nodes(t, dsn, 3, c1), c1); got != 10 {
		t.Errorf("3 shared servers, one address, no waiting: %d guesses evaluated, want 10 (one server's AddressLimit)", got)
	}
	c0 := testkit.NewClock(start)
	if base := count(inMemory(t, 3, c0), c0); base != 30 {
		t.Errorf("baseline, 3 in-memory throttles: %d evaluated, want 30 (the weakness this fixes)", base)
	}

	// Per login, from a new address each time, waiting as told, for two
	// days: at most LoginLockout in all.
	manyAddresses := func(i int) auth.Attempt {
		return auth.Attempt{Username: "Target", RemoteAddr: fmt.Sprintf("198.%d.%d.%d", 51+i/65536%100, i/256%256, i%256)}
	}
	c1 = testkit.NewClock(start)
	single := guess(t, inMemory(t, 1, c1), c1, 24*time.Hour, manyAddresses)
	c2 := testkit.NewClock(start)
	shared := guess(t, nodes(t, dsn, 3, c2), c2, 24*time.Hour, manyAddresses)
	c3 := testkit.NewClock(start)
	base := guess(t, inMemory(t, 3, c3), c3, 24*time.Hour, manyAddresses)
	t.Logf("one login, many addresses, 24h: one server %d, three shared %d, three in-memory %d evaluated", single, shared, base)
	if shared != single || shared > 100 {
		t.Errorf("3 shared servers: %d guesses evaluated, want one server's %d (at most LoginLockout, 100)", shared, single)
	}
	if base <= single {
		t.Errorf("baseline, 3 in-memory throttles: %d evaluated, want more than one server's %d (the weakness this fixes)", base, single)
	}
}

// TestLimiterTrustAndClearingShared: a success on one server trusts its
// prefix for the login on every server (the owner keeps getting in while an
// attacker has exhausted the login's budget), and takes the login's failed
// attempts from there off the prefix's count everywhere.
func TestLimiterTrustAndClearingShared(t *testing.T) {
	dsn := testenv.Postgres(t)
	clock := testkit.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	ls := nodes(t, dsn, 3, clock)
	ctx := t.Context()
	home := auth.Attempt{Username: "owner", Password: "right", RemoteAddr: "192.0.2.10"}
	// Nine typos from home on server 0, then the right password on server 1.
	for i := range 9 {
		a := home
		a.Password = fmt.Sprint("typo-", i)
		if err := ls[0].Allow(ctx, a); err != nil {
			t.Fatalf("typo %d: %v", i, err)
		}
		ls[0].Done(a, false)
	}
	if err := ls[1].Allow(ctx, home); err != nil {
		t.Fatal(err)
	}
	ls[1].Done(home, true)
	// The address's count is back to 0: ten failures of another login
	// from home on server 2 before a wait, not one.
	for i := range 10 {
		a := auth.Attempt{Username: "guest", Password: fmt.Sprint("g-", i), RemoteAddr: home.RemoteAddr}
		if err := ls[2].Allow(ctx, a); err != nil {
			t.Fatalf("after the success on another server, failure %d of another login from home: %v, want allowed", i+1, err)
		}
		ls[2].Done(a, false)
	}
	// An attacker exhausts the login from many addresses over servers 1
	// and 2...
	guess(t, ls[1:], clock, 24*time.Hour, func(i int) auth.Attempt {
		return auth.Attempt{Username: "owner", RemoteAddr: fmt.Sprintf("198.51.%d.%d", i/256%256, i%256)}
	})
	stranger := auth.Attempt{Username: "owner", Password: "x", RemoteAddr: "198.18.0.1"}
	if err := ls[0].Allow(ctx, stranger); !errors.Is(err, auth.ErrThrottled) {
		t.Fatalf("a new address after the lockout on server 0: %v, want ErrThrottled", err)
	}
	// ... and the owner's trusted home prefix still gets in on server 0,
	// which never saw its success.
	if err := ls[0].Allow(ctx, home); err != nil {
		t.Fatalf("the owner's trusted prefix on another server during the lockout: %v, want allowed", err)
	}
	ls[0].Done(home, true)
}

// TestLimiterOutageFailsClosed: with PostgreSQL stopped, Allow is
// ErrUnavailable (503), never an allowed attempt, and the in-memory front
// forgets the attempt (after the restart the same client is not held by
// attempts in flight that never ended).
func TestLimiterOutageFailsClosed(t *testing.T) {
	srv := testenv.NewPostgres(t)
	clock := testkit.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	l := nodes(t, srv.Database(t), 1, clock)[0]
	a := auth.Attempt{Username: "alice", Password: "p", RemoteAddr: "192.0.2.1"}
	if err := l.Allow(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	l.Done(a, false)
	srv.Stop(t)
	for i := range 20 {
		if err := l.Allow(t.Context(), a); !errors.Is(err, auth.ErrUnavailable) {
			t.Fatalf("attempt %d with PostgreSQL stopped: %v, want ErrUnavailable", i, err)
		}
	}
	srv.Start(t)
	var err error
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if err = l.Allow(t.Context(), a); !errors.Is(err, auth.ErrUnavailable) || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("after the restart: %v, want allowed (one failure so far)", err)
	}
	l.Done(a, false)
}

// BenchmarkLimiterAttempt measures what the shared Limiter adds to an
// attempt: a cached verify through a Manager with the in-memory Throttle
// (baseline) beside the same verify through a Manager with the PostgreSQL
// Limiter (the Throttle in front), on one store. The ratio is the shared
// limiter's throughput as a share of the in-memory one's.
func BenchmarkLimiterAttempt(b *testing.B) {
	dsn := testenv.Postgres(b)
	store := mustOpen(b, sqlstore.OpenPostgres, dsn)
	memLimiter, err := throttle.New(nil)
	if err != nil {
		b.Fatal(err)
	}
	front, err := throttle.New(nil)
	if err != nil {
		b.Fatal(err)
	}
	shared, err := sqlstore.NewLimiter(store, &sqlstore.LimiterOptions{Front: front, Key: testkit.Pepper().Key})
	if err != nil {
		b.Fatal(err)
	}
	mem := newManager(b, store, func(o *auth.Options) { o.Limiter = memLimiter })
	sh := newManager(b, store, func(o *auth.Options) { o.Limiter = shared })
	_, secret, err := mem.IssueAppPassword(b.Context(), alice, auth.IssueRequest{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	c := auth.Attempt{Username: "alice", Password: secret, RemoteAddr: "192.0.2.1"}
	benchpair.Run(b, func() (benchpair.Pair, error) {
		return benchpair.Pair{
			Baseline: func() error { _, err := mem.Authenticate(b.Context(), c); return err },
			Subject:  func() error { _, err := sh.Authenticate(b.Context(), c); return err },
		}, nil
	})
}

// TestLimiterPurge: counts whose last failure is forgotten are deleted,
// and none that still counts.
func TestLimiterPurge(t *testing.T) {
	dsn := testenv.Postgres(t)
	clock := testkit.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	store := mustOpen(t, sqlstore.OpenPostgres, dsn)
	l, err := sqlstore.NewLimiter(store, &sqlstore.LimiterOptions{Key: testkit.Pepper().Key, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	fail := func(addr string) {
		a := auth.Attempt{Username: "alice", Password: "x", RemoteAddr: addr}
		if err := l.Allow(t.Context(), a); err != nil {
			t.Fatal(err)
		}
		l.Done(a, false)
	}
	fail("192.0.2.1") // three rows: address, login, pair
	clock.Add(25 * time.Hour)
	fail("192.0.2.2") // three rows, the login's renewed
	n, err := l.Purge(t.Context())
	if err != nil || n != 2 {
		t.Fatalf("Purge = %d, %v; want the first address's and pair's rows", n, err)
	}
	if n, err := l.Purge(t.Context()); err != nil || n != 0 {
		t.Fatalf("second Purge = %d, %v; want 0", n, err)
	}
}

// TestLimiterRepeatCountsOncePerServer: a device retrying one stale
// password does not spend its address's budget: on three servers the
// repeat counts once per server, so the address still has AddressLimit-3
// distinct failures before it waits.
func TestLimiterRepeatCountsOncePerServer(t *testing.T) {
	dsn := testenv.Postgres(t)
	clock := testkit.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	ls := nodes(t, dsn, 3, clock)
	stale := auth.Attempt{Username: "phone-owner", Password: "old-password", RemoteAddr: "192.0.2.77"}
	for i := range 30 {
		l := ls[i%3]
		if err := l.Allow(t.Context(), stale); err != nil {
			t.Fatalf("stale retry %d: %v, want allowed (a repeat counts once per server)", i, err)
		}
		l.Done(stale, false)
	}
	allowed := 0
	for i := range 20 {
		a := auth.Attempt{Username: "someone", Password: fmt.Sprint("guess-", i), RemoteAddr: stale.RemoteAddr}
		if ls[i%3].Allow(t.Context(), a) == nil {
			allowed++
			ls[i%3].Done(a, false)
		}
	}
	if allowed != 10-3 {
		t.Errorf("distinct failures from the address after 30 stale retries on 3 servers: %d allowed, want %d", allowed, 10-3)
	}
}

// TestHungPostgresLimiterOnNewStore: a Limiter on a Store made with New
// from a plain lib/pq pool (which waits for a hung server whatever its
// context says) still ends each query at LimiterOptions.Timeout on a
// paused PostgreSQL: Allow is ErrUnavailable (503), Done returns, and Purge
// ends at its context's deadline, so a hung database never holds a
// sign-in, and the request behind it, forever. The Manager calls the
// Limiter on the request's goroutine.
func TestHungPostgresLimiterOnNewStore(t *testing.T) {
	srv := testenv.NewPostgres(t) // paused below: a server of its own
	store := newOnPlainPool(t, srv.Database(t))
	const timeout = 500 * time.Millisecond
	l, err := sqlstore.NewLimiter(store, &sqlstore.LimiterOptions{Key: testkit.Pepper().Key, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	a := auth.Attempt{Username: "alice", Password: "p", RemoteAddr: "192.0.2.1"}
	if err := l.Allow(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	l.Done(a, false) // a failure: the next Allow must read the count

	srv.Pause(t)
	defer srv.Resume(t)
	err, took := within(t, 20*timeout, "Limiter.Allow on a hung PostgreSQL", func() error { return l.Allow(context.Background(), a) })
	if !errors.Is(err, auth.ErrUnavailable) {
		t.Errorf("Allow on a hung PostgreSQL: %v, want ErrUnavailable", err)
	}
	t.Logf("Allow on a hung PostgreSQL: error after %s (Timeout %s): %v", took.Round(time.Millisecond), timeout, err)
	b := auth.Attempt{Username: "bob", Password: "p", RemoteAddr: "192.0.2.2"}
	_, took = within(t, 20*timeout, "Limiter.Done on a hung PostgreSQL", func() struct{} { l.Done(b, false); return struct{}{} })
	t.Logf("Done on a hung PostgreSQL: returned after %s", took.Round(time.Millisecond))
	err, took = within(t, 20*timeout, "Limiter.Purge on a hung PostgreSQL", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		_, err := l.Purge(ctx)
		return err
	})
	if !errors.Is(err, auth.ErrUnavailable) {
		t.Errorf("Purge on a hung PostgreSQL: %v, want ErrUnavailable", err)
	}
	t.Logf("Purge on a hung PostgreSQL: error after %s: %v", took.Round(time.Millisecond), err)
}

// warnings is a slog.Handler that keeps every record's message and
// attributes, for a test to look for an error in them.
type warnings struct {
	mu   sync.Mutex
	text []string
}

func (h *warnings) Enabled(context.Context, slog.Level) bool { return true }
func (h *warnings) Handle(_ context.Context, r slog.Record) error {
	s := r.Message
	r.Attrs(func(a slog.Attr) bool { s += " " + a.Key + "=" + a.Value.String(); return true })
	h.mu.Lock()
	h.text = append(h.text, s)
	h.mu.Unlock()
	return nil
}
func (h *warnings) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *warnings) WithGroup(string) slog.Handler      { return h }

func (h *warnings) all() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.text)
}

// TestLimiterFailureRacingSuccess: a failure and a success of one login
// from one address written at once (a device with a stale password beside
// one with the new, behind the same address, on two servers or one) both
// reach the table. The failure's upsert took the address's row and then
// the pair's; the success took the pair's and then the address's: each
// waited for the other, PostgreSQL broke the deadlock after a second by
// failing one, and the failure was not counted (or the success's clearing
// lost). The test orders the two with a third transaction holding the
// address's row: the failure waits first, the success after it.
func TestLimiterFailureRacingSuccess(t *testing.T) {
	dsn := testenv.Postgres(t)
	log := &warnings{}
	l, err := sqlstore.NewLimiter(mustOpen(t, sqlstore.OpenPostgres, dsn), &sqlstore.LimiterOptions{
		Key: testkit.Pepper().Key, Logger: slog.New(log), Timeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	first := auth.Attempt{Username: "alice", Password: "stale", RemoteAddr: "192.0.2.1"}
	if err := l.Allow(ctx, first); err != nil {
		t.Fatal(err)
	}
	l.Done(first, false) // the pair has a failure a success clears from the address

	db := rawDB(t, "postgres", dsn)
	tx, waiting := sqlstore.HoldRowLock(t, db, "SELECT 1 FROM appauth_throttle WHERE key LIKE 'a:%' FOR UPDATE")
	var wg sync.WaitGroup
	failure := auth.Attempt{Username: "alice", Password: "stale too", RemoteAddr: "192.0.2.1"}
	success := auth.Attempt{Username: "alice", Password: "right", RemoteAddr: "192.0.2.1"}
	for _, a := range []auth.Attempt{failure, success} {
		if err := l.Allow(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	wg.Go(func() { l.Done(failure, false) })
	waitFor(t, "the failure to wait for the address's row", waiting(1))
	wg.Go(func() { l.Done(success, true) })
	waitFor(t, "the success to wait too", waiting(2))
	tx.Rollback()
	wg.Wait()
	for _, w := range log.all() {
		t.Errorf("a failure and a success at once: %s", w)
	}
	var failures int
	if err := db.QueryRowContext(ctx, "SELECT failures FROM appauth_throttle WHERE key LIKE 'l:%'").Scan(&failures); err != nil || failures != 2 {
		t.Errorf("the login's failures: %d (%v), want 2", failures, err)
	}
}
