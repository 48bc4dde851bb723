package ldap_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/internal/testenv"
)

// TestHungServer: a server that connects and then stops answering a search
// or a bind costs at most RequestTimeout or BindTimeout, and is
// ErrUnavailable (503), never invalid credentials; once it answers again
// the same Directory works.
func TestHungServer(t *testing.T) {
	s := testenv.LDAP(t)
	p := newProxy(t, hostOf(t, s.URL), false)
	p.serviceDN = s.BindDN // only the user's bind hangs
	c := config(s, p.URL())
	c.RequestTimeout, c.BindTimeout = 300*time.Millisecond, 300*time.Millisecond
	d := open(t, c)
	// The caller's deadline is far: an answer well before it comes from
	// the directory's own timeouts.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if _, err := d.VerifyPassword(ctx, "alice", "alice-Secret-1"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		stall func(bool)
		call  func() error
	}{
		{"search", p.stallSearches.Store, func() error { _, err := d.LookupUser(ctx, "alice"); return err }},
		{"user's bind", p.stallBinds.Store, func() error { _, err := d.VerifyPassword(ctx, "bob", "bob-Secret-2"); return err }},
	} {
		tc.stall(true)
		start := time.Now()
		err := tc.call()
		elapsed := time.Since(start)
		tc.stall(false)
		if !errors.Is(err, auth.ErrUnavailable) || errors.Is(err, auth.ErrInvalidCredentials) {
			t.Errorf("hung %s: %v, want ErrUnavailable", tc.name, err)
		}
		if elapsed > 3*time.Second {
			t.Errorf("hung %s took %v: the timeout was not applied", tc.name, elapsed)
		}
		if _, err := d.VerifyPassword(ctx, "alice", "alice-Secret-1"); err != nil {
			t.Errorf("after the hung %s: %v", tc.name, err)
		}
	}
}

// TestHungServerPooledConnectionsFailOver: the first server hangs with
// connections to it idle in the pool (SIGSTOPped, or a firewall that drops
// them silently) while the second answers. The call that finds it hung
// marks it dead and is retried on the second server, and later calls go
// there too, rather than each taking another pooled connection to the hung
// server and failing with 503 after waiting RequestTimeout for it twice.
func TestHungServerPooledConnectionsFailOver(t *testing.T) {
	s := testenv.LDAP(t)
	first, second := newProxy(t, hostOf(t, s.URL), false), newProxy(t, hostOf(t, s.URL), false)
	c := config(s, first.URL(), second.URL())
	c.RequestTimeout, c.PoolSize = 300*time.Millisecond, 4
	d := open(t, c)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	// Fill the pool with idle connections to the first server.
	for conns := 0; conns < 4; conns, _, _ = first.counts() {
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := d.LookupUser(ctx, "alice"); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
	}
	first.stallSearches.Store(true)
	for i := range 3 {
		start := time.Now()
		u, err := d.LookupUser(ctx, "alice")
		if err != nil || u.Login != "alice" {
			t.Fatalf("lookup %d with the first server hung and the second answering: %+v, %v (after %v)", i+1, u, err, time.Since(start))
		}
	}
}
