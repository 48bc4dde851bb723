package sqlstore_test

import (
	"database/sql"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/httpauth"
	"github.com/appauth/appauth/auth/throttle"
	"github.com/appauth/appauth/backends/memory"
	"github.com/appauth/appauth/backends/sqlstore"
	"github.com/appauth/appauth/internal/benchpair"
	"github.com/appauth/appauth/internal/testenv"
	"github.com/appauth/appauth/internal/testkit"
	"golang.org/x/net/webdav"
)

// Sizes of the cold pass: coldPasswords distinct app passwords of
// coldPasswords/10 users, verified by coldWorkers concurrent clients.
const (
	coldPasswords = 1_000
	coldWorkers   = 16
)

// storeOnly hides the Store's optional capabilities from the Manager: a
// change listener that connects mid-pass would clear the cache and turn
// part of a hot pass cold. It keeps ContextBounded, which decides whether
// the Manager's calls run on a goroutine of their own.
type storeOnly struct{ auth.Store }

// HonorsContext implements [auth.ContextBounded] as the Store does.
func (s storeOnly) HonorsContext() bool { return s.Store.(auth.ContextBounded).HonorsContext() }

// BenchmarkColdPass is the cold path at scale, the way a server meets it
// after a restart or with more devices than its cache holds: 1,000
// distinct app passwords, each presented once (every verify misses the
// cache), by 16 concurrent keep-alive HTTP clients through the httpauth
// middleware (with the throttle) and a Manager with the default cache and
// an audit log, on loopback, to each of the handlers in coldHandlers.
// Each iteration runs three passes over the same 1,000 requests, in an
// order that rotates:
//
//   - cold: a new Manager, so every verify reads the store;
//   - hot: the same Manager again, every verify a cache hit;
//   - raw: the baseline, the same HTTP requests to a handler without
//     authentication that runs a raw prepared SELECT of the request's row
//     by its hash on a second pool configured like the Store's
//     ([sqlstore.ConfigurePool] with the same Options).
//
// It reports each pass's throughput (req/s), the cold pass's relative to
// the hot and the raw ones, and the cold pass's p50 and p99 latency.
func BenchmarkColdPass(b *testing.B) {
	for _, d := range []struct {
		name, driver string
		open         openFunc
		dsn          func(b *testing.B) string
	}{
		{"sqlite", "sqlite", sqlstore.OpenSQLite, func(b *testing.B) string { return filepath.Join(b.TempDir(), "appauth.db") }},
		{"postgres", "postgres", sqlstore.OpenPostgres, func(b *testing.B) string { return testenv.Postgres(b) }},
	} {
		b.Run(d.name, func(b *testing.B) { coldPass(b, d.driver, d.open, d.dsn(b)) })
	}
}

// coldHandlers are what the protected requests do once authenticated: the
// least possible (the strictest ratio: authentication is all the work),
// and a WebDAV PROPFIND (Depth 0, x/net/webdav on an in-memory file
// system), closer to what the example server does per request.
var coldHandlers = []struct {
	name, method string
	handler      func() http.Handler
}{
	{"handler=ok", http.MethodGet, func() http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	}},
	{"handler=propfind", "PROPFIND", func() http.Handler {
		return &webdav.Handler{FileSystem: webdav.NewMemFS(), LockSystem: webdav.NewMemLS()}
	}},
}

