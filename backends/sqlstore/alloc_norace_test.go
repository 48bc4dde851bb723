//go:build !race

// The race detector changes what is allocated (and sync.Pool drops some of
// what it is given), so the allocation tests run without it.

package sqlstore_test

import (
	"context"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/appauth/appauth/backends/sqlstore"
)

// TestCredentialByHashAllocatesLikeItsSelect checks that a lookup by hash
// on SQLite (no lookup queue) allocates about as many bytes as the raw
// prepared SELECT of BenchmarkVerifyUncached, which scans the same columns
// into plain variables: the Store's scratch space for the scan is reused,
// and what it returns is all it keeps.
func TestCredentialByHashAllocatesLikeItsSelect(t *testing.T) {
	dsn := filepath.Join(t.TempDir(), "appauth.db")
	store := mustOpen(t, sqlstore.OpenSQLite, dsn)
	c := newCredential("u1")
	if err := store.CreateCredential(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, "sqlite", dsn)
	stmt, err := db.PrepareContext(t.Context(), db.Rebind(rawSelect))
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close()
	// No Done channel: the driver and database/sql then start no
	// goroutine per query, whose allocations depend on scheduling.
	ctx := context.Background()
	raw := bytesPerCall(t, func() error { return scanRow(stmt.QueryRowContext(ctx, c.Hash)) })
	got := bytesPerCall(t, func() error { _, err := store.CredentialByHash(ctx, c.Hash); return err })
	// slack: the two are measured apart; a row allocated beside the
	// credential cost 424 bytes more than the SELECT, now 72.
	const slack = 128
	if got > raw+slack {
		t.Errorf("CredentialByHash allocates %d bytes a call, the raw SELECT %d", got, raw)
	}
}

// bytesPerCall returns the bytes f allocates per call, over many calls.
func bytesPerCall(t *testing.T, f func() error) uint64 {
	t.Helper()
	const n = 2000
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1)) // as testing.AllocsPerRun
	if err := f(); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		if err := f(); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / n
}
