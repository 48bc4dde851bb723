package oidc_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc/oidctest"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/oidc"
)

func (f *fakeOP) logoutToken(claims map[string]any) string {
	b, _ := json.Marshal(claims)
	return oidctest.SignIDToken(fakeKey(), fakeKeyID, "RS256", string(b))
}

func (f *fakeOP) logoutClaims(jti, sub, sid string) map[string]any {
	now := time.Now()
	c := map[string]any{
		"iss": f.srv.URL, "aud": fakeClientID, "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(), "jti": jti,
		"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
	}
	if sub != "" {
		c["sub"] = sub
	}
	if sid != "" {
		c["sid"] = sid
	}
	return c
}

// TestBackChannelLogout: a logout token for a provider session signs out
// exactly the browser sessions of that sid (another sid of the same
// person and other people stay), one for a subject all of theirs; app
// passwords survive; the same token again is refused; malformed, foreign,
// old and nonce-carrying tokens are refused and sign nobody out.
func TestBackChannelLogout(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	iss := e.op.srv.URL
	mk := func(u *auth.User, sub, sid string) string {
		s, _, err := e.m.CreateFederatedSession(ctx, u, auth.Federation{Issuer: iss, Subject: sub, SID: sid}, time.Now(), "192.0.2.1", "test")
		if err != nil {
			t.Fatal(err)
		}
		return s.ID
	}
	bob := &auth.User{ID: "u-bob", Login: "bob"}
	a1, a2, b1 := mk(e.alice, "sub-alice", "sid-1"), mk(e.alice, "sub-alice", "sid-2"), mk(bob, "sub-bob", "sid-3")
	_, secret, err := e.m.IssueAppPassword(ctx, e.alice, auth.IssueRequest{Name: "Phone"})
	if err != nil {
		t.Fatal(err)
	}
	alive := func(u *auth.User) map[string]bool {
		ss, err := e.m.ListSessions(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, s := range ss {
			out[s.ID] = true
		}
		return out
	}

	for name, claims := range map[string]map[string]any{
		"other audience": func() map[string]any { c := e.op.logoutClaims("j0", "", "sid-1"); c["aud"] = "other"; return c }(),
		"other issuer": func() map[string]any {
			c := e.op.logoutClaims("j1", "", "sid-1")
			c["iss"] = "https://evil.example"
			return c
		}(),
		"no event":      func() map[string]any { c := e.op.logoutClaims("j2", "", "sid-1"); delete(c, "events"); return c }(),
		"a nonce":       func() map[string]any { c := e.op.logoutClaims("j3", "", "sid-1"); c["nonce"] = "n"; return c }(),
		"no jti":        func() map[string]any { c := e.op.logoutClaims("", "", "sid-1"); delete(c, "jti"); return c }(),
		"no sub or sid": e.op.logoutClaims("j4", "", ""),
		"old": func() map[string]any {
			c := e.op.logoutClaims("j5", "", "sid-1")
			c["iat"] = time.Now().Add(-time.Hour).Unix()
			return c
		}(),
		"expired": func() map[string]any {
			c := e.op.logoutClaims("j6", "", "sid-1")
			c["exp"] = time.Now().Add(-time.Minute).Unix()
			return c
		}(),
	} {
		if err := e.c.BackChannelLogout(ctx, e.op.logoutToken(claims)); !errors.Is(err, auth.ErrInvalidCredentials) {
			t.Errorf("logout token with %s: %v, want ErrInvalidCredentials", name, err)
		}
	}
	if err := e.c.BackChannelLogout(ctx, "not.a.jwt"); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("garbage logout token: %v", err)
	}
	if got := alive(e.alice); !got[a1] || !got[a2] {
		t.Fatalf("a refused logout token signed sessions out: %v", got)
	}

	tok := e.op.logoutToken(e.op.logoutClaims("jti-1", "sub-alice", "sid-1"))
	if err := e.c.BackChannelLogout(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if got := alive(e.alice); got[a1] || !got[a2] {
		t.Fatalf("after logout of sid-1: alice's sessions %v, want only %s", got, a2)
	}
	if err := e.c.BackChannelLogout(ctx, tok); !errors.Is(err, oidc.ErrLogoutReplayed) || !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Fatalf("replayed logout token: %v, want ErrLogoutReplayed", err)
	}

	if err := e.c.BackChannelLogout(ctx, e.op.logoutToken(e.op.logoutClaims("jti-2", "sub-alice", ""))); err != nil {
		t.Fatal(err)
	}
	if got := alive(e.alice); len(got) != 0 {
		t.Fatalf("after logout of sub-alice: sessions %v remain", got)
	}
	if got := alive(bob); !got[b1] {
		t.Fatal("bob's session ended by alice's logout")
	}
	if _, err := e.m.Authenticate(ctx, auth.Attempt{Username: "alice", Password: secret, RemoteAddr: "192.0.2.2"}); err != nil {
		t.Fatalf("alice's app password after back-channel logout: %v, want it to keep working", err)
	}
}

// TestLogoutURL: RP-initiated logout goes to end_session_endpoint with the
// client ID, the ID token hint and the post-logout URL.
func TestLogoutURL(t *testing.T) {
	e := newEnv(t, &oidc.Config{PostLogoutRedirectURL: "https://dav.example/account/signin?done=signed-out"})
	got := e.c.LogoutURL("the.id.token")
	want := fmt.Sprintf("%s/logout?client_id=%s&id_token_hint=the.id.token&post_logout_redirect_uri=https%%3A%%2F%%2Fdav.example%%2Faccount%%2Fsignin%%3Fdone%%3Dsigned-out", e.op.srv.URL, fakeClientID)
	if got != want {
		t.Fatalf("LogoutURL = %s\nwant        %s", got, want)
	}
}

// TestMemoryPending: records are single use, expire, and the store keeps
// at most its bound, dropping the oldest.
func TestMemoryPending(t *testing.T) {
	ctx := t.Context()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := oidc.NewMemoryPending(3, func() time.Time { return now })
	put := func(k string, ttl time.Duration) {
		if err := s.Put(ctx, k, &oidc.Pending{Nonce: k, Expires: now.Add(ttl)}); err != nil {
			t.Fatal(err)
		}
	}
	put("a", time.Minute)
	if err := s.Put(ctx, "a", &oidc.Pending{Expires: now.Add(time.Minute)}); !errors.Is(err, auth.ErrAlreadyExists) {
		t.Fatalf("second Put of a key: %v", err)
	}
	if p, err := s.Take(ctx, "a"); err != nil || p.Nonce != "a" {
		t.Fatalf("Take(a) = %+v, %v", p, err)
	}
	if _, err := s.Take(ctx, "a"); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("second Take(a): %v, want ErrNotFound", err)
	}
	put("short", time.Second)
	now = now.Add(2 * time.Second)
	if _, err := s.Take(ctx, "short"); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("Take of an expired record: %v, want ErrNotFound", err)
	}
	for _, k := range []string{"1", "2", "3", "4", "5"} {
		put(k, time.Minute)
	}
	if s.Len() != 3 {
		t.Fatalf("Len = %d, want the bound 3", s.Len())
	}
	if _, err := s.Take(ctx, "2"); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("an old record survived the bound: %v", err)
	}
	if _, err := s.Take(ctx, "5"); err != nil {
		t.Fatalf("the newest record was dropped: %v", err)
	}
}