func coldPass(b *testing.B, driver string, open openFunc, dsn string) {
	store := mustOpen(b, open, dsn)
	dir := memory.NewDirectory()
	users := make([]*auth.User, coldPasswords/10)
	for i := range users {
		users[i] = &auth.User{ID: fmt.Sprint("u-", i), Login: fmt.Sprint("user", i)}
		if err := dir.AddUser(*users[i], ""); err != nil {
			b.Fatal(err)
		}
	}
	// Issue the passwords, and note each one's Basic header and hash.
	issuer := testkit.NewManager(b, store, dir, nil)
	authz := make([]string, coldPasswords)
	hashes := make([][]byte, coldPasswords)
	for i := range coldPasswords {
		u := users[i%len(users)]
		ap, secret, err := issuer.IssueAppPassword(b.Context(), u, auth.IssueRequest{Name: fmt.Sprint("device ", i)})
		if err != nil {
			b.Fatal(err)
		}
		c, err := store.Credential(b.Context(), u.ID, ap.ID)
		if err != nil {
			b.Fatal(err)
		}
		authz[i] = "Basic " + base64.StdEncoding.EncodeToString([]byte(u.Login+":"+secret))
		hashes[i] = c.Hash
	}
	issuer.Close()

	// The baseline's pool and statement, configured like the Store's.
	raw := rawDB(b, driver, dsn)
	if err := sqlstore.ConfigurePool(raw.DB, nil); err != nil {
		b.Fatal(err)
	}
	stmt, err := raw.PrepareContext(b.Context(), raw.Rebind(rawSelect))
	if err != nil {
		b.Fatal(err)
	}
	defer stmt.Close()
	for _, k := range coldLookups {
		b.Run(fmt.Sprint("lookups=", k), func(b *testing.B) {
			s, err := open(b.Context(), dsn, &sqlstore.Options{MaxConcurrentLookups: k})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			for _, h := range coldHandlers {
				b.Run(h.name, func(b *testing.B) { coldPassWith(b, s, dir, authz, hashes, raw.DB, stmt, h.method, h.handler()) })
			}
		})
	}
}

// coldLookups are the [sqlstore.Options.MaxConcurrentLookups] the cold
// pass runs with: 16, as many as clients, is every miss its own query (no
// lookup ever waits for a slot); below it, concurrent misses share
// queries (8 is the default on PostgreSQL, 2 the default before; on
// SQLite there is no bound by default, like 16 here).
var coldLookups = []int{16, 8, 2, 1}

