package throttle_test

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/throttle"
	"github.com/appauth/appauth/internal/testkit"
)

// BenchmarkThrottleMemory measures what the Throttle holds per failing
// client: n failed attempts, each from its own address at its own login,
// fill each of the three tables (address prefixes, logins, pairs) with n
// entries (MaxEntries n, so none is evicted); the live heap before and
// after (runtime.MemStats after two collections) gives the bytes per
// failing client (three entries) and per table entry.
//
//	go test -run '^$' -bench ThrottleMemory -benchtime 1x -count 2 ./auth/throttle/
func BenchmarkThrottleMemory(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprint("clients=", n), func(b *testing.B) {
			var perClient float64
			for b.Loop() {
				perClient = throttleMemory(b, n)
			}
			b.ReportMetric(perClient, "B/client")
			b.ReportMetric(perClient/3, "B/entry")
		})
	}
}

func throttleMemory(b *testing.B, n int) float64 {
	t, err := throttle.New(&throttle.Options{MaxEntries: n})
	if err != nil {
		b.Fatal(err)
	}
	attempts := make([]auth.Attempt, n)
	for i := range attempts {
		attempts[i] = auth.Attempt{Username: fmt.Sprint("user", i), RemoteAddr: fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255)}
	}
	before := testkit.LiveHeap()
	for _, a := range attempts {
		if err := t.Allow(b.Context(), a); err != nil {
			b.Fatal(err)
		}
		t.Done(a, false)
	}
	after := testkit.LiveHeap()
	if a, l, p := t.Size(); a != n || l != n || p != n {
		b.Fatalf("tables hold %d addresses, %d logins, %d pairs; want %d each", a, l, p, n)
	}
	runtime.KeepAlive(t)
	runtime.KeepAlive(attempts)
	return float64(int64(after)-int64(before)) / float64(n)
}
