package sqlstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/backends/memory"
	"github.com/appauth/appauth/backends/sqlstore"
	"github.com/appauth/appauth/internal/testenv"
	"github.com/appauth/appauth/internal/testkit"
)

// within waits for fn's result for at most limit, a generous safety net
// (not a timing assertion): a call that never returns fails the test
// instead of hanging it.
func within[T any](t *testing.T, limit time.Duration, what string, fn func() T) (T, time.Duration) {
	t.Helper()
	start := time.Now()
	done := make(chan T, 1)
	go func() { done <- fn() }()
	select {
	case v := <-done:
		return v, time.Since(start)
	case <-time.After(limit):
		t.Fatalf("%s did not return within %s", what, limit)
		panic("unreachable")
	}
}

// TestHungPostgresIsUnavailableAndCloseIsBounded pauses PostgreSQL (SIGSTOP:
// connections open, nothing answers). A verify that needs the store answers
// ErrUnavailable once Options.StoreTimeout has passed instead of waiting for
// the outage, a verify from the cache still works, and Close gives up on
// the final last-used write and says how many updates it dropped.
func TestHungPostgresIsUnavailableAndCloseIsBounded(t *testing.T) {
	srv := testenv.NewPostgres(t) // paused below: a server of its own
	store := &watchedStore{Store: mustOpen(t, sqlstore.OpenPostgres, srv.Database(t)), events: make(chan [2]string, 16)}
	clock := testkit.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	const timeout = time.Second
	m, err := auth.NewManager(store, newDirectory(), &auth.Options{
		Peppers: []auth.Pepper{testkit.Pepper()}, Now: clock.Now,
		StoreTimeout: timeout, CacheTTL: time.Hour, LastUsedInterval: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			m.Close()
		}
	})
	ctx := t.Context()
	// The watcher clears the cache once it listens: wait for that first.
	if ev := store.next(t, "the listener to start"); ev != [2]string{} {
		t.Fatalf("first change event %q, want the listener's forget-everything", ev)
	}
	_, cached, err := m.IssueAppPassword(ctx, alice, auth.IssueRequest{Name: "cached"})
	if err != nil {
		t.Fatal(err)
	}
	_, uncached, err := m.IssueAppPassword(ctx, alice, auth.IssueRequest{Name: "uncached"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Authenticate(ctx, auth.Attempt{Username: "alice", Password: cached}); err != nil {
		t.Fatal(err)
	}

	srv.Pause(t)
	defer srv.Resume(t)

	err, took := within(t, 30*timeout, "Authenticate with a hung store", func() error {
		_, err := m.Authenticate(context.Background(), auth.Attempt{Username: "alice", Password: uncached})
		return err
	})
	if !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("verify with a hung store: %v, want ErrUnavailable", err)
	}
	t.Logf("hung PostgreSQL: ErrUnavailable after %s (StoreTimeout %s)", took.Round(time.Millisecond), timeout)

	// A use after LastUsedInterval queues a last-used update that cannot be written.
	clock.Add(2 * time.Minute)
	if _, err := m.Authenticate(ctx, auth.Attempt{Username: "alice", Password: cached}); err != nil {
		t.Fatalf("verify from the cache with a hung store: %v", err)
	}
	err, took = within(t, 30*timeout, "Close with a hung store", m.Close)
	closed = true
	if err == nil || !strings.Contains(err.Error(), "dropped 1 last-used update") {
		t.Fatalf("Close with a hung store: %v, want it to say it dropped 1 last-used update", err)
	}
	t.Logf("hung PostgreSQL: Close returned after %s: %v", took.Round(time.Millisecond), err)
}

// newDirectory returns a memory directory holding alice.
func newDirectory() *memory.Directory {
	dir := memory.NewDirectory()
	dir.AddUser(*alice, "")
	return dir
}

// hungCall is one Store call that eachEndsAtDeadline makes on a paused
// PostgreSQL.
type hungCall struct {
	name string
	call func(ctx context.Context) error
}

