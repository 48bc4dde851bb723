package oidc_test

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
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

// TestForgedLogoutTokensFetchKeysOnce: anyone may post to the back-channel
// logout endpoint, and go-oidc fetches the provider's keys again for every
// token that its cached keys do not verify. 50 forged logout tokens (random
// kids, and the provider's own kid with another key's signature) posted to
// the page are refused without a request for the provider's keys; a real
// logout token from the provider still signs the browser out; a minute
// later one forged token may fetch them again, once, so that a rotated key
// is learnt.
func TestForgedLogoutTokensFetchKeysOnce(t *testing.T) {
	s := newProxiedSSO(t)
	b := s.newBrowser(t)
	if resp, _ := s.signIn(t, b, "alice"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d, want 303", resp.StatusCode)
	}
	if n := s.proxy.count(s.jwksPath); n != 1 {
		t.Fatalf("the sign-in fetched the provider's keys %d times, want once", n)
	}
	var jwks struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	resp, body := get(t, http.DefaultClient, s.op.Issuer+s.jwksPath) // not through the proxy
	if err := json.Unmarshal([]byte(body), &jwks); err != nil || resp.StatusCode != http.StatusOK || len(jwks.Keys) == 0 {
		t.Fatalf("the provider's keys: %d %v %s", resp.StatusCode, err, body)
	}
	forged := func(kid string) string {
		now := time.Now()
		b, _ := json.Marshal(map[string]any{
			"iss": s.op.Issuer, "aud": fakeClientID, "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(),
			"jti": rand.Text(), "sub": "alice", "sid": rand.Text(),
			"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
		})
		return oidctest.SignIDToken(fakeKey(), kid, "RS256", string(b))
	}
	post := func(n int) {
		t.Helper()
		for i := range n {
			kid := rand.Text()
			if i%10 == 0 {
				kid = jwks.Keys[0].Kid
			}
			resp, err := http.PostForm(s.srv.URL+"/account/sso/backchannel-logout", url.Values{"logout_token": {forged(kid)}})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("forged logout token %d: %d, want 400", i, resp.StatusCode)
			}
		}
	}
	post(50)
	if n := s.proxy.count(s.jwksPath) - 1; n != 0 {
		t.Fatalf("50 forged logout tokens made %d requests for the provider's keys, want 0", n)
	}

	s.endProviderSession(t, b)
	select {
	case e := <-s.events:
		if e.Login != "alice" {
			t.Fatalf("back-channel logout revoked %+v, want alice's session", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the provider's logout token did not sign alice out; provider log:\n%s", s.op.Log())
	}

	s.clock.Add(61 * time.Second)
	post(20)
	if n := s.proxy.count(s.jwksPath) - 1; n != 1 {
		t.Fatalf("a minute later, forged logout tokens made %d requests for the provider's keys, want 1", n)
	}
}
