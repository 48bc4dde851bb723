package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/backends/memory"
	"github.com/appauth/appauth/backends/sqlstore"
	"github.com/appauth/appauth/internal/benchpair"
	"github.com/appauth/appauth/internal/testenv"
	"github.com/appauth/appauth/internal/testkit"
)

var alice = &auth.User{ID: "u-alice", Login: "alice"}

// newManager returns a Manager on store with alice in a memory directory.
func newManager(t testing.TB, store auth.Store, edit func(*auth.Options)) *auth.Manager {
	t.Helper()
	dir := memory.NewDirectory()
	dir.AddUser(*alice, "")
	opts := &auth.Options{}
	if edit != nil {
		edit(opts)
	}
	return testkit.NewManager(t, store, dir, opts)
}

// TestPostgresRestartWhileVerifying stops PostgreSQL under a Manager that
// is verifying, issuing and revoking, and starts it again: every verify
// during the outage fails closed with ErrUnavailable (never a 401, never a
// success without the store), nothing is half-written, and the same
// Manager recovers without a restart.
func TestPostgresRestartWhileVerifying(t *testing.T) {
	store := mustOpen(t, sqlstore.OpenPostgres, testenv.Postgres(t))
	m := newManager(t, store, func(o *auth.Options) { o.CacheSize = -1 }) // every verify reads the store
	ctx := t.Context()
	keep, keepSecret, err := m.IssueAppPassword(ctx, alice, auth.IssueRequest{Name: "keep"})
	if err != nil {
		t.Fatal(err)
	}
	doomed, doomedSecret, err := m.IssueAppPassword(ctx, alice, auth.IssueRequest{Name: "doomed"})
	if err != nil {
		t.Fatal(err)
	}

	// Verify all through the outage, counting outcomes.
	var ok, unavailable, wrong atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err := m.Authenticate(cctx, auth.Attempt{Username: "alice", Password: keepSecret})
			cancel()
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, auth.ErrUnavailable):
				unavailable.Add(1)
			default:
				wrong.Add(1)
				t.Errorf("verify during the outage: %v, want ErrUnavailable", err)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	time.Sleep(50 * time.Millisecond)
	testenv.StopPostgres(t)
	okBefore := ok.Load()
	time.Sleep(300 * time.Millisecond)
	if n := ok.Load(); n != okBefore {
		t.Errorf("%d verifies succeeded with PostgreSQL down", n-okBefore)
	}

	// Writes during the outage fail with ErrUnavailable.
	if _, _, err := m.IssueAppPassword(ctx, alice, auth.IssueRequest{Name: "during outage"}); !errors.Is(err, auth.ErrUnavailable) {
		t.Errorf("issue during the outage: %v, want ErrUnavailable", err)
	}
	if err := m.RevokeAppPassword(ctx, alice.ID, doomed.ID); !errors.Is(err, auth.ErrUnavailable) {
		t.Errorf("revoke during the outage: %v, want ErrUnavailable", err)
	}
	if _, err := m.Authenticate(ctx, auth.Attempt{Username: "alice", Password: doomedSecret}); !errors.Is(err, auth.ErrUnavailable) {
		t.Errorf("verify of a password whose revoke failed: %v, want ErrUnavailable", err)
	}

	testenv.StartPostgres(t)
	deadline := time.Now().Add(15 * time.Second)
	for ok.Load() == okBefore && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if ok.Load() == okBefore {
		t.Fatal("the Manager did not recover after PostgreSQL came back")
	}
	if unavailable.Load() == 0 {
		t.Error("no verify saw the outage")
	}
	t.Logf("verifies: %d ok, %d unavailable, %d wrong", ok.Load(), unavailable.Load(), wrong.Load())

	// Nothing half-written: exactly the two passwords from before, and the
	// failed revoke can simply be retried.
	list, err := m.ListAppPasswords(ctx, alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != keep.ID || list[1].ID != doomed.ID {
		t.Errorf("after the outage: %+v", list)
	}
	if err := m.RevokeAppPassword(ctx, alice.ID, doomed.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Authenticate(ctx, auth.Attempt{Username: "alice", Password: doomedSecret}); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("revoked after recovery: %v", err)
	}
}

