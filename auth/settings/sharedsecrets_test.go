package settings_test

import (
	"context"
	"errors"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/settings"
	"github.com/appauth/appauth/backends/memory"
	"github.com/appauth/appauth/backends/sqlstore"
	"github.com/appauth/appauth/internal/testkit"
)

// brokenTransients is a shared store that takes records but cannot add
// them: the database went away between two statements.
type brokenTransients struct{ *memory.Store }

func (brokenTransients) PutTransient(context.Context, string, []byte, []byte, time.Time, time.Time) error {
	return errors.New("connection refused")
}

// TestSharedSecretsPage: with Options.SharedSecrets the page shows a new
// secret once from the shared store and not on reload (across servers:
// TestThreeNodesBehindProxy); when the store cannot hold the secret, the
// create form answers 503 and leaves no password that nobody has seen.
func TestSharedSecretsPage(t *testing.T) {
	shared := memory.NewStore()
	e := newEnv(t, nil, func(o *settings.Options) { o.SharedSecrets = shared })
	c := e.client()
	signInForm(t, c, "alice", alicePassword)
	post := c.form("app-passwords", "name", "My iPhone")
	view := c.followCreate(t, post)
	secret := shownSecret(t, wantPage(t, view, 200, `id="created"`))
	if !e.appPasswordWorks("alice", secret) {
		t.Fatal("the shown password does not work")
	}
	loc := strings.TrimSuffix(post.Header().Get("Location"), "#created")
	again := wantPage(t, c.get(strings.TrimPrefix(loc, e.prefix)), 200, "was shown once and cannot be shown again")
	if strings.Contains(again, secret) || newPassword.MatchString(again) {
		t.Fatal("the secret is shown again on reload")
	}

	broken := newEnv(t, nil, func(o *settings.Options) { o.SharedSecrets = brokenTransients{memory.NewStore()} })
	bc := broken.client()
	signInForm(t, bc, "alice", alicePassword)
	if w := bc.form("app-passwords", "name", "Lost"); w.Code != 503 {
		t.Fatalf("create with the shared store down: %d, want 503; %.300s", w.Code, w.Body)
	}
	aps, err := broken.m.ListAppPasswords(t.Context(), broken.alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(aps) != 0 {
		t.Fatalf("a password whose secret could not be shown was kept: %d", len(aps))
	}
}

// leavingTransients is a shared store during whose PutTransient the client
// goes away: the request's context ends, and the call fails with it, as a
// database call does.
type leavingTransients struct {
	*memory.Store
	leave context.CancelFunc
}

func (s *leavingTransients) PutTransient(ctx context.Context, kind string, key, value []byte, expires, now time.Time) error {
	s.leave()
	<-ctx.Done()
	return ctx.Err()
}

// TestCreateRevokesWhenTheClientLeft: the client goes away while the shared
// store is holding the new secret, which fails: the password nobody will
// see is revoked all the same, on a store that honours its context
// (SQLite), not left behind because the revoke ran under the request's
// ended context.
func TestCreateRevokesWhenTheClientLeft(t *testing.T) {
	store, err := sqlstore.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "appauth.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	dir := memory.NewDirectory()
	alice := &auth.User{ID: "u-alice", Login: "alice"}
	if err := dir.AddUser(*alice, alicePassword); err != nil {
		t.Fatal(err)
	}
	m := testkit.NewManager(t, store, dir, nil)
	shared := &leavingTransients{Store: memory.NewStore()}
	h, err := settings.New(m, testkit.NewVerifier(dir), &settings.Options{SharedSecrets: shared})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, m: m, h: h, prefix: h.Prefix(), alice: alice}
	c := e.client()
	signInForm(t, c, "alice", alicePassword)
	ctx, leave := context.WithCancel(t.Context())
	shared.leave = leave
	r := c.req("POST", "app-passwords", "application/x-www-form-urlencoded", url.Values{"name": {"Lost"}, "csrf": {c.csrf}}.Encode())
	c.send(r.WithContext(ctx))
	aps, err := m.ListAppPasswords(t.Context(), alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(aps) != 0 {
		t.Fatalf("a password whose secret could not be held was kept after the client left: %d", len(aps))
	}
}
