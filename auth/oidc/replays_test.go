package oidc_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/oidc"
	"github.com/appauth/appauth/backends/memory"
)

// failingTransients is a TransientStore whose PutTransient fails: the
// database is down.
type failingTransients struct{ *memory.Store }

func (failingTransients) PutTransient(context.Context, string, []byte, []byte, time.Time, time.Time) error {
	return errors.New("connection refused")
}

// TestLogoutReplayedAcrossServers: two clients (two servers) sharing one
// TransientStore; a logout token used on one is refused on the other, and
// of the same token sent to both at once one is accepted. A store that
// cannot record the jti is an outage, not an invalid token.
func TestLogoutReplayedAcrossServers(t *testing.T) {
	store := memory.NewStore()
	e := newEnv(t, &oidc.Config{LogoutReplays: store})
	other, err := oidc.New(t.Context(), e.m, e.dir, &oidc.Config{
		Issuer: e.op.srv.URL, ClientID: fakeClientID, ClientSecret: fakeSecret, RedirectURL: "http://127.0.0.1/sso/callback",
		LogoutReplays: store,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	tok := e.op.logoutToken(e.op.logoutClaims("jti-shared-1", "sub-alice", "sid-1"))
	if err := e.c.BackChannelLogout(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if err := other.BackChannelLogout(ctx, tok); !errors.Is(err, oidc.ErrLogoutReplayed) || !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Fatalf("the token replayed to another server: %v, want ErrLogoutReplayed", err)
	}

	tok2 := e.op.logoutToken(e.op.logoutClaims("jti-shared-2", "sub-alice", "sid-2"))
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted, replayed := 0, 0
	for _, c := range []*oidc.Client{e.c, other, e.c, other} {
		wg.Go(func() {
			err := c.BackChannelLogout(ctx, tok2)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				accepted++
			case errors.Is(err, oidc.ErrLogoutReplayed):
				replayed++
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if accepted != 1 || replayed != 3 {
		t.Fatalf("one token sent 4 times to two servers: %d accepted, %d replayed; want 1, 3", accepted, replayed)
	}

	down, err := oidc.New(t.Context(), e.m, e.dir, &oidc.Config{
		Issuer: e.op.srv.URL, ClientID: fakeClientID, ClientSecret: fakeSecret, RedirectURL: "http://127.0.0.1/sso/callback",
		LogoutReplays: failingTransients{memory.NewStore()},
	})
	if err != nil {
		t.Fatal(err)
	}
	err = down.BackChannelLogout(ctx, e.op.logoutToken(e.op.logoutClaims("jti-shared-3", "sub-alice", "")))
	if !errors.Is(err, auth.ErrUnavailable) || errors.Is(err, auth.ErrInvalidCredentials) {
		t.Fatalf("logout with the replay store down: %v, want ErrUnavailable only", err)
	}
}
