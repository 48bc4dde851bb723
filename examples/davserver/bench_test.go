package main

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/httpauth"
	"github.com/appauth/appauth/auth/settings"
	"github.com/appauth/appauth/auth/throttle"
	"github.com/appauth/appauth/backends/htpasswd"
	"github.com/appauth/appauth/backends/sqlstore"
	"github.com/appauth/appauth/examples/davserver/internal/davstore"
)

// benchServers starts the example server's handler twice over loopback, on
// the same SQLite store, htpasswd file and DAV folder: once with the
// authentication middleware (as davserver runs) and once with it replaced
// by a fixed principal (authentication off). It returns both URLs and an
// app password for the first.
func benchServers(b *testing.B) (withAuth, noAuth, user, secret string) {
	b.Helper()
	ctx := context.Background()
	dir := b.TempDir()
	users := filepath.Join(dir, "users.htpasswd")
	if err := htpasswd.SetPassword(users, "demo", "demo password 1234", 4); err != nil {
		b.Fatal(err)
	}
	d, err := htpasswd.Open(users, nil)
	if err != nil {
		b.Fatal(err)
	}
	store, err := sqlstore.OpenSQLite(ctx, filepath.Join(dir, "appauth.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	key := make([]byte, 32)
	rand.Read(key)
	limiter, err := throttle.New(nil)
	if err != nil {
		b.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	m, err := auth.NewManager(store, d, &auth.Options{Peppers: []auth.Pepper{{ID: "1", Key: key}}, Limiter: limiter, Logger: logger})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	u, err := d.LookupUser(ctx, "demo")
	if err != nil {
		b.Fatal(err)
	}
	_, secret, err = m.IssueAppPassword(ctx, u, auth.IssueRequest{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	dav, err := davstore.New(filepath.Join(dir, "dav"), davPrefix, userFromContext)
	if err != nil {
		b.Fatal(err)
	}
	mw, err := httpauth.New(m, &httpauth.Options{Logger: logger})
	if err != nil {
		b.Fatal(err)
	}
	web, err := settings.New(m, d, &settings.Options{Logger: logger})
	if err != nil {
		b.Fatal(err)
	}
	on := logRequests(logger, routes(dav, func(h http.Handler) http.Handler { return mw.Wrap(recordUser(h)) }, web))
	fixed := &auth.Principal{User: *u, Method: auth.MethodAppPassword}
	off := logRequests(logger, routes(dav, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			recordUser(h).ServeHTTP(w, r.WithContext(httpauth.ContextWithPrincipal(r.Context(), fixed)))
		})
	}, web))
	s1, s2 := httptest.NewServer(on), httptest.NewServer(off)
	b.Cleanup(s1.Close)
	b.Cleanup(s2.Close)
	return s1.URL, s2.URL, "demo", secret
}

// propfindLoad sends n PROPFIND Depth 0 requests from workers goroutines
// over keep-alive connections and returns the elapsed time.
func propfindLoad(b *testing.B, client *http.Client, url, user, secret string, n, workers int) time.Duration {
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		count := n / workers
		if w < n%workers {
			count++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range count {
				req, _ := http.NewRequest("PROPFIND", url, nil)
				req.Header.Set("Depth", "0")
				if secret != "" {
					req.SetBasicAuth(user, secret)
				}
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusMultiStatus {
					b.Errorf("PROPFIND: %d", resp.StatusCode)
					return
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(start)
}

// BenchmarkPropfind measures PROPFIND Depth 0 on /dav/files/demo/ over
// loopback, with a cached app password and with authentication off, in
// alternating rounds of 1,000 requests each (b.N rounds), and reports both
// throughputs and their ratio (target: auth/noauth >= 0.9).
func BenchmarkPropfind(b *testing.B) {
	withAuth, noAuth, user, secret := benchServers(b)
	workers := 2 * runtime.GOMAXPROCS(0)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers}}
	defer client.CloseIdleConnections()
	path := "/dav/files/" + user + "/"
	// Warm up: connections, the credential cache, the files handler.
	propfindLoad(b, client, withAuth+path, user, secret, 200, workers)
	propfindLoad(b, client, noAuth+path, user, "", 200, workers)

	const round = 1000
	var tAuth, tOff time.Duration
	b.ResetTimer()
	for i := range b.N {
		if i%2 == 0 {
			tOff += propfindLoad(b, client, noAuth+path, user, "", round, workers)
			tAuth += propfindLoad(b, client, withAuth+path, user, secret, round, workers)
		} else {
			tAuth += propfindLoad(b, client, withAuth+path, user, secret, round, workers)
			tOff += propfindLoad(b, client, noAuth+path, user, "", round, workers)
		}
	}
	b.StopTimer()
	reqs := float64(b.N * round)
	b.ReportMetric(reqs/tAuth.Seconds(), "req/s-auth")
	b.ReportMetric(reqs/tOff.Seconds(), "req/s-noauth")
	b.ReportMetric(tOff.Seconds()/tAuth.Seconds(), "ratio")
	b.ReportMetric(0, "ns/op")
	if strings.Contains(withAuth, noAuth) {
		b.Fatal("the two servers must differ")
	}
}
