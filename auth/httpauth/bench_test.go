package httpauth_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/httpauth"
	"github.com/appauth/appauth/auth/throttle"
	"github.com/appauth/appauth/backends/memory"
	"github.com/appauth/appauth/internal/testkit"
)

// BenchmarkMiddleware measures what the middleware adds to a trivial
// handler over real loopback HTTP (keep-alive client, parallel requests),
// beside its baseline in the same run: the same handler on the same server
// without the middleware. The app password is cached (the steady state of a
// syncing client); the Throttle is the Manager's Limiter, as in production.
//
//	go test -run '^$' -bench BenchmarkMiddleware -count 6 ./auth/httpauth
func BenchmarkMiddleware(b *testing.B) {
	dir := memory.NewDirectory()
	alice := auth.User{ID: "u-alice", Login: "alice"}
	if err := dir.AddUser(alice, "account password"); err != nil {
		b.Fatal(err)
	}
	limiter, err := throttle.New(nil)
	if err != nil {
		b.Fatal(err)
	}
	m := testkit.NewManager(b, memory.NewStore(), dir, &auth.Options{Limiter: limiter})
	mw, err := httpauth.New(m, nil)
	if err != nil {
		b.Fatal(err)
	}
	_, secret, err := m.IssueAppPassword(b.Context(), &alice, auth.IssueRequest{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}

	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	mux := http.NewServeMux()
	mux.Handle("/bare/", ok)
	mux.Handle("/dav/", mw.Wrap(ok))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4 * runtime.GOMAXPROCS(0)}}
	defer client.CloseIdleConnections()

	run := func(b *testing.B, path, authz string) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
				if err != nil {
					b.Error(err)
					return
				}
				if authz != "" {
					req.Header.Set("Authorization", authz)
				}
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
			}
		})
	}
	b.Run("baseline=no-middleware", func(b *testing.B) { run(b, "/bare/", basic("alice", secret)) })
	b.Run("middleware=basic", func(b *testing.B) { run(b, "/dav/", basic("alice", secret)) })
	b.Run("middleware=bearer", func(b *testing.B) { run(b, "/dav/", "Bearer "+secret) })
}
