package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/backends/sqlstore"
	"github.com/appauth/appauth/internal/testenv"
)

// TestPoolKeepsConnections holds n concurrent lookups open at once (a raw
// connection locks the table, so each needs a connection of its own), then
// lets them finish: every connection they opened must stay in the pool,
// idle, for the next burst. With database/sql's default of 2 idle
// connections, n-2 of them were closed again, and the next burst of misses
// opened new PostgreSQL backends. MaxConcurrentLookups is n, so that the
// n lookups do not share queries.
func TestPoolKeepsConnections(t *testing.T) {
	const n = 8
	dsn := testenv.Postgres(t)
	s, err := sqlstore.OpenPostgres(t.Context(), dsn, &sqlstore.Options{MaxConcurrentLookups: n})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := newCredential("alice")
	if err := s.CreateCredential(t.Context(), c); err != nil {
		t.Fatal(err)
	}

	tx := lockCredentials(t, dsn)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := s.CredentialByHash(t.Context(), c.Hash)
			errs <- err
		})
	}
	// Wait until all n lookups hold a connection (blocked on the lock).
	for deadline := time.Now().Add(15 * time.Second); s.Stats().InUse < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited 15s for %d lookups in flight: %+v", n, s.Stats())
		}
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	st := s.Stats()
	if st.MaxIdleClosed != 0 || st.Idle < n || st.OpenConnections != st.Idle {
		t.Errorf("after %d concurrent lookups: %d open, %d idle, %d closed for the idle limit; want all %d kept idle",
			n, st.OpenConnections, st.Idle, st.MaxIdleClosed, n)
	}
	if st.MaxOpenConnections != sqlstore.DefaultMaxOpenConns {
		t.Errorf("MaxOpenConnections = %d, want the default %d", st.MaxOpenConnections, sqlstore.DefaultMaxOpenConns)
	}
}

// TestPoolOptions checks that the pool options reach the pool of both
// dialects and that invalid ones are refused.
func TestPoolOptions(t *testing.T) {
	dialects(t, func(t *testing.T, open openFunc, driver, dsn string) {
		s, err := open(t.Context(), dsn, &sqlstore.Options{MaxOpenConns: 5, ConnMaxLifetime: time.Minute, ConnMaxIdleTime: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if got := s.Stats().MaxOpenConnections; got != 5 {
			t.Errorf("MaxOpenConnections = %d, want 5", got)
		}
		for _, o := range []sqlstore.Options{{MaxOpenConns: -1}, {ConnMaxLifetime: -time.Second}, {ConnMaxIdleTime: -time.Second}} {
			if s, err := open(t.Context(), dsn, &o); err == nil {
				s.Close()
				t.Errorf("%+v accepted", o)
			}
		}
	})
	t.Run("New", func(t *testing.T) {
		// A pool the caller opened is the caller's: New refuses pool
		// options instead of ignoring them, and ConfigurePool applies them.
		db := rawDB(t, "sqlite", filepath.Join(t.TempDir(), "appauth.db")+"?_busy_timeout=10000&_journal_mode=WAL&_txlock=immediate")
		if s, err := sqlstore.New(t.Context(), db, &sqlstore.Options{MaxOpenConns: 4}); err == nil {
			s.Close()
			t.Error("New accepted MaxOpenConns for a pool it does not own")
		}
		if err := sqlstore.ConfigurePool(db.DB, &sqlstore.Options{MaxOpenConns: 4}); err != nil {
			t.Fatal(err)
		}
		if got := db.Stats().MaxOpenConnections; got != 4 {
			t.Errorf("after ConfigurePool: MaxOpenConnections = %d, want 4", got)
		}
		if err := sqlstore.ConfigurePool(db.DB, &sqlstore.Options{MaxOpenConns: -1}); err == nil {
			t.Error("ConfigurePool accepted MaxOpenConns -1")
		}
	})
}

// TestCountCredentials counts app passwords and sessions of every user,
// what a server sizes its credential cache from.
func TestCountCredentials(t *testing.T) {
	dialects(t, func(t *testing.T, open openFunc, driver, dsn string) {
		s := mustOpen(t, open, dsn)
		if n, err := s.CountCredentials(t.Context()); err != nil || n != 0 {
			t.Fatalf("empty store: %d, %v", n, err)
		}
		for _, u := range []string{"alice", "alice", "bob"} {
			if err := s.CreateCredential(t.Context(), newCredential(u)); err != nil {
				t.Fatal(err)
			}
		}
		if n, err := s.CountCredentials(t.Context()); err != nil || n != 3 {
			t.Errorf("CountCredentials = %d, %v; want 3", n, err)
		}
		s.Close()
		if _, err := s.CountCredentials(t.Context()); !errors.Is(err, auth.ErrUnavailable) {
			t.Errorf("closed store: %v, want ErrUnavailable", err)
		}
	})
}

// TestBlockedLookupsShareQueries: twice DefaultMaxConcurrentLookups
// concurrent lookups of a table that another transaction has locked hold
// only DefaultMaxConcurrentLookups connections; the others wait for them
// and are answered, once the lock goes, by fewer queries than lookups.
func TestBlockedLookupsShareQueries(t *testing.T) {
	const n = 2 * sqlstore.DefaultMaxConcurrentLookups
	dsn := testenv.Postgres(t)
	s := mustOpen(t, sqlstore.OpenPostgres, dsn)
	c := newCredential("alice")
	if err := s.CreateCredential(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	before := s.LookupStats()
	tx := lockCredentials(t, dsn)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			got, err := s.CredentialByHash(t.Context(), c.Hash)
			if err == nil && got.ID != c.ID {
				err = errors.New("wrong credential " + got.ID)
			}
			errs <- err
		})
	}
	// Wait until every lookup has started and the slots hold connections
	// (blocked on the lock).
	for deadline := time.Now().Add(15 * time.Second); s.LookupStats().Lookups-before.Lookups < n || s.Stats().InUse < sqlstore.DefaultMaxConcurrentLookups; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited 15s for %d lookups: %+v, %+v", n, s.LookupStats(), s.Stats())
		}
	}
	if inUse := s.Stats().InUse; inUse != sqlstore.DefaultMaxConcurrentLookups {
		t.Errorf("%d lookups blocked on a lock hold %d connections, want %d", n, inUse, sqlstore.DefaultMaxConcurrentLookups)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if q := s.LookupStats().Queries - before.Queries; q >= n {
		t.Errorf("%d concurrent lookups took %d queries, want fewer", n, q)
	}
}