// eachEndsAtDeadline makes each call under a context with deadline and
// wants ErrUnavailable soon after it, not a wait for the paused server: the
// check the hung tests make of every Store call the Manager does not bound.
func eachEndsAtDeadline(t *testing.T, deadline time.Duration, calls []hungCall) {
	t.Helper()
	for _, tc := range calls {
		err, took := within(t, 20*deadline, tc.name+" on a hung PostgreSQL", func() error {
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			return tc.call(ctx)
		})
		if !errors.Is(err, auth.ErrUnavailable) {
			t.Errorf("%s on a hung PostgreSQL: %v, want ErrUnavailable", tc.name, err)
		}
		t.Logf("%s on a hung PostgreSQL: error after %s (deadline %s): %v", tc.name, took.Round(time.Millisecond), deadline, err)
	}
}

// TestHungPostgresCallEndsAtItsDeadline calls the Store directly on a paused
// PostgreSQL with a context deadline: each call (a prepared lookup, a
// write, a ping, and calls that must open a new connection, since a call
// that timed out discards its own) returns an ErrUnavailable error soon
// after its deadline instead of waiting for the server, so the Manager may
// call it on the caller's goroutine (HonorsContext). After Resume the same
// pool works again.
func TestHungPostgresCallEndsAtItsDeadline(t *testing.T) {
	srv := testenv.NewPostgres(t) // paused below: a server of its own
	// A connect_timeout far beyond the calls' deadline: connecting, too,
	// must end at the deadline of the call that needs the connection.
	dsn := srv.Database(t) + "&connect_timeout=60"
	store, err := sqlstore.OpenPostgres(t.Context(), dsn, &sqlstore.Options{MaxOpenConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if !store.HonorsContext() {
		t.Error("HonorsContext is false on PostgreSQL")
	}
	c := &auth.StoredCredential{ID: "c1", Kind: auth.KindAppPassword, UserID: alice.ID, Login: alice.Login,
		Hash: []byte("hash of c1"), CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	if err := store.CreateCredential(t.Context(), c); err != nil {
		t.Fatal(err)
	}

	srv.Pause(t)
	resumed := false
	defer func() {
		if !resumed {
			srv.Resume(t)
		}
	}()
	const deadline = 500 * time.Millisecond
	calls := []hungCall{
		{"credential by hash", func(ctx context.Context) error { _, err := store.CredentialByHash(ctx, c.Hash); return err }},
		{"record usage", func(ctx context.Context) error {
			return store.RecordUsage(ctx, []auth.Usage{{ID: c.ID, UserID: c.UserID, At: time.Now()}})
		}},
		{"ping", store.Ping},
		// The pool's two connections are gone: these connect anew.
		{"credential (new connection)", func(ctx context.Context) error { _, err := store.Credential(ctx, c.UserID, c.ID); return err }},
		{"credential by hash (new connection)", func(ctx context.Context) error { _, err := store.CredentialByHash(ctx, c.Hash); return err }},
		{"list credentials (new connection)", func(ctx context.Context) error {
			_, err := store.ListCredentials(ctx, c.UserID, auth.KindAppPassword)
			return err
		}},
	}
	eachEndsAtDeadline(t, deadline, calls)

	srv.Resume(t)
	resumed = true
	got, err := store.CredentialByHash(t.Context(), c.Hash)
	if err != nil || got.ID != c.ID {
		t.Fatalf("credential by hash after Resume: %v, %v", got, err)
	}
	if err := store.Ping(t.Context()); err != nil {
		t.Fatalf("ping after Resume: %v", err)
	}
}

// TestHungPostgresSharedLookupEndsAtDeadline: on a paused PostgreSQL, a
// query sent for queued lookups (MaxConcurrentLookups 1: the first lookup
// holds the slot, two wait) ends at the latest of their deadlines, as each
// caller's own does, so it gives back its slot and its connection instead
// of holding them until the server answers.
func TestHungPostgresSharedLookupEndsAtDeadline(t *testing.T) {
	srv := testenv.NewPostgres(t) // paused below: a server of its own
	store, err := sqlstore.OpenPostgres(t.Context(), srv.Database(t)+"&connect_timeout=60",
		&sqlstore.Options{MaxConcurrentLookups: 1, MaxOpenConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	c := &auth.StoredCredential{ID: "c1", Kind: auth.KindAppPassword, UserID: alice.ID, Login: alice.Login,
		Hash: []byte("hash of c1"), CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	if err := store.CreateCredential(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	srv.Pause(t)
	defer srv.Resume(t)

	// The first lookup takes the slot and hangs; the next two queue behind
	// it with a later deadline, so they are still waiting when its query
	// fails and the slot sends theirs.
	lookup := func(d time.Duration, errs chan<- error) {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		_, err := store.CredentialByHash(ctx, c.Hash)
		errs <- err
	}
	errs := make(chan error, 3)
	go lookup(300*time.Millisecond, errs)
	waitFor(t, "the first lookup to hold a connection", func() bool { return store.Stats().InUse == 1 })
	for range 2 {
		go lookup(time.Second, errs)
	}
	waitFor(t, "three lookups", func() bool { return store.LookupStats().Lookups == 3 })
	for range 3 {
		if err, _ := within(t, 10*time.Second, "a lookup on a hung PostgreSQL", func() error { return <-errs }); !errors.Is(err, auth.ErrUnavailable) {
			t.Errorf("lookup on a hung PostgreSQL: %v, want ErrUnavailable", err)
		}
	}
	if st := store.LookupStats(); st.Shared != 2 {
		t.Errorf("lookup stats %+v: want the two queued lookups sent as one query", st)
	}
	// Still paused: the shared query, too, has given back its connection.
	waitFor(t, "the shared query to give back its connection", func() bool { return store.Stats().InUse == 0 })
}

// waitFor polls cond for up to 10 s, a safety net, not a timing assertion.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10s for %s", what)
		}
	}
}

// TestHungPostgresStoreCloseIsBounded: Close on a paused PostgreSQL returns
// although the connection that prepared the lookup statements last ran a
// call without a deadline (OpenPostgres under a context that has none):
// closing those statements waits for no answer the server never sends.
func TestHungPostgresStoreCloseIsBounded(t *testing.T) {
	srv := testenv.NewPostgres(t) // paused below: a server of its own
	store, err := sqlstore.OpenPostgres(context.Background(), srv.Database(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv.Pause(t)
	defer srv.Resume(t)
	err, took := within(t, 30*time.Second, "Store.Close on a hung PostgreSQL", store.Close)
	t.Logf("Store.Close on a hung PostgreSQL: returned after %s: %v", took.Round(time.Millisecond), err)
}

// newOnPlainPool returns a Store made with New from a plain lib/pq pool on
// dsn (no connector bounding each call, as OpenPostgres has), closed with
// the pool when the test ends: the New tests' store.
func newOnPlainPool(t *testing.T, dsn string) *sqlstore.Store {
	t.Helper()
	store, err := sqlstore.New(t.Context(), rawDB(t, "postgres", dsn), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

// TestHungPostgresTransientOnNewStore: the transient records (shared
// Login Flow v2 flows, which loginflow.SharedStore reads and writes on the
// request's goroutine) of a Store made with New from a plain lib/pq pool
// end at their context's deadline on a paused PostgreSQL, with
// ErrUnavailable, as on a Store from OpenPostgres, and so does Ping (a
// readiness probe): lib/pq alone waits for the hung server forever.
func TestHungPostgresTransientOnNewStore(t *testing.T) {
	srv := testenv.NewPostgres(t) // paused below: a server of its own
	store := newOnPlainPool(t, srv.Database(t))
	now := time.Now()
	key, value := []byte("key"), []byte("value")
	if err := store.PutTransient(t.Context(), "test", key, value, now.Add(time.Hour), now); err != nil {
		t.Fatal(err)
	}

	srv.Pause(t)
	defer srv.Resume(t)
	const deadline = 500 * time.Millisecond
	calls := []hungCall{
		{"transient", func(ctx context.Context) error { _, err := store.Transient(ctx, "test", key, now); return err }},
		{"put transient", func(ctx context.Context) error {
			return store.PutTransient(ctx, "test", []byte("other"), value, now.Add(time.Hour), now)
		}},
		{"swap transient", func(ctx context.Context) error { return store.SwapTransient(ctx, "test", key, value, value, now) }},
		{"take transient", func(ctx context.Context) error { _, err := store.TakeTransient(ctx, "test", key, now); return err }},
		{"delete expired transients", func(ctx context.Context) error {
			_, err := store.DeleteExpiredTransients(ctx, "test", now)
			return err
		}},
		{"ping", store.Ping},
	}
	eachEndsAtDeadline(t, deadline, calls)
}
