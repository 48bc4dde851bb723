package settings_test

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/settings"
	"github.com/appauth/appauth/backends/memory"
	"github.com/appauth/appauth/backends/sqlstore"
	"github.com/appauth/appauth/internal/testkit"
)

// leavingStore is a real store whose client goes away once a new session
// is stored (armed with leave): the request's context ends there.
type leavingStore struct {
	auth.Store
	leave atomic.Pointer[context.CancelFunc]
}

// HonorsContext implements [auth.ContextBounded] as SQLite does, so that
// the Manager calls the store on the request's goroutine and the store
// call that ends the context still returns its own result.
func (s *leavingStore) HonorsContext() bool { return true }

func (s *leavingStore) CreateCredential(ctx context.Context, c *auth.StoredCredential) error {
	err := s.Store.CreateCredential(ctx, c)
	if leave := s.leave.Load(); leave != nil && c.Kind == auth.KindSession {
		(*leave)()
	}
	return err
}

// signedInOnLeavingStore returns a client with alice signed in to a
// Handler (with the options opts makes for her; nil for none) on a Manager
// over a leavingStore on SQLite: both client-left tests start here.
func signedInOnLeavingStore(t *testing.T, opts func(alice *auth.User) *settings.Options) (*leavingStore, *client) {
	t.Helper()
	db, err := sqlstore.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "appauth.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	store := &leavingStore{Store: db}
	dir := memory.NewDirectory()
	alice := &auth.User{ID: "u-alice", Login: "alice"}
	if err := dir.AddUser(*alice, alicePassword); err != nil {
		t.Fatal(err)
	}
	m := testkit.NewManager(t, store, dir, nil)
	var o *settings.Options
	if opts != nil {
		o = opts(alice)
	}
	h, err := settings.New(m, testkit.NewVerifier(dir), o)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, m: m, h: h, prefix: h.Prefix(), alice: alice}
	c := e.client()
	c.signIn("alice", alicePassword)
	return store, c
}

// sendAndLeave sends r for c under a context that s ends once r has stored
// a new session, as a client that goes away at that moment.
func (s *leavingStore) sendAndLeave(c *client, r *http.Request) {
	ctx, leave := context.WithCancel(c.e.t.Context())
	s.leave.Store(&leave)
	c.send(r.WithContext(ctx))
	s.leave.Store(nil)
}

// TestSignInEndsOldSessionWhenTheClientLeft: a sign-in that carries a
// session (a planted or stolen copy of it) ends that session even when the
// client goes away once the new one is stored: the copy does not survive
// because the revoke ran under the request's ended context (on SQLite,
// which honours it).
func TestSignInEndsOldSessionWhenTheClientLeft(t *testing.T) {
	store, c := signedInOnLeavingStore(t, nil)
	old := c.cookie.Value
	store.sendAndLeave(c, c.req("POST", "api/v1/session", "application/json", mustJSON(map[string]string{"username": "alice", "password": alicePassword})))
	if _, err := c.e.m.AuthenticateSession(t.Context(), old, "192.0.2.10", "test"); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("the session the sign-in replaced, after the client left: %v, want ErrInvalidCredentials", err)
	}
}

// TestSSOSignInEndsOldSessionWhenTheClientLeft is
// TestSignInEndsOldSessionWhenTheClientLeft for a sign-in through single
// sign-on: the provider's callback ends the session the browser carried.
func TestSSOSignInEndsOldSessionWhenTheClientLeft(t *testing.T) {
	store, c := signedInOnLeavingStore(t, func(alice *auth.User) *settings.Options {
		return &settings.Options{SSO: newFakeSSO(alice, time.Now())}
	})
	old := c.cookie.Value
	var binding string
	for _, ck := range c.get("sso/start").Result().Cookies() {
		if ck.Name == "appauth_sso" {
			binding = ck.Value
		}
	}
	if binding == "" {
		t.Fatal("sso/start set no binding cookie")
	}
	r := c.req("GET", "sso/callback?code=c&state=s", "", "")
	r.AddCookie(&http.Cookie{Name: "appauth_sso", Value: binding})
	store.sendAndLeave(c, r)
	if _, err := c.e.m.AuthenticateSession(t.Context(), old, "192.0.2.10", "test"); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("the session the single sign-on replaced, after the client left: %v, want ErrInvalidCredentials", err)
	}
}