func coldPassWith(b *testing.B, store *sqlstore.Store, dir auth.Directory, authz []string, hashes [][]byte, raw *sql.DB, stmt *sql.Stmt, method string, work http.Handler) {
	rawHandler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i, err := strconv.Atoi(r.URL.Query().Get("i"))
		if err != nil || i < 0 || i >= len(hashes) {
			http.Error(w, "bad index", http.StatusBadRequest)
			return
		}
		if err := scanRow(stmt.QueryRowContext(r.Context(), hashes[i])); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		work.ServeHTTP(w, r)
	})

	// The Manager behind /dav/ is replaced for every cold pass.
	var current atomic.Pointer[httpauth.Middleware]
	mux := http.NewServeMux()
	mux.Handle("/raw/", http.StripPrefix("/raw", rawHandler))
	mux.Handle("/dav/", http.StripPrefix("/dav", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { current.Load().Wrap(work).ServeHTTP(w, r) })))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	// One address per worker: many devices, not one address's burst.
	clients := testkit.LoopbackClients(coldWorkers)
	defer func() {
		for _, c := range clients {
			c.CloseIdleConnections()
		}
	}()

	// passCPU is this process's CPU time per pass name: the server's
	// and the clients' (PostgreSQL's is not in it).
	passCPU := map[string]time.Duration{}
	passName := ""
	// dbCPU is the same for PostgreSQL's processes (zero on SQLite,
	// whose work is in this process).
	dbCPU := map[string]time.Duration{}
	serverCPU := benchpair.PostgresCPU(b.Context(), raw)
	if serverCPU == nil {
		serverCPU = func() time.Duration { return 0 }
	}
	// pass sends the 1,000 requests once with coldWorkers clients and
	// returns its wall time and every request's latency.
	pass := func(path string, withIndex bool) (time.Duration, []time.Duration) {
		cpu0, db0 := benchpair.ProcessCPU(), serverCPU()
		defer func() {
			passCPU[passName] += benchpair.ProcessCPU() - cpu0
			dbCPU[passName] += serverCPU() - db0
		}()
		return benchpair.Pass(b, clients, coldPasswords, func(i int) (*http.Request, error) {
			url := srv.URL + path
			if withIndex {
				url += "?i=" + strconv.Itoa(i)
			}
			req, err := http.NewRequest(method, url, nil)
			if err == nil {
				req.Header.Set("Authorization", authz[i])
				req.Header.Set("Depth", "0")
			}
			return req, err
		}, func(status int) bool { return status == http.StatusOK || status == http.StatusMultiStatus })
	}

	// Every decision is logged, as in a server; the text is discarded.
	auditLog := slog.New(slog.NewTextHandler(io.Discard, nil))
	newMiddleware := func() *auth.Manager {
		limiter, err := throttle.New(nil)
		if err != nil {
			b.Fatal(err)
		}
		m := testkit.NewManager(b, storeOnly{store}, dir, &auth.Options{Limiter: limiter, Logger: auditLog})
		mw, err := httpauth.New(m, nil)
		if err != nil {
			b.Fatal(err)
		}
		current.Store(mw)
		return m
	}
	// Warm the HTTP connections and both pools once, outside the figures.
	m := newMiddleware()
	pass("/raw/", true)
	pass("/dav/", false)
	m.Close()

	before := store.LookupStats()
	clear(passCPU)
	clear(dbCPU)
	var cold, hot, rawT time.Duration
	var coldLat []time.Duration
	round := 0
	for b.Loop() {
		b.StopTimer()
		m := newMiddleware()
		b.StartTimer()
		// The raw pass goes first, between, or last, in turn.
		passName = "raw"
		if round%3 == 0 {
			t, _ := pass("/raw/", true)
			rawT += t
		}
		passName = "cold"
		t, lat := pass("/dav/", false)
		cold += t
		coldLat = append(coldLat, lat...)
		passName = "raw"
		if round%3 == 1 {
			t, _ := pass("/raw/", true)
			rawT += t
		}
		passName = "hot"
		t, _ = pass("/dav/", false)
		hot += t
		passName = "raw"
		if round%3 == 2 {
			t, _ := pass("/raw/", true)
			rawT += t
		}
		b.StopTimer()
		m.Close() // writes the pass's last-used times, outside the figures
		b.StartTimer()
		round++
	}
	if b.Failed() || round == 0 {
		return
	}
	rate := func(d time.Duration) float64 { return float64(round*coldPasswords) / d.Seconds() }
	slices.Sort(coldLat)
	pct := func(p float64) float64 {
		return float64(coldLat[int(p*float64(len(coldLat)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(rate(cold), "cold-req/s")
	b.ReportMetric(rate(hot), "hot-req/s")
	b.ReportMetric(rate(rawT), "raw-req/s")
	b.ReportMetric(float64(hot)/float64(cold), "cold/hot")
	b.ReportMetric(float64(rawT)/float64(cold), "cold/raw")
	b.ReportMetric(pct(0.50), "cold-p50-ms")
	b.ReportMetric(pct(0.99), "cold-p99-ms")
	for _, p := range []string{"cold", "hot", "raw"} {
		b.ReportMetric(float64(passCPU[p])/float64(round*coldPasswords)/1e3, p+"-cpu-us/req")
		if dbCPU[p] > 0 {
			b.ReportMetric(float64(dbCPU[p])/float64(round*coldPasswords)/1e3, p+"-db-cpu-us/req")
		}
	}
	ls := store.LookupStats()
	b.ReportMetric(float64(ls.Lookups-before.Lookups)/float64(max(1, ls.Queries-before.Queries)), "lookups/query")
	st := store.Stats()
	b.ReportMetric(float64(st.MaxIdleClosed), "idle-closed")
	b.ReportMetric(float64(st.OpenConnections), "open-conns")
	b.ReportMetric(float64(st.WaitCount), "pool-waits")
}

// rawSelect is the baselines' query: the row of one hash, every column
// the Store returns (a session's verify needs the fed_ ones too).
const rawSelect = "SELECT id, kind, user_id, login, name, scopes, hash, key_id, hint, created_at, " +
	"expires_at, authenticated_at, last_used_at, last_used_addr, last_used_client, " +
	"fed_issuer, fed_subject, fed_sid FROM appauth_credentials WHERE hash = ?"

// scanRow scans a rawSelect row into throwaway variables, as the Store
// does into its own (the times as the driver gives them: the baseline
// does not convert them).
func scanRow(r *sql.Row) error {
	var id, kind, user, login, name, scopes, keyID, hint, addr, client, iss, sub, sid string
	var h []byte
	var created, expires, authn, used any
	return r.Scan(&id, &kind, &user, &login, &name, &scopes, &h, &keyID, &hint, &created, &expires, &authn, &used, &addr, &client, &iss, &sub, &sid)
}