// TestCancelWithoutDeadlineEndsLockWait: a lookup whose context has no
// deadline, only a cancel, waits on a table another transaction has
// locked; cancelling it ends the wait (lib/pq's cancel request reaches the
// server) instead of leaving it until the lock goes.
func TestCancelWithoutDeadlineEndsLockWait(t *testing.T) {
	dsn := testenv.Postgres(t)
	s := mustOpen(t, sqlstore.OpenPostgres, dsn)
	c := newCredential("alice")
	if err := s.CreateCredential(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	lockCredentials(t, dsn)
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 1)
	go func() {
		_, err := s.CredentialByHash(ctx, c.Hash)
		errs <- err
	}()
	waitFor(t, "the lookup to wait on the lock", func() bool { return s.Stats().InUse == 1 })
	cancel()
	err, _ := within(t, 10*time.Second, "a cancelled lookup waiting on a lock", func() error { return <-errs })
	if !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("cancelled lookup: %v, want ErrUnavailable", err)
	}
}

// TestCloseAfterCallDeadline: a call's deadline stays on its PostgreSQL
// connection's socket after it returns; once it has passed, the idle
// connection still closes cleanly, and Close reports no error.
func TestCloseAfterCallDeadline(t *testing.T) {
	s, err := sqlstore.OpenPostgres(t.Context(), testenv.Postgres(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	err = s.Ping(ctx)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // past the ping's deadline
	if err := s.Close(); err != nil {
		t.Errorf("Close after a call's deadline passed: %v", err)
	}
}

// lockCredentials locks the credentials table in a transaction of its own
// until the returned transaction ends (at the latest when the test does):
// every lookup waits for it.
func lockCredentials(t *testing.T, dsn string) *sql.Tx {
	t.Helper()
	tx, err := rawDB(t, "postgres", dsn).BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback() })
	if _, err := tx.ExecContext(t.Context(), "LOCK TABLE appauth_credentials IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	return tx
}
