package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/httpauth"
	"github.com/appauth/appauth/auth/settings"
	"github.com/appauth/appauth/auth/throttle"
	"github.com/appauth/appauth/backends/htpasswd"
	"github.com/appauth/appauth/backends/sqlstore"
	"github.com/appauth/appauth/examples/davserver/internal/davstore"
	"github.com/appauth/appauth/internal/benchpair"
	"github.com/appauth/appauth/internal/testenv"
	"github.com/appauth/appauth/internal/testkit"
)

// BenchmarkColdPassServer is the issue's measurement on the example
// server's full handler (request log, routing, scope check, per-user
// WebDAV folder, throttle, audit log): 1,000 app passwords of 100 users,
// each sending one PROPFIND Depth 0 to its files folder, from 16
// keep-alive clients. Each iteration is a cold pass (a new Manager: every
// verify reads the store) then a hot pass (the same again, all cached);
// it reports both throughputs, cold/hot and the cold pass's p99. The raw
// SELECT baseline is BenchmarkColdPass in backends/sqlstore.
func BenchmarkColdPassServer(b *testing.B) {
	for _, d := range []struct {
		name string
		open func(b *testing.B, o *sqlstore.Options) (*sqlstore.Store, error)
	}{
		{"sqlite", func(b *testing.B, o *sqlstore.Options) (*sqlstore.Store, error) {
			return sqlstore.OpenSQLite(b.Context(), filepath.Join(b.TempDir(), "appauth.db"), o)
		}},
		{"postgres", func(b *testing.B, o *sqlstore.Options) (*sqlstore.Store, error) {
			return sqlstore.OpenPostgres(b.Context(), testenv.Postgres(b), o)
		}},
	} {
		// lookups=16, as many as clients: every miss its own query (the
		// default on SQLite); 8, the default on PostgreSQL: beyond 8
		// concurrent misses share queries
		// (sqlstore.Options.MaxConcurrentLookups).
		for _, k := range []int{16, sqlstore.DefaultMaxConcurrentLookups} {
			b.Run(fmt.Sprint(d.name, "/lookups=", k), func(b *testing.B) {
				store, err := d.open(b, &sqlstore.Options{MaxConcurrentLookups: k})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { store.Close() })
				dbCPU := func() time.Duration { return 0 }
				if d.name == "postgres" {
					db, err := sql.Open("postgres", testenv.Postgres(b))
					if err != nil {
						b.Fatal(err)
					}
					defer db.Close()
					if f := benchpair.PostgresCPU(b.Context(), db); f != nil {
						dbCPU = f
					}
				}
				coldPassServer(b, store, dbCPU)
			})
		}
	}
}

