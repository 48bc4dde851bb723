package davstore

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/appauth/appauth/internal/benchpair"
)

// BenchmarkFiles measures davstore's own files path without the network:
// PROPFIND Depth 0 (allprop, no body) on a folder of 10 files of 1 KiB and
// GET of one of them, as make bench-peers sends them, served by the Store
// to a recorder, with the process's CPU time per request (cpu-ns/op) beside
// the elapsed time. Compare commits by running it on both in alternation:
//
//	go test -run '^$' -bench Files -count 5 ./examples/davserver/internal/davstore
func BenchmarkFiles(b *testing.B) {
	s, err := New(b.TempDir(), "/dav", userFromContext)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.WithValue(context.Background(), userKey{}, User{Login: "alice", ID: "alice"})
	serve := func(method, path, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequestWithContext(ctx, method, path, strings.NewReader(body))
		if body == "" {
			r.Body, r.ContentLength = http.NoBody, 0
		}
		r.Header.Set("Depth", "0")
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		return w
	}
	if w := serve("MKCOL", "/dav/files/alice/bench/", ""); w.Code != http.StatusCreated {
		b.Fatalf("MKCOL: %d", w.Code)
	}
	for i := range 10 {
		if w := serve("PUT", "/dav/files/alice/bench/f"+strconv.Itoa(i)+".bin", strings.Repeat("x", 1024)); w.Code != http.StatusCreated {
			b.Fatalf("PUT: %d", w.Code)
		}
	}
	for _, bc := range []struct {
		name, method, path string
		want               int
	}{
		{"propfind-depth0", "PROPFIND", "/dav/files/alice/bench/", http.StatusMultiStatus},
		{"get-1KiB", "GET", "/dav/files/alice/bench/f0.bin", http.StatusOK},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := benchpair.ProcessCPU()
			for b.Loop() {
				if w := serve(bc.method, bc.path, ""); w.Code != bc.want {
					b.Fatalf("%s: %d", bc.method, w.Code)
				}
			}
			b.ReportMetric(float64(benchpair.ProcessCPU()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}
