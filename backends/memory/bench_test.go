package memory_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/backends/memory"
	"github.com/appauth/appauth/internal/benchpair"
	"github.com/appauth/appauth/internal/testkit"
)

// filledManager returns a Manager on a memory store that already holds n
// app passwords, 10 for each of n/10 users.
func filledManager(b *testing.B, n int) *auth.Manager {
	b.Helper()
	store := memory.NewStore()
	for i := range n {
		if err := store.CreateCredential(b.Context(), &auth.StoredCredential{
			ID: fmt.Sprint("c", i), Kind: auth.KindAppPassword, UserID: fmt.Sprint("u", i/10), Login: fmt.Sprint("user", i/10),
			Name: "device", Hash: fmt.Appendf(nil, "hash-%032d", i), KeyID: "k1", CreatedAt: time.Unix(int64(i), 0),
		}); err != nil {
			b.Fatal(err)
		}
	}
	return testkit.NewManager(b, store, memory.NewDirectory(), nil)
}

// BenchmarkIssueAtScale issues (and revokes again, so the size stays put)
// an app password in a store of 1,000 credentials, the baseline, and in one
// of 10,000, alternately in every worker. Issuing lists the user's app
// passwords first (to enforce MaxAppPasswords); with an owner index that
// costs the same in both, so "ratio" (baseline time / time at 10,000) is
// about 1 and issuing N app passwords takes time linear in N. A scan of
// every credential made it about 0.1 (issuing 100,000 took 11.5 minutes).
func BenchmarkIssueAtScale(b *testing.B) {
	small, large := filledManager(b, 1_000), filledManager(b, 10_000)
	var workers atomic.Int64
	issue := func(m *auth.Manager, user *auth.User) func() error {
		return func() error {
			ap, _, err := m.IssueAppPassword(b.Context(), user, auth.IssueRequest{Name: "phone"})
			if err != nil {
				return err
			}
			return m.RevokeAppPassword(b.Context(), user.ID, ap.ID)
		}
	}
	benchpair.Run(b, func() (benchpair.Pair, error) {
		w := workers.Add(1)
		user := &auth.User{ID: fmt.Sprint("newcomer-", w), Login: fmt.Sprint("newcomer", w)}
		return benchpair.Pair{Baseline: issue(small, user), Subject: issue(large, user)}, nil
	})
}
