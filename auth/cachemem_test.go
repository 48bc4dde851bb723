package auth_test

import (
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"testing"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/backends/memory"
	"github.com/appauth/appauth/internal/testkit"
)

// BenchmarkCacheMemory measures what the Manager's caches hold per cached
// credential: n app passwords of n/10 users are issued, then each is
// verified once (CacheSize n, so every one stays cached, with its owner in
// the owner cache), and the live heap is compared before and after, with
// the pending last-used times written out first. The figure sizes
// auth.Options.CacheSize: memory = CacheSize × B/credential.
//
// With audit=on the Manager has an audit log at Info (to io.Discard), so
// each credential also holds its pending coalesced "auth used" record.
func BenchmarkCacheMemory(b *testing.B) {
	for _, audit := range []bool{false, true} {
		for _, n := range []int{10_000, 100_000} {
			b.Run(fmt.Sprintf("audit=%v/cached=%d", map[bool]string{false: "off", true: "on"}[audit], n), func(b *testing.B) {
				var perCred float64
				for b.Loop() {
					perCred = cacheMemory(b, n, audit)
				}
				b.ReportMetric(perCred, "B/credential")
			})
		}
	}
}

// cacheMemory runs one measurement; it stays timed, so that b.Loop does
// not repeat the heavy setup without end (ns/op is the measurement's own).
func cacheMemory(b *testing.B, n int, audit bool) float64 {
	dir := memory.NewDirectory()
	users := make([]*auth.User, n/10)
	for i := range users {
		users[i] = &auth.User{ID: fmt.Sprint("u-", i), Login: fmt.Sprint("user", i)}
		if err := dir.AddUser(*users[i], ""); err != nil {
			b.Fatal(err)
		}
	}
	opts := &auth.Options{CacheSize: n}
	if audit {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	m := testkit.NewManager(b, memory.NewStore(), dir, opts)
	attempts := make([]auth.Attempt, n)
	for i := range attempts {
		u := users[i%len(users)]
		_, secret, err := m.IssueAppPassword(b.Context(), u, auth.IssueRequest{Name: fmt.Sprint("device ", i)})
		if err != nil {
			b.Fatal(err)
		}
		attempts[i] = auth.Attempt{Username: u.Login, Password: secret, RemoteAddr: "192.0.2.1", UserAgent: "DAVx5/4.4"}
	}
	before := testkit.LiveHeap()
	for _, a := range attempts {
		if _, err := m.Authenticate(b.Context(), a); err != nil {
			b.Fatal(err)
		}
	}
	if err := m.Flush(b.Context()); err != nil {
		b.Fatal(err)
	}
	after := testkit.LiveHeap()
	// Every credential must still be cached, or the figure would be low.
	if got := m.CachedCredentials(); got != n {
		b.Fatalf("%d credentials cached, want %d", got, n)
	}
	runtime.KeepAlive(m)
	runtime.KeepAlive(attempts)
	return float64(int64(after)-int64(before)) / float64(n)
}