// dbCPU reads the database server's CPU time so far (zero on SQLite,
// whose work is in this process).
func coldPassServer(b *testing.B, store *sqlstore.Store, dbCPU func() time.Duration) {
	const passwords, users, workers = 1_000, 100, 16
	ctx := context.Background()
	dir := b.TempDir()
	usersFile := filepath.Join(dir, "users.htpasswd")
	for i := range users {
		if err := htpasswd.SetPassword(usersFile, fmt.Sprint("user", i), "account password 1234", 4); err != nil {
			b.Fatal(err)
		}
	}
	d, err := htpasswd.Open(usersFile, nil)
	if err != nil {
		b.Fatal(err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	newManager := func() *auth.Manager {
		limiter, err := throttle.New(nil)
		if err != nil {
			b.Fatal(err)
		}
		m, err := auth.NewManager(store, d, &auth.Options{Peppers: []auth.Pepper{{ID: "1", Key: key}}, Limiter: limiter, Logger: logger})
		if err != nil {
			b.Fatal(err)
		}
		return m
	}
	type login struct{ user, secret string }
	logins := make([]login, passwords)
	issuer := newManager()
	for i := range logins {
		name := fmt.Sprint("user", i%users)
		u, err := d.LookupUser(ctx, name)
		if err != nil {
			b.Fatal(err)
		}
		_, secret, err := issuer.IssueAppPassword(ctx, u, auth.IssueRequest{Name: fmt.Sprint("device ", i)})
		if err != nil {
			b.Fatal(err)
		}
		logins[i] = login{name, secret}
	}
	issuer.Close()
	dav, err := davstore.New(filepath.Join(dir, "dav"), davPrefix, userFromContext)
	if err != nil {
		b.Fatal(err)
	}
	var handler atomic.Pointer[http.Handler]
	install := func() *auth.Manager {
		m := newManager()
		mw, err := httpauth.New(m, &httpauth.Options{Logger: logger})
		if err != nil {
			b.Fatal(err)
		}
		web, err := settings.New(m, d, &settings.Options{Logger: logger})
		if err != nil {
			b.Fatal(err)
		}
		h := testRequestLog(b, logger).Wrap(routes(dav, &defaultBodyLimits, func(h http.Handler) http.Handler { return mw.Wrap(recordUser(h)) }, web))
		handler.Store(&h)
		return m
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*handler.Load()).ServeHTTP(w, r) }))
	defer srv.Close()
	// One address per worker: many devices, not one address's burst.
	clients := testkit.LoopbackClients(workers)
	defer func() {
		for _, c := range clients {
			c.CloseIdleConnections()
		}
	}()

	// CPU time of this process (server and clients) and of the database,
	// per pass: what other work on the machine does not change.
	var cpu, db [2]time.Duration
	pass := func(which int) (time.Duration, []time.Duration) {
		cpu0, db0 := benchpair.ProcessCPU(), dbCPU()
		defer func() { cpu[which] += benchpair.ProcessCPU() - cpu0; db[which] += dbCPU() - db0 }()
		return benchpair.Pass(b, clients, passwords, func(i int) (*http.Request, error) {
			req, err := http.NewRequest("PROPFIND", srv.URL+"/dav/files/"+logins[i].user+"/", nil)
			if err == nil {
				req.Header.Set("Depth", "0")
				req.SetBasicAuth(logins[i].user, logins[i].secret)
			}
			return req, err
		}, func(status int) bool { return status == http.StatusMultiStatus })
	}
	// Warm up: connections, the pool, every user's folders.
	m := install()
	pass(0)
	m.Close()
	cpu, db = [2]time.Duration{}, [2]time.Duration{}
	before := store.LookupStats()

	var cold, hot time.Duration
	var coldLat []time.Duration
	rounds := 0
	for b.Loop() {
		b.StopTimer()
		m := install()
		b.StartTimer()
		t, lat := pass(0)
		cold += t
		coldLat = append(coldLat, lat...)
		t, _ = pass(1)
		hot += t
		b.StopTimer()
		m.Close()
		b.StartTimer()
		rounds++
	}
	if b.Failed() || rounds == 0 {
		return
	}
	slices.Sort(coldLat)
	reqs := float64(rounds * passwords)
	b.ReportMetric(reqs/cold.Seconds(), "cold-req/s")
	b.ReportMetric(reqs/hot.Seconds(), "hot-req/s")
	b.ReportMetric(hot.Seconds()/cold.Seconds(), "cold/hot")
	b.ReportMetric(float64(coldLat[len(coldLat)*99/100])/float64(time.Millisecond), "cold-p99-ms")
	ls := store.LookupStats()
	b.ReportMetric(float64(ls.Lookups-before.Lookups)/float64(max(1, ls.Queries-before.Queries)), "lookups/query")
	for i, p := range []string{"cold", "hot"} {
		b.ReportMetric(float64(cpu[i])/reqs/1e3, p+"-cpu-us/req")
		if db[i] > 0 {
			b.ReportMetric(float64(db[i])/reqs/1e3, p+"-db-cpu-us/req")
		}
	}
}
