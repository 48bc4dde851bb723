package auth_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
)

// BenchmarkVerifyCached measures a verify that hits the cache, beside its
// baseline: one bare HMAC-SHA256 of the secret (what any verify must cost).
func BenchmarkVerifyCached(b *testing.B) {
	e := newEnv(b, func(o *auth.Options) { o.Logger = nil }) // discard, the default
	_, secret, err := e.m.IssueAppPassword(b.Context(), e.alice, auth.IssueRequest{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	c := auth.Attempt{Username: "alice", Password: secret, RemoteAddr: "192.0.2.1", UserAgent: "bench"}
	if _, err := e.m.Authenticate(b.Context(), c); err != nil {
		b.Fatal(err)
	}

	b.Run("baseline=hmac-sha256", func(b *testing.B) {
		b.ReportAllocs()
		mac := hmac.New(sha256.New, testPepper.Key)
		canonical := []byte(strings.ReplaceAll(secret, "-", ""))
		var sum [32]byte
		for b.Loop() {
			mac.Reset()
			mac.Write(canonical)
			mac.Sum(sum[:0])
		}
	})
	b.Run("authenticate", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.m.Authenticate(b.Context(), c); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The same with Options.ExpireUnusedAfter: one more comparison on the
	// cached entry (compare with "authenticate").
	eu := newEnv(b, func(o *auth.Options) { o.Logger, o.ExpireUnusedAfter = nil, 365*24*time.Hour })
	_, euSecret, err := eu.m.IssueAppPassword(b.Context(), eu.alice, auth.IssueRequest{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	euc := auth.Attempt{Username: "alice", Password: euSecret, RemoteAddr: "192.0.2.1", UserAgent: "bench"}
	b.Run("authenticate-expire-unused", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := eu.m.Authenticate(b.Context(), euc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("authenticate-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := e.m.Authenticate(b.Context(), c); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