// TestManagerOnSQL runs the app-password lifecycle on both dialects,
// including last-used times written through the store and Close.
func TestManagerOnSQL(t *testing.T) {
	dialects(t, func(t *testing.T, open openFunc, driver, dsn string) {
		store := mustOpen(t, open, dsn)
		m := newManager(t, store, nil)
		ctx := t.Context()
		ap, secret, err := m.IssueAppPassword(ctx, alice, auth.IssueRequest{Name: "My iPhone", Scopes: []string{"calendars"}})
		if err != nil {
			t.Fatal(err)
		}
		p, err := m.Authenticate(ctx, auth.Attempt{Username: "alice", Password: secret, RemoteAddr: "192.0.2.1", UserAgent: "iOS"})
		if err != nil || p.CredentialID != ap.ID || !p.HasScope("calendars") || p.HasScope("files") {
			t.Fatalf("Authenticate = %+v, %v", p, err)
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		// A second Manager (a restarted server) sees the last use.
		m2 := newManager(t, store, nil)
		list, err := m2.ListAppPasswords(ctx, alice.ID)
		if err != nil || len(list) != 1 || list[0].LastUsedAt.IsZero() || list[0].LastUsedClient != "iOS" {
			t.Fatalf("after restart: %+v, %v", list, err)
		}
		if err := m2.RevokeAppPassword(ctx, alice.ID, ap.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := m2.Authenticate(ctx, auth.Attempt{Username: "alice", Password: secret}); !errors.Is(err, auth.ErrInvalidCredentials) {
			t.Errorf("revoked: %v", err)
		}
	})
}

// BenchmarkVerifyUncached compares a verify that misses the cache (HMAC,
// store lookup, owner check from the directory cache) with its baseline: a
// raw prepared SELECT of the same row by the same indexed hash on the same
// database. Each parallel worker alternates the two, so both see the same
// machine; the ratio baseline/verify is the verify's relative throughput.
func BenchmarkVerifyUncached(b *testing.B) {
	for _, d := range []struct {
		name, driver string
		open         openFunc
		dsn          func(b *testing.B) string
	}{
		{"sqlite", "sqlite", sqlstore.OpenSQLite, func(b *testing.B) string { return filepath.Join(b.TempDir(), "appauth.db") }},
		{"postgres", "postgres", sqlstore.OpenPostgres, func(b *testing.B) string { return testenv.Postgres(b) }},
	} {
		b.Run(d.name, func(b *testing.B) {
			dsn := d.dsn(b)
			store := mustOpen(b, d.open, dsn)
			m := newManager(b, store, func(o *auth.Options) { o.CacheSize = -1 })
			_, secret, err := m.IssueAppPassword(b.Context(), alice, auth.IssueRequest{Name: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			list, _ := store.ListCredentials(b.Context(), alice.ID, auth.KindAppPassword)
			hash := list[0].Hash
			db := rawDB(b, d.driver, dsn)
			stmt, err := db.PrepareContext(b.Context(), db.Rebind(
				"SELECT id, kind, user_id, login, name, scopes, hash, key_id, hint, created_at, "+
					"expires_at, authenticated_at, last_used_at, last_used_addr, last_used_client "+
					"FROM appauth_credentials WHERE hash = ?"))
			if err != nil {
				b.Fatal(err)
			}
			defer stmt.Close()
			c := auth.Attempt{Username: "alice", Password: secret}
			benchpair.Run(b, func() (benchpair.Pair, error) {
				return benchpair.Pair{
					Baseline: func() error {
						var id, kind, user, login, name, scopes, keyID, hint, addr, client string
						var h []byte
						var created, expires, authn, used any
						return stmt.QueryRowContext(b.Context(), hash).Scan(&id, &kind, &user, &login, &name, &scopes,
							&h, &keyID, &hint, &created, &expires, &authn, &used, &addr, &client)
					},
					Subject: func() error { _, err := m.Authenticate(b.Context(), c); return err },
				}, nil
			})
		})
	}
}

// BenchmarkIssueRevoke measures issuing and then revoking one app password.
func BenchmarkIssueRevoke(b *testing.B) {
	store := mustOpen(b, sqlstore.OpenPostgres, testenv.Postgres(b))
	m := newManager(b, store, nil)
	b.Run("postgres", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			ap, _, err := m.IssueAppPassword(b.Context(), alice, auth.IssueRequest{Name: fmt.Sprint("device ", i)})
			if err != nil {
				b.Fatal(err)
			}
			if err := m.RevokeAppPassword(b.Context(), alice.ID, ap.ID); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "issue+revoke/s")
	})
}

// TestRevocationReachesOtherServers runs two Managers (two servers) on one
// PostgreSQL database with a cache TTL of an hour: a revoke on one is
// refused by the other within a second, through LISTEN/NOTIFY, also after
// PostgreSQL restarted under the listener.
func TestRevocationReachesOtherServers(t *testing.T) {
	dsn := testenv.Postgres(t)
	hour := func(o *auth.Options) { o.CacheTTL = time.Hour }
	a := newManager(t, mustOpen(t, sqlstore.OpenPostgres, dsn), hour)
	b := newManager(t, mustOpen(t, sqlstore.OpenPostgres, dsn), hour)
	ctx := t.Context()
	creds := func(secret string) auth.Attempt { return auth.Attempt{Username: "alice", Password: secret} }
	refusedWithin := func(m *auth.Manager, secret string, d time.Duration) bool {
		for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if _, err := m.Authenticate(ctx, creds(secret)); errors.Is(err, auth.ErrInvalidCredentials) {
				return true
			}
		}
		return false
	}
	// Let the listeners connect: each clears its cache once it listens,
	// which would hide a missing notification below.
	time.Sleep(500 * time.Millisecond)
	for round, restart := range []bool{false, true} {
		ap, secret, err := a.IssueAppPassword(ctx, alice, auth.IssueRequest{Name: fmt.Sprint("phone ", round)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Authenticate(ctx, creds(secret)); err != nil { // cached on b now
			t.Fatal(err)
		}
		if restart {
			testenv.StopPostgres(t)
			testenv.StartPostgres(t)
			// Wait until the store answers again, then until b's listener is back.
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				if _, err := a.ListAppPasswords(ctx, alice.ID); err == nil {
					break
				}
			}
			time.Sleep(2500 * time.Millisecond) // the listener reconnects within its 2 s backoff
		}
		if err := a.RevokeAppPassword(ctx, alice.ID, ap.ID); err != nil {
			t.Fatal(err)
		}
		if !refusedWithin(b, secret, time.Second) {
			t.Fatalf("round %d (restart=%v): the other server still accepts a revoked password after 1s", round, restart)
		}
	}
}
