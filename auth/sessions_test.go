package auth_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/backends/memory"
	"github.com/appauth/appauth/internal/testkit"
)

func TestSessions(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	s1, secret1, err := e.m.CreateSession(ctx, e.alice, "192.0.2.1", "Firefox")
	if err != nil {
		t.Fatal(err)
	}
	s2, secret2, err := e.m.CreateSession(ctx, e.alice, "192.0.2.2", "Safari")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret1, "aas-") || s1.ID == s2.ID {
		t.Fatalf("sessions %+v %+v, secret %q", s1, s2, secret1)
	}
	p, err := e.m.AuthenticateSession(ctx, secret1, "192.0.2.1", "Firefox")
	if err != nil {
		t.Fatal(err)
	}
	if p.Method != auth.MethodSession || p.CredentialID != s1.ID || p.User.ID != "u-alice" || !p.AuthTime.Equal(e.clock.Now()) {
		t.Errorf("principal %+v", p)
	}
	// A session secret is not an app password, and the other way round.
	if _, err := e.auth(t, "alice", secret1); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("session secret as app password: %v", err)
	}
	_, app := e.issue(t, e.alice, "phone")
	if _, err := e.m.AuthenticateSession(ctx, app, "", ""); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("app password as session: %v", err)
	}
	// Sessions and app passwords are listed apart.
	list, err := e.m.ListSessions(ctx, "u-alice")
	if err != nil || len(list) != 2 || list[0].ID == list[1].ID || list[0].LastUsedClient == "" {
		t.Fatalf("ListSessions = %+v, %v", list, err)
	}
	if aps, _ := e.m.ListAppPasswords(ctx, "u-alice"); len(aps) != 1 {
		t.Errorf("%d app passwords listed, want 1", len(aps))
	}

	// Recent sign-in: re-entering the password moves AuthTime.
	e.clock.Add(30 * time.Minute)
	if err := e.m.ReauthenticateSession(ctx, "u-alice", s1.ID); err != nil {
		t.Fatal(err)
	}
	if p, err := e.m.AuthenticateSession(ctx, secret1, "", ""); err != nil || !p.AuthTime.Equal(e.clock.Now()) {
		t.Errorf("after reauthentication: %+v, %v", p, err)
	}
	if err := e.m.ReauthenticateSession(ctx, "u-bob", s1.ID); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("bob reauthenticating alice's session: %v", err)
	}

	// Revoke the others, keeping this one.
	if err := e.m.RevokeSession(ctx, "u-bob", s2.ID); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("bob revoking alice's session: %v", err)
	}
	if err := e.m.RevokeAppPassword(ctx, "u-alice", s2.ID); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("a session revoked as an app password: %v", err)
	}
	if _, err := e.m.AuthenticateSession(ctx, secret2, "", ""); err != nil {
		t.Fatal(err)
	}
	n, err := e.m.RevokeOtherSessions(ctx, "u-alice", s1.ID)
	if err != nil || n != 1 {
		t.Fatalf("RevokeOtherSessions = %d, %v", n, err)
	}
	if _, err := e.m.AuthenticateSession(ctx, secret2, "", ""); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("revoked session: %v", err)
	}
	if _, err := e.m.AuthenticateSession(ctx, secret1, "", ""); err != nil {
		t.Errorf("kept session: %v", err)
	}
	if _, err := e.auth(t, "alice", app); err != nil {
		t.Errorf("revoking sessions broke an app password: %v", err)
	}
	if err := e.m.RevokeSession(ctx, "u-alice", s1.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.AuthenticateSession(ctx, secret1, "", ""); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("signed-out session: %v", err)
	}
}

