package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unsafe"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/httpauth"
	"github.com/appauth/appauth/internal/testkit"
)

// TestRequestLogCoalesces: at Info, successful requests are one
// "requests" line per user, address and client with their count and
// bytes, written on Close; every refused request is a line of its own; at
// Debug every request also has its own line.
func TestRequestLogCoalesces(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		t.Run(level.String(), func(t *testing.T) {
			var out testkit.Buffer
			l := newRequestLog(slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: level})))
			alice := &auth.Principal{User: auth.User{ID: "u1", Login: "alice"}}
			h := l.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/denied" {
					http.Error(w, "no", http.StatusUnauthorized)
					return
				}
				// recordUser finds the log's writer under another one.
				recordUser(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Write([]byte("hello"))
				})).ServeHTTP(unwrapper{w}, r.WithContext(httpauth.ContextWithPrincipal(r.Context(), alice)))
			}))
			send := func(path string) {
				r := httptest.NewRequest("GET", path, nil)
				r.RemoteAddr = "198.51.100.7:4711"
				r.Header.Set("User-Agent", "DAVx5/4.4")
				h.ServeHTTP(httptest.NewRecorder(), r)
			}
			for range 50 {
				send("/dav/files/alice/a.txt")
			}
			send("/denied")
			send("/denied")
			before := out.String()
			if n := strings.Count(before, "msg=requests "); n != 0 {
				t.Errorf("%d coalesced lines before Close", n)
			}
			l.Close()
			logs := out.String()
			if n := strings.Count(logs, "status=401"); n != 2 {
				t.Errorf("%d lines for the 2 refused requests, want 2:\n%s", n, logs)
			}
			wantOwn := 0
			if level == slog.LevelDebug {
				wantOwn = 50
			}
			if n := strings.Count(logs, "level=DEBUG msg=request method=GET path=/dav/files/alice/a.txt status=200"); n != wantOwn {
				t.Errorf("%d lines of their own for the 50 successful requests, want %d", n, wantOwn)
			}
			if n := strings.Count(logs, "level=INFO msg=request method=GET path=/dav/"); n != 0 {
				t.Errorf("%d successful requests with a line of their own at Info, want none", n)
			}
			const want = `level=INFO msg=requests user=alice count=50 bytes=250 since=`
			if n := strings.Count(logs, want); n != 1 || !strings.Contains(logs, `remote_addr=198.51.100.7:4711 user_agent=DAVx5/4.4`) {
				t.Errorf("want one line %q from 198.51.100.7 by DAVx5, got:\n%s", want, logs)
			}
		})
	}
}

// unwrapper is a ResponseWriter wrapped around another, as middleware
// between the request log and recordUser would be.
type unwrapper struct{ http.ResponseWriter }

func (u unwrapper) Unwrap() http.ResponseWriter { return u.ResponseWriter }

// TestRequestLogBoundsPendingClients: a successful request's User-Agent
// is kept between the coalesced writes cut short and copied, so that
// anonymous clients sending huge User-Agent headers (status.php, the
// settings page and OPTIONS need no credentials) cannot make the pending
// lines hold up to maxPendingRequestLines times the header limit.
func TestRequestLogBoundsPendingClients(t *testing.T) {
	l := newRequestLog(slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer l.Close()
	h := l.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	ua := strings.Repeat("a", 512<<10)
	r := httptest.NewRequest("GET", "/status.php", nil)
	r.Header.Set("User-Agent", ua)
	h.ServeHTTP(httptest.NewRecorder(), r)
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.pending) != 1 {
		t.Fatalf("%d pending lines, want 1", len(l.pending))
	}
	for k := range l.pending {
		if len(k.client) > 1024 || unsafe.StringData(k.client) == unsafe.StringData(ua) {
			t.Errorf("a pending line keeps a %d-byte User-Agent (sharing the header's memory: %v)", len(k.client), unsafe.StringData(k.client) == unsafe.StringData(ua))
		}
	}
}

// TestRequestLogLineBounded: a refused request's line (one each, at Info)
// holds a bounded part of the path and the User-Agent, so an anonymous
// client sending megabyte headers cannot make megabyte log lines.
func TestRequestLogLineBounded(t *testing.T) {
	var out strings.Builder
	l := newRequestLog(slog.New(slog.NewTextHandler(&out, nil)))
	defer l.Close()
	h := l.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusUnauthorized) }))
	r := httptest.NewRequest("PROPFIND", "/dav/files/"+strings.Repeat("p", 256<<10), nil)
	r.Header.Set("User-Agent", strings.Repeat("a", 512<<10))
	h.ServeHTTP(httptest.NewRecorder(), r)
	if n := len(out.String()); n == 0 || n > 4<<10 {
		t.Fatalf("the line of a refused request with a 256 KiB path and a 512 KiB User-Agent: %d bytes, want 1-4096", n)
	}
}
