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
