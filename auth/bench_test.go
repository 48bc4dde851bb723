package auth_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/backends/memory"
	"github.com/appauth/appauth/internal/testkit"
)

// hotManager returns a Manager as production runs it (memory store, the
// real clock, the default discarding logger) with n app passwords of n
// users, each verified once so that it is cached.
func hotManager(b *testing.B, n int) (*auth.Manager, []auth.Attempt) {
	dir := memory.NewDirectory()
	m := testkit.NewManager(b, memory.NewStore(), dir, &auth.Options{Peppers: []auth.Pepper{testPepper}})
	attempts := make([]auth.Attempt, n)
	for i := range attempts {
		u := auth.User{ID: fmt.Sprint("u-", i), Login: fmt.Sprint("user", i), Groups: []string{"staff"}}
		if err := dir.AddUser(u, ""); err != nil {
			b.Fatal(err)
		}
		_, secret, err := m.IssueAppPassword(b.Context(), &u, auth.IssueRequest{Name: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		attempts[i] = auth.Attempt{Username: u.Login, Password: secret, RemoteAddr: "192.0.2.1", UserAgent: "DAVx5/4.4"}
		if _, err := m.Authenticate(b.Context(), attempts[i]); err != nil {
			b.Fatal(err)
		}
	}
	return m, attempts
}

// BenchmarkVerifyCached measures a verify that hits the cache against its
// baseline, a bare HMAC-SHA256 of the canonical secret with the key state
// precomputed (what any verify must cost), in the same run: each parallel
// worker alternates blocks of 256 of each on its own credential (a server
// has many devices) and the reported ratio is the median over the pairs of
// blocks of verify time / HMAC time (target at most about 1.2);
// hash-ratio is the same for the part of the verify before its cache
// probe (the copy of the secret, the HMAC). Run it at
// -cpu 1,2,4: ns/op of verify-parallel at 2 against 1 is the scaling, and
// hmac-scaling the same for the baseline alone, the machine's own limit.
//
//	go test -run '^$' -bench VerifyCached -benchmem -cpu 1,2,4 -count 3 ./auth/
func BenchmarkVerifyCached(b *testing.B) {
	const workers = 8
	m, attempts := hotManager(b, workers)
	canonical := func(secret string) []byte { return []byte(strings.ReplaceAll(secret, "-", "")) }

	b.Run("ratio", func(b *testing.B) {
		const block = 256
		var next atomic.Int64
		var mu sync.Mutex
		var ratios []float64
		var hmacNs, hashNs, verifyNs, pairs atomic.Int64
		var hashRatios []float64
		b.RunParallel(func(pb *testing.PB) {
			c := attempts[int(next.Add(1)-1)%len(attempts)]
			mac := hmac.New(sha256.New, testPepper.Key)
			msg := canonical(c.Password)
			var sum [32]byte
			var mine, mineHash []float64
			var sink byte
			for pb.Next() {
				t0 := time.Now()
				for range block {
					mac.Reset()
					mac.Write(msg)
					mac.Sum(sum[:0])
				}
				t1 := time.Now()
				for range block {
					sink ^= m.HashSecret(c.Password)
				}
				t2 := time.Now()
				for range block {
					if _, err := m.Authenticate(b.Context(), c); err != nil {
						b.Error(err)
						return
					}
				}
				t3 := time.Now()
				h, hs, v := t1.Sub(t0), t2.Sub(t1), t3.Sub(t2)
				hmacNs.Add(int64(h))
				hashNs.Add(int64(hs))
				verifyNs.Add(int64(v))
				pairs.Add(1)
				mine = append(mine, float64(v)/float64(h))
				mineHash = append(mineHash, float64(hs)/float64(h))
			}
			mu.Lock()
			ratios = append(ratios, mine...)
			hashRatios = append(hashRatios, mineHash...)
			mu.Unlock()
			_ = sink
		})
		if len(ratios) == 0 {
			return
		}
		slices.Sort(ratios)
		slices.Sort(hashRatios)
		n := float64(pairs.Load() * block)
		b.ReportMetric(float64(hmacNs.Load())/n, "hmac-ns")
		b.ReportMetric(float64(hashNs.Load())/n, "hash-ns")
		b.ReportMetric(float64(verifyNs.Load())/n, "verify-ns")
		b.ReportMetric(ratios[len(ratios)/2], "ratio")
		b.ReportMetric(hashRatios[len(hashRatios)/2], "hash-ratio")
	})
	b.Run("verify", func(b *testing.B) {
		b.ReportAllocs()
		c := attempts[0]
		for b.Loop() {
			if _, err := m.Authenticate(b.Context(), c); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The same with Options.ExpireUnusedAfter: one more comparison on the
	// cached entry (compare with "verify").
	eu := newEnv(b, func(o *auth.Options) { o.Logger, o.ExpireUnusedAfter = nil, 365*24*time.Hour })
	_, euSecret, err := eu.m.IssueAppPassword(b.Context(), eu.alice, auth.IssueRequest{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	euc := auth.Attempt{Username: "alice", Password: euSecret, RemoteAddr: "192.0.2.1", UserAgent: "bench"}
	b.Run("verify-expire-unused", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := eu.m.Authenticate(b.Context(), euc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("verify-parallel", func(b *testing.B) {
		b.ReportAllocs()
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			c := attempts[int(next.Add(1)-1)%len(attempts)]
			for pb.Next() {
				if _, err := m.Authenticate(b.Context(), c); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("hmac-parallel", func(b *testing.B) {
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			msg := canonical(attempts[int(next.Add(1)-1)%len(attempts)].Password)
			mac := hmac.New(sha256.New, testPepper.Key)
			var sum [32]byte
			for pb.Next() {
				mac.Reset()
				mac.Write(msg)
				mac.Sum(sum[:0])
			}
		})
	})
}
