package sqlstore_test

import (
	"context"
	"errors"
	"path/filepath"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/appauth/appauth/backends/sqlstore"
)

// TestSQLiteLookupDoesNotQueueBehindWriters: writers waiting for the write
// lock hold every connection of the pool (another process holds the lock);
// a credential lookup meanwhile must still answer at once, from the
// connections lookups have of their own, not wait for a free connection
// until its deadline and fail.
func TestSQLiteLookupDoesNotQueueBehindWriters(t *testing.T) {
	const conns = 2
	path := filepath.Join(t.TempDir(), "appauth.db")
	s, err := sqlstore.OpenSQLite(t.Context(), path, &sqlstore.Options{MaxOpenConns: conns})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := newCredential("alice")
	if err := s.CreateCredential(t.Context(), c); err != nil {
		t.Fatal(err)
	}

	// Another process's write transaction holds the lock.
	other := rawDB(t, "sqlite", path+"?_txlock=immediate")
	tx, err := other.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var writers sync.WaitGroup
	defer writers.Wait()
	defer tx.Rollback() // first: the writers then finish
	for range conns {
		writers.Go(func() {
			// Waits for the lock under busy_timeout, holding its connection.
			s.CreateCredential(context.Background(), newCredential("bob"))
		})
	}
	waitFor(t, "the writers to hold every connection", func() bool { return s.Stats().InUse == conns })

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	got, took := within(t, 10*time.Second, "a lookup beside blocked writers", func() error {
		got, err := s.CredentialByHash(ctx, c.Hash)
		if err == nil && got.ID != c.ID {
			err = errors.New("found " + got.ID + ", want " + c.ID)
		}
		return err
	})
	if got != nil {
		t.Fatalf("lookup while writers hold every connection: %v (after %s)", got, took)
	}
}

// TestSQLiteLookupStartsNoGoroutine: a lookup whose context can be
// cancelled starts no goroutine, in database/sql or in the driver, to watch
// it: they cost a tenth of a cold verify.
func TestSQLiteLookupStartsNoGoroutine(t *testing.T) {
	s := mustOpen(t, sqlstore.OpenSQLite, filepath.Join(t.TempDir(), "appauth.db"))
	c := newCredential("alice")
	if err := s.CreateCredential(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	created := func() uint64 {
		m := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
		metrics.Read(m)
		return m[0].Value.Uint64()
	}
	const lookups = 100
	before := created()
	for range lookups {
		if _, err := s.CredentialByHash(ctx, c.Hash); err != nil {
			t.Fatal(err)
		}
	}
	// A few for whatever else the process starts meanwhile; one per
	// lookup would be 100, two 200.
	if n := created() - before; n > lookups/10 {
		t.Errorf("%d lookups started %d goroutines", lookups, n)
	}
}