func TestSessionLifetimes(t *testing.T) {
	e := newEnv(t, func(o *auth.Options) {
		o.SessionIdleTimeout = time.Hour
		o.SessionLifetime = 5 * time.Hour
		o.LastUsedInterval = time.Minute
	})
	ctx := t.Context()
	_, idle, _ := e.m.CreateSession(ctx, e.alice, "", "")
	_, busy, _ := e.m.CreateSession(ctx, e.alice, "", "")
	for range 5 { // 5 × 50 min = 250 min
		e.clock.Add(50 * time.Minute)
		if _, err := e.m.AuthenticateSession(ctx, busy, "", ""); err != nil {
			t.Fatalf("active session refused at %v: %v", e.clock.Now(), err)
		}
	}
	if _, err := e.m.AuthenticateSession(ctx, idle, "", ""); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("idle session: %v", err)
	}
	e.clock.Add(time.Hour) // 310 min > 5 h
	if _, err := e.m.AuthenticateSession(ctx, busy, "", ""); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("session past its absolute lifetime: %v", err)
	}
}

func TestSessionOwnerDisabled(t *testing.T) {
	e := newEnv(t, nil)
	_, secret, _ := e.m.CreateSession(t.Context(), e.alice, "", "")
	e.dir.SetDisabled("alice", true)
	e.clock.Add(5 * time.Minute)
	if _, err := e.m.AuthenticateSession(t.Context(), secret, "", ""); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("disabled owner's session: %v", err)
	}
	if _, _, err := e.m.CreateSession(t.Context(), &auth.User{ID: "x", Login: "x", Disabled: true}, "", ""); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("session for a disabled user: %v", err)
	}
}

