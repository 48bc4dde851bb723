package ldap_test

import (
	"context"
	"errors"
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
