package auth_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/internal/testkit"
)

func TestAuthenticateToken(t *testing.T) {
	l := &testkit.Limiter{}
	e := newEnv(t, func(o *auth.Options) { o.Limiter = l })
	ctx := t.Context()
	ap, secret, err := e.m.IssueAppPassword(ctx, e.alice, auth.IssueRequest{Name: "phone", Scopes: []string{auth.ScopeCalendars}})
	if err != nil {
		t.Fatal(err)
	}

	p, err := e.m.AuthenticateToken(ctx, secret, "192.0.2.7", "curl")
	if err != nil {
		t.Fatalf("AuthenticateToken: %v", err)
	}
	if p.User.Login != "alice" || p.Method != auth.MethodAppPassword || p.CredentialID != ap.ID || !slices.Equal(p.Scopes, []string{auth.ScopeCalendars}) {
		t.Errorf("principal %+v, want alice's calendars-only app password %s", p, ap.ID)
	}
	// Normalization is the same as for Authenticate.
	if _, err := e.m.AuthenticateToken(ctx, strings.ToUpper(secret), "192.0.2.7", "curl"); err != nil {
		t.Errorf("upper-case secret: %v", err)
	}

	_, sess, err := e.m.CreateSession(ctx, e.alice, "192.0.2.7", "Firefox")
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{
		"empty":          "",
		"account":        "account-password-of-alice",
		"session secret": sess,
		"typo":           testkit.Typo(secret),
	} {
		if _, err := e.m.AuthenticateToken(ctx, s, "192.0.2.7", "curl"); !errors.Is(err, auth.ErrInvalidCredentials) {
			t.Errorf("%s: %v, want ErrInvalidCredentials", name, err)
		}
	}

	if err := e.m.RevokeAppPassword(ctx, e.alice.ID, ap.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.AuthenticateToken(ctx, secret, "192.0.2.7", "curl"); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("revoked: %v, want ErrInvalidCredentials", err)
	}

	// The Limiter sees no username before the lookup, and the owner's login
	// once the token is known good.
	var done []string
	for _, r := range l.Results() {
		s := "fail:" + r.Attempt.Username
		if r.Success {
			s = "ok:" + r.Attempt.Username
		}
		done = append(done, s)
	}
	if len(done) < 2 || done[0] != "ok:alice" || done[len(done)-1] != "fail:" {
		t.Errorf("Limiter.Done calls %q, want ok:alice first and fail: (no username) last", done)
	}
	if slices.ContainsFunc(l.Allowed(), func(a auth.Attempt) bool { return a.Username != "" }) {
		t.Errorf("Limiter.Allow saw usernames in %+v, want none", l.Allowed())
	}
}

func TestAuthenticateTokenExpiredAndOutage(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	_, secret, err := e.m.IssueAppPassword(ctx, e.alice, auth.IssueRequest{Name: "short", ExpiresAt: e.clock.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	e.store.Fail(auth.ErrUnavailable)
	if _, err := e.m.AuthenticateToken(ctx, secret, "", ""); !errors.Is(err, auth.ErrUnavailable) || errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("store down: %v, want ErrUnavailable only", err)
	}
	e.store.Fail(nil)
	if _, err := e.m.AuthenticateToken(ctx, secret, "", ""); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	e.clock.Add(2 * time.Hour)
	if _, err := e.m.AuthenticateToken(ctx, secret, "", ""); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("expired: %v, want ErrInvalidCredentials", err)
	}
}

func TestLooksLikeAppPassword(t *testing.T) {
	e := newEnv(t, nil)
	_, secret := e.issue(t, e.alice, "phone")
	for s, want := range map[string]bool{
		secret:                               true,
		strings.ToUpper(secret):              true,
		strings.ReplaceAll(secret, "-", " "): true,
		testkit.Typo(secret):                 true, // a typo still looks like one
		"":                                   false,
		"correct horse battery staple":       false,
		"aap-hunter2":                        false,
		secret + "2":                         false,
		"aas" + strings.TrimPrefix(secret, "aap"): false, // a session secret
	} {
		if got := auth.LooksLikeAppPassword(s); got != want {
			t.Errorf("LooksLikeAppPassword(%q) = %v, want %v", s, got, want)
		}
	}
}
