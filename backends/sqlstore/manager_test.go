package sqlstore_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
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
	srv := testenv.NewPostgres(t) // stopped below: a server of its own
	store := mustOpen(t, sqlstore.OpenPostgres, srv.Database(t))
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

	// One goroutine verifies, one request after the other, all through the
	// outage, counting outcomes.
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
	// until returns once cond holds, failing the test after a while.
	until := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				close(stop)
				wg.Wait()
				t.Fatalf("waited 15s for %s (verifies: %d ok, %d unavailable)", what, ok.Load(), unavailable.Load())
			}
		}
	}
	until("a verify to succeed", func() bool { return ok.Load() > 0 })
	srv.Stop(t)
	// The first failure after the stop ends the verify that was in flight;
	// every verify after it started with the server down.
	u := unavailable.Load()
	until("a verify to fail", func() bool { return unavailable.Load() > u })
	okBefore := ok.Load()
	until("more verifies to fail", func() bool { return unavailable.Load() > u+5 })
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

	srv.Start(t)
	until("the Manager to recover after PostgreSQL came back", func() bool { return ok.Load() > okBefore })
	close(stop)
	wg.Wait()
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
// database, through a pool configured like the Store's. About 8 parallel
// workers (verifyWorkers) each alternate the two on an app password of
// their own, so both see the same machine; the ratio baseline/verify is
// the verify's relative throughput. With flush=on, a writer records
// last-used times of 500 other app passwords the whole time, one batch
// after the other, as the Manager's background flush does once per
// interval.
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
			m := newManager(b, store, func(o *auth.Options) { o.CacheSize = -1; o.MaxAppPasswords = 1000 })
			// One app password per worker, and 500 for the flusher.
			const flushed = 500
			secrets := make([]string, verifyWorkers+flushed)
			creds := make([]*auth.StoredCredential, len(secrets))
			for i := range secrets {
				ap, secret, err := m.IssueAppPassword(b.Context(), alice, auth.IssueRequest{Name: fmt.Sprint("bench ", i)})
				if err != nil {
					b.Fatal(err)
				}
				if creds[i], err = store.Credential(b.Context(), alice.ID, ap.ID); err != nil {
					b.Fatal(err)
				}
				secrets[i] = secret
			}
			// The baseline's pool is sized like the Store's: with
			// database/sql's defaults it would pay for the same
			// reconnects and hide them.
			db := rawDB(b, d.driver, dsn)
			if err := sqlstore.ConfigurePool(db.DB, nil); err != nil {
				b.Fatal(err)
			}
			stmt, err := db.PrepareContext(b.Context(), db.Rebind(
				"SELECT id, kind, user_id, login, name, scopes, hash, key_id, hint, created_at, "+
					"expires_at, authenticated_at, last_used_at, last_used_addr, last_used_client "+
					"FROM appauth_credentials WHERE hash = ?"))
			if err != nil {
				b.Fatal(err)
			}
			defer stmt.Close()
			for _, flush := range []bool{false, true} {
				b.Run(fmt.Sprint("flush=", map[bool]string{false: "off", true: "on"}[flush]), func(b *testing.B) {
					stop := make(chan struct{})
					var flusher sync.WaitGroup
					var flushes atomic.Int64
					if flush {
						usage := make([]auth.Usage, 0, flushed)
						for _, c := range creds[verifyWorkers:] {
							usage = append(usage, auth.Usage{UserID: c.UserID, ID: c.ID, Addr: "192.0.2.1", Client: "bench"})
						}
						flusher.Go(func() {
							for at := time.Now(); ; at = at.Add(time.Second) {
								select {
								case <-stop:
									return
								default:
								}
								for i := range usage {
									usage[i].At = at
								}
								if err := store.RecordUsage(context.Background(), usage); err != nil {
									b.Error(err)
									return
								}
								flushes.Add(1)
							}
						})
					}
					var worker atomic.Int64
					b.SetParallelism(max(1, verifyWorkers/runtime.GOMAXPROCS(0)))
					benchpair.Run(b, func() (benchpair.Pair, error) {
						i := int(worker.Add(1)-1) % verifyWorkers
						hash := creds[i].Hash
						c := auth.Attempt{Username: "alice", Password: secrets[i]}
						return benchpair.Pair{
							Baseline: func() error { return scanRow(stmt.QueryRowContext(b.Context(), hash)) },
							Subject:  func() error { _, err := m.Authenticate(b.Context(), c); return err },
						}, nil
					})
					close(stop)
					flusher.Wait()
					if flush {
						b.ReportMetric(float64(flushes.Load()), "flushes")
					}
				})
			}
		})
	}
}

