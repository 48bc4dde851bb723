package httpauth_test

import (
	"context"
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
	m, _, secret := benchManager(b)
	mw, err := httpauth.New(m, nil)
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

// fixedAuthenticator accepts everything as one principal at no cost, so
// that a benchmark sees the middleware's own work alone.
type fixedAuthenticator struct{ p *auth.Principal }

func (f fixedAuthenticator) Authenticate(context.Context, auth.Attempt) (*auth.Principal, error) {
	return f.p, nil
}

// nopWriter is a ResponseWriter that keeps nothing.
type nopWriter struct{ h http.Header }

func (w nopWriter) Header() http.Header         { return w.h }
func (w nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w nopWriter) WriteHeader(int)             {}

// BenchmarkMiddlewareOwnWork measures, in process and without a network,
// what the middleware itself does per request (header check, Basic
// decode, client address, user agent, the principal into the context, the
// read-only check) beside its floor, the same handler called bare by
// net/http's Handler interface; "manager" adds a cached verify through the
// Manager with a Throttle, as in production.
//
//	go test -run '^$' -bench MiddlewareOwnWork -benchmem -count 3 ./auth/httpauth
func BenchmarkMiddlewareOwnWork(b *testing.B) {
	m, alice, secret := benchManager(b)
	var seen *auth.Principal
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen, _ = httpauth.PrincipalFromContext(r.Context()) })
	fixed, err := httpauth.New(fixedAuthenticator{&auth.Principal{User: alice}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	real, err := httpauth.New(m, nil)
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("PROPFIND", "/dav/files/alice/", nil)
	req.RemoteAddr = "192.0.2.7:50123"
	req.Header.Set("User-Agent", "DAVx5/4.4.2-ose (2024/08/01; dav4jvm; okhttp/4.12.0) Android/14")
	req.Header.Set("Authorization", basic("alice", secret))
	w := nopWriter{h: http.Header{}}
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{
		{"baseline=net/http", ok},
		{"middleware", fixed.Wrap(ok)},
		{"middleware+manager", real.Wrap(ok)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bc.h.ServeHTTP(w, req)
			}
		})
	}
	if seen == nil {
		b.Fatal("the handler saw no principal")
	}
}

// benchManager returns a Manager on the memory backend with a Throttle as
// its Limiter, as in production, its user alice and an app password of
// hers.
func benchManager(b *testing.B) (m *auth.Manager, alice auth.User, secret string) {
	dir := memory.NewDirectory()
	alice = auth.User{ID: "u-alice", Login: "alice"}
	if err := dir.AddUser(alice, "account password"); err != nil {
		b.Fatal(err)
	}
	limiter, err := throttle.New(nil)
	if err != nil {
		b.Fatal(err)
	}
	m = testkit.NewManager(b, memory.NewStore(), dir, &auth.Options{Limiter: limiter})
	if _, secret, err = m.IssueAppPassword(b.Context(), &alice, auth.IssueRequest{Name: "bench"}); err != nil {
		b.Fatal(err)
	}
	return m, alice, secret
}
