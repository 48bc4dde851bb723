package oidc_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/oidc"
	"github.com/appauth/appauth/backends/memory"
	"github.com/appauth/appauth/internal/testkit"
)

// TestSharedPendingAcrossServers: a pending sign-in put by one server is
// taken by another, once of many concurrent takes; an expired one is gone.
func TestSharedPendingAcrossServers(t *testing.T) {
	store := memory.NewStore()
	clock := testkit.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	a, b, c := oidc.NewSharedPending(store, clock.Now), oidc.NewSharedPending(store, clock.Now), oidc.NewSharedPending(store, clock.Now)
	ctx := t.Context()
	p := &oidc.Pending{Nonce: "n", Verifier: "v", ReturnPath: "/x", Created: clock.Now(), Expires: clock.Now().Add(10 * time.Minute)}
	if err := a.Put(ctx, "state-1", p); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := 0
	for _, s := range []*oidc.SharedPending{b, c, b, c} {
		wg.Go(func() {
			q, err := s.Take(ctx, "state-1")
			switch {
			case err == nil && q.Nonce == "n" && q.Verifier == "v" && q.ReturnPath == "/x":
				mu.Lock()
				got++
				mu.Unlock()
			case err != nil && !errors.Is(err, auth.ErrNotFound):
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got != 1 {
		t.Fatalf("4 takes on two other servers: %d got the sign-in, want 1", got)
	}
	if err := a.Put(ctx, "state-2", p); err != nil {
		t.Fatal(err)
	}
	clock.Add(10 * time.Minute)
	if _, err := b.Take(ctx, "state-2"); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("an expired sign-in on another server: %v, want ErrNotFound", err)
	}
}