func TestExpiredCredentialsArePurged(t *testing.T) {
	e := newEnv(t, func(o *auth.Options) { o.SessionLifetime = time.Hour })
	ctx := t.Context()
	_, _, _ = e.m.CreateSession(ctx, e.alice, "", "")
	_, _, err := e.m.IssueAppPassword(ctx, e.alice, auth.IssueRequest{Name: "week", ExpiresAt: e.clock.Now().Add(7 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	e.issue(t, e.alice, "forever")
	e.clock.Add(2 * time.Hour)
	if n, err := e.m.PurgeExpired(ctx); err != nil || n != 1 {
		t.Errorf("PurgeExpired = %d, %v; want the one expired session", n, err)
	}
	if list, _ := e.m.ListSessions(ctx, "u-alice"); len(list) != 0 {
		t.Errorf("%d sessions left", len(list))
	}
	if list, _ := e.m.ListAppPasswords(ctx, "u-alice"); len(list) != 2 {
		t.Errorf("%d app passwords left, want 2", len(list))
	}
}

// TestSessionLimit: 151 sign-ins leave MaxSessions (default 50) sessions;
// those signed out are the least recently used, so a session in use
// survives however old it is, and the newest sign-in always works.
func TestSessionLimit(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	var first *auth.Session
	var firstSecret string
	var newest []string
	for i := range 151 {
		e.clock.Add(2 * time.Minute)
		s, secret, err := e.m.CreateSession(ctx, e.alice, "192.0.2.1", "Firefox")
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first, firstSecret = s, secret
		}
		if i%20 == 0 { // the first session stays in use
			if _, err := e.m.AuthenticateSession(ctx, firstSecret, "192.0.2.1", "Firefox"); err != nil {
				t.Fatalf("session in use, signed out: %v", err)
			}
		}
		if i >= 151-49 {
			newest = append(newest, s.ID)
		}
	}
	sessions, err := e.m.ListSessions(ctx, e.alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(sessions) != 50 {
		t.Fatalf("%d sessions after 151 sign-ins, want 50", len(sessions))
	}
	kept := map[string]bool{}
	for _, s := range sessions {
		kept[s.ID] = true
	}
	for _, id := range append(newest, first.ID) {
		if !kept[id] {
			t.Errorf("session %s signed out; want the least recently used ones signed out", id)
		}
	}
	if _, err := e.m.AuthenticateSession(ctx, firstSecret, "192.0.2.1", "Firefox"); err != nil {
		t.Errorf("the session in use after the limit: %v", err)
	}
}

// TestFederatedSessions: a session signed in through a provider keeps the
// provider's auth_time (not now; never later than now) and its account;
// RevokeFederatedSessions ends exactly those of one sid or sub, with their
// cache entries, and leaves app passwords and password sessions alone; a
// store without the capability says so.
func TestFederatedSessions(t *testing.T) {
	clock := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	dir := memory.NewDirectory()
	alice := &auth.User{ID: "u-alice", Login: "alice"}
	if err := dir.AddUser(*alice, "pw"); err != nil {
		t.Fatal(err)
	}
	m := testkit.NewManager(t, memory.NewStore(), dir, &auth.Options{Now: func() time.Time { return clock }})
	ctx := t.Context()
	fed := func(sid string) auth.Federation {
		return auth.Federation{Issuer: "https://idp.example", Subject: "sub-alice", SID: sid}
	}
	old := clock.Add(-3 * time.Hour)
	s1, sec1, err := m.CreateFederatedSession(ctx, alice, fed("sid-1"), old, "192.0.2.1", "Firefox")
	if err != nil {
		t.Fatal(err)
	}
	_, sec2, err := m.CreateFederatedSession(ctx, alice, fed("sid-2"), clock.Add(time.Hour), "192.0.2.1", "Firefox")
	if err != nil {
		t.Fatal(err)
	}
	_, secPw, err := m.CreateSession(ctx, alice, "192.0.2.1", "Firefox")
	if err != nil {
		t.Fatal(err)
	}
	_, app, err := m.IssueAppPassword(ctx, alice, auth.IssueRequest{Name: "Phone"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := m.AuthenticateSession(ctx, sec1, "", "")
	if err != nil || !p.AuthTime.Equal(old) || p.Federation != fed("sid-1") || s1.Federation != fed("sid-1") {
		t.Fatalf("federated session = %+v, %v; want auth time %v and %+v", p, err, old, fed("sid-1"))
	}
	if p, _ := m.AuthenticateSession(ctx, sec2, "", ""); p == nil || !p.AuthTime.Equal(clock) {
		t.Fatalf("an auth_time in the future: %+v, want now", p)
	}
	for _, bad := range []auth.Federation{{}, {Issuer: "https://idp.example"}, {Subject: "s"}} {
		if _, _, err := m.CreateFederatedSession(ctx, alice, bad, old, "", ""); !errors.Is(err, auth.ErrInvalidInput) {
			t.Errorf("CreateFederatedSession(%+v): %v, want ErrInvalidInput", bad, err)
		}
		if bad.Subject == "" {
			if _, err := m.RevokeFederatedSessions(ctx, bad); !errors.Is(err, auth.ErrInvalidInput) {
				t.Errorf("RevokeFederatedSessions(%+v): %v, want ErrInvalidInput (it would match everyone)", bad, err)
			}
		}
	}
	if n, err := m.RevokeFederatedSessions(ctx, auth.Federation{Issuer: "https://idp.example", SID: "sid-1"}); err != nil || n != 1 {
		t.Fatalf("revoke sid-1: %d, %v; want 1", n, err)
	}
	if _, err := m.AuthenticateSession(ctx, sec1, "", ""); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Fatalf("the revoked session (cached before) still works: %v", err)
	}
	if _, err := m.AuthenticateSession(ctx, sec2, "", ""); err != nil {
		t.Fatalf("the session of another sid ended: %v", err)
	}
	if n, err := m.RevokeFederatedSessions(ctx, auth.Federation{Issuer: "https://idp.example", Subject: "sub-alice"}); err != nil || n != 1 {
		t.Fatalf("revoke sub-alice: %d, %v; want 1", n, err)
	}
	if _, err := m.AuthenticateSession(ctx, secPw, "", ""); err != nil {
		t.Fatalf("the password session ended by a back-channel logout: %v", err)
	}
	if _, err := m.Authenticate(ctx, auth.Attempt{Username: "alice", Password: app}); err != nil {
		t.Fatalf("the app password ended by a back-channel logout: %v", err)
	}

	plain := newEnv(t, nil) // testkit.Store: no FederatedSessionFinder
	if _, err := plain.m.RevokeFederatedSessions(ctx, fed("sid-1")); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("a store without FederatedSessionFinder: %v, want errors.ErrUnsupported", err)
	}
}