// verifyWorkers is about how many parallel workers BenchmarkVerifyUncached
// runs (a multiple of GOMAXPROCS).
const verifyWorkers = 8

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

// watchedStore is a Store whose change watcher also reports to the test
// what it tells the Manager, once the Manager has acted on it.
type watchedStore struct {
	*sqlstore.Store
	events chan [2]string // {userID, id}; {"", ""}: listening (again), forget everything
}

func (w *watchedStore) WatchChanges(ctx context.Context, changed func(userID, id string)) error {
	return w.Store.WatchChanges(ctx, func(userID, id string) {
		changed(userID, id)
		select {
		case w.events <- [2]string{userID, id}:
		case <-ctx.Done():
		}
	})
}

// next returns the watcher's next event, failing the test if none comes.
func (w *watchedStore) next(t *testing.T, want string) [2]string {
	t.Helper()
	select {
	case ev := <-w.events:
		return ev
	case <-time.After(20 * time.Second):
		t.Fatalf("no change event within 20s; want %s", want)
		return [2]string{}
	}
}

// TestRevocationReachesOtherServers runs two Managers (two servers) on one
// PostgreSQL database with a cache TTL of an hour: a revoke on one is
// refused by the other through LISTEN/NOTIFY, also after PostgreSQL
// restarted under the listener. The test waits on the other server's
// watcher, never on a clock: it fails if the notification does not come,
// and a late "forget everything" from a reconnect cannot make it pass.
func TestRevocationReachesOtherServers(t *testing.T) {
	srv := testenv.NewPostgres(t) // restarted below: a server of its own
	dsn := srv.Database(t)
	hour := func(o *auth.Options) { o.CacheTTL = time.Hour }
	a := newManager(t, mustOpen(t, sqlstore.OpenPostgres, dsn), hour)
	bStore := &watchedStore{Store: mustOpen(t, sqlstore.OpenPostgres, dsn), events: make(chan [2]string, 16)}
	b := newManager(t, bStore, hour)
	ctx := t.Context()
	creds := func(secret string) auth.Attempt { return auth.Attempt{Username: "alice", Password: secret} }
	// retry calls fn until it is not ErrUnavailable: just after a restart,
	// a pool may still hand out a connection to the old server.
	retry := func(fn func() error) error {
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if err := fn(); !errors.Is(err, auth.ErrUnavailable) || time.Now().After(deadline) {
				return err
			}
		}
	}
	listening := func(when string) {
		t.Helper()
		if ev := bStore.next(t, "the listener to start "+when); ev != [2]string{} {
			t.Fatalf("%s: first change event %q, want the listener's forget-everything", when, ev)
		}
	}
	// b's watcher clears b's cache once it listens, which would hide a
	// missing notification below: wait for that first.
	listening("at first")
	for round, restart := range []bool{false, true} {
		if restart {
			srv.Stop(t)
			srv.Start(t)
			listening("after the restart")
		}
		var ap *auth.AppPassword
		var secret string
		if err := retry(func() (err error) {
			ap, secret, err = a.IssueAppPassword(ctx, alice, auth.IssueRequest{Name: fmt.Sprint("phone ", round)})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if err := retry(func() error { _, err := b.Authenticate(ctx, creds(secret)); return err }); err != nil { // cached on b now
			t.Fatal(err)
		}
		if err := a.RevokeAppPassword(ctx, alice.ID, ap.ID); err != nil {
			t.Fatal(err)
		}
		if ev := bStore.next(t, "the revocation"); ev != [2]string{alice.ID, ap.ID} {
			t.Fatalf("round %d (restart=%v): change event %q, want the revocation of %s", round, restart, ev, ap.ID)
		}
		if _, err := b.Authenticate(ctx, creds(secret)); !errors.Is(err, auth.ErrInvalidCredentials) {
			t.Fatalf("round %d (restart=%v): the other server after the notification: %v, want ErrInvalidCredentials", round, restart, err)
		}
	}
}

var restartRounds = flag.Int("restart-rounds", 2, "PostgreSQL restarts in TestRevocationRightAfterRestart (20 to measure propagation)")

// TestRevocationRightAfterRestart: the other server has the app password
// cached, PostgreSQL restarts, and the revocation comes as soon as the
// database takes writes again, while the other server's listener may still
// be reconnecting (its NOTIFY is then lost). The listener reconnects at once
// and clears the cache when it does, so the other server refuses the
// password after its watcher's next event (the NOTIFY, or the reconnect's
// forget-everything). With -v it logs how long the refusal took after the
// revoke returned (min/median/max over -restart-rounds).
func TestRevocationRightAfterRestart(t *testing.T) {
	srv := testenv.NewPostgres(t) // restarted below: a server of its own
	dsn := srv.Database(t)
	hour := func(o *auth.Options) { o.CacheTTL = time.Hour }
	a := newManager(t, mustOpen(t, sqlstore.OpenPostgres, dsn), hour)
	failed := make(chan struct{}, 100) // b's listener's failed connection attempts
	bRaw, err := sqlstore.OpenPostgres(t.Context(), dsn, &sqlstore.Options{Logger: slog.New(&signalHandler{match: "cannot connect", c: failed})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bRaw.Close() })
	bStore := &watchedStore{Store: bRaw, events: make(chan [2]string, 64)}
	b := newManager(t, bStore, hour)
	ctx := t.Context()
	if ev := bStore.next(t, "the listener to start"); ev != [2]string{} {
		t.Fatalf("first change event %q, want the listener's forget-everything", ev)
	}
	var took []time.Duration
	for round := range *restartRounds {
		ap, secret, err := a.IssueAppPassword(ctx, alice, auth.IssueRequest{Name: fmt.Sprint("phone ", round)})
		if err != nil {
			t.Fatal(err)
		}
		creds := auth.Attempt{Username: "alice", Password: secret}
		if _, err := b.Authenticate(ctx, creds); err != nil { // cached on b now
			t.Fatal(err)
		}
		srv.Stop(t)
		// A long outage: the listener has failed to reconnect several
		// times, so a backoff has grown as far as it goes.
		for range 6 {
			select {
			case <-failed:
			case <-time.After(20 * time.Second):
				t.Fatal("the listener did not try to reconnect")
			}
		}
		srv.Start(t)
		var revoked time.Time
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(time.Millisecond) {
			err := a.RevokeAppPassword(ctx, alice.ID, ap.ID)
			if err == nil {
				revoked = time.Now()
				break
			}
			if !errors.Is(err, auth.ErrUnavailable) || time.Now().After(deadline) {
				t.Fatalf("round %d: revoke after the restart: %v", round, err)
			}
		}
		// Measure: how long b still accepts it.
		for {
			_, err := b.Authenticate(ctx, creds)
			if errors.Is(err, auth.ErrInvalidCredentials) {
				took = append(took, time.Since(revoked))
				break
			}
			if time.Since(revoked) > 20*time.Second {
				t.Fatalf("round %d: the other server still says %v 20s after the revocation", round, err)
			}
			time.Sleep(time.Millisecond)
		}
		// Drain b's events of this round (the reconnect and perhaps the
		// revocation's NOTIFY) and its failed attempts.
		for drained := false; !drained; {
			select {
			case <-bStore.events:
			case <-failed:
			default:
				drained = true
			}
		}
	}
	slices.Sort(took)
	t.Logf("revocation reached the other server after a PostgreSQL restart: min %s, median %s, max %s over %d restarts",
		took[0].Round(time.Millisecond), took[len(took)/2].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond), len(took))
}

// signalHandler is a slog.Handler that signals c for every record whose
// message contains match, and drops everything.
type signalHandler struct {
	match string
	c     chan struct{}
}

func (h *signalHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *signalHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.match) {
		select {
		case h.c <- struct{}{}:
		default:
		}
	}
	return nil
}
func (h *signalHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *signalHandler) WithGroup(string) slog.Handler      { return h }
