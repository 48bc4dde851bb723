package oidc_test

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc/oidctest"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/oidc"
	"github.com/appauth/appauth/auth/settings"
)

// TestCompleteSignsIn: a good sign-in returns the directory's user, the
// provider account (iss, sub, sid), the provider's auth_time (not now) and
// the return path; the authorization request carries S256 PKCE, a nonce
// and max_age, and no prompt.
func TestCompleteSignsIn(t *testing.T) {
	e := newEnv(t, nil)
	authTime := time.Now().Add(-3 * time.Hour).Truncate(time.Second)
	u, binding := e.begin(nil)
	q, _ := url.Parse(u)
	if q.Query().Get("max_age") != "43200" || q.Query().Get("prompt") != "" || q.Query().Get("nonce") == "" {
		t.Fatalf("authorization URL %s: want max_age=43200, a nonce and no prompt", u)
	}
	id, err := e.c.Complete(t.Context(), e.op.authorize(u, e.op.claims("alice", authTime)), binding)
	if err != nil {
		t.Fatal(err)
	}
	want := auth.Federation{Issuer: e.op.srv.URL, Subject: "sub-alice", SID: "sid-alice"}
	if id.User.ID != "u-alice" || id.Federation != want || !id.AuthTime.Equal(authTime) || id.ReturnPath != "security" || id.IDToken == "" {
		t.Fatalf("identity = %+v, want alice, %+v, auth time %v", id, want, authTime)
	}
}

// refusal asserts that err is an *settings.SSOError with status and
// matching target.
func refusal(t *testing.T, err error, status int, target error) {
	t.Helper()
	var se *settings.SSOError
	if !errors.As(err, &se) || se.Status != status || !errors.Is(err, target) || se.Message == "" {
		t.Fatalf("error = %v, want an SSOError %d matching %v with a message", err, status, target)
	}
	if errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("a refusal also matches ErrUnavailable: %v", err)
	}
}

// TestCompleteRefuses: every negative case is refused with a clear
// message and the right status, and none is an outage.
func TestCompleteRefuses(t *testing.T) {
	e := newEnv(t, &oidc.Config{RequiredClaims: map[string]string{"tid": "tenant-1"}})
	now := time.Now()
	good := func(sub string) map[string]any {
		c := e.op.claims(sub, now)
		c["tid"] = "tenant-1"
		return c
	}
	with := func(sub string, k string, v any) map[string]any {
		c := good(sub)
		c[k] = v
		return c
	}
	if _, err := e.signIn(good("alice")); err != nil {
		t.Fatalf("the good sign-in the cases differ from: %v", err)
	}
	for _, tt := range []struct {
		name   string
		claims map[string]any
		status int
		target error
	}{
		{"unknown login", good("mallory"), http.StatusForbidden, oidc.ErrUnknownUser},
		{"disabled login", good("dora"), http.StatusForbidden, oidc.ErrDisabledUser},
		{"wrong nonce", with("alice", "nonce", "not-the-nonce"), http.StatusUnauthorized, oidc.ErrNonce},
		{"no nonce", with("alice", "nonce", nil), http.StatusUnauthorized, oidc.ErrNonce},
		{"other audience", with("alice", "aud", "another-client"), http.StatusUnauthorized, oidc.ErrIDToken},
		{"several audiences, no azp", with("alice", "aud", []string{fakeClientID, "another-client"}), http.StatusUnauthorized, oidc.ErrIDToken},
		{"expired", with("alice", "exp", now.Add(-time.Minute).Unix()), http.StatusUnauthorized, oidc.ErrIDToken},
		{"other issuer", with("alice", "iss", "https://evil.example"), http.StatusUnauthorized, oidc.ErrIDToken},
		{"no auth_time", with("alice", "auth_time", nil), http.StatusUnauthorized, oidc.ErrNoAuthTime},
		{"no login claim", with("alice", "preferred_username", nil), http.StatusForbidden, oidc.ErrClaim},
		{"login claim not a string", with("alice", "preferred_username", map[string]any{"x": 1}), http.StatusForbidden, oidc.ErrClaim},
		{"other tenant", with("alice", "tid", "tenant-2"), http.StatusForbidden, oidc.ErrClaim},
		{"at_hash of another access token", with("alice", "at_hash", "AAAAAAAAAAAAAAAAAAAAAA"), http.StatusUnauthorized, oidc.ErrIDToken},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.signIn(tt.claims)
			refusal(t, err, tt.status, tt.target)
		})
	}
}

// TestCompleteRefusesAlgorithms: an ID token signed with a shared key
// (HS256, keyed with the client secret) or unsigned is refused.
func TestCompleteRefusesAlgorithms(t *testing.T) {
	e := newEnv(t, nil)
	u, binding := e.begin(nil)
	q := e.op.authorize(u, e.op.claims("alice", time.Now()))
	e.op.mu.Lock()
	g := e.op.codes[q.Get("code")]
	parts := strings.Split(g.idToken, ".")
	g.idToken = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + parts[1] + "."
	e.op.codes[q.Get("code")] = g
	e.op.mu.Unlock()
	_, err := e.c.Complete(t.Context(), q, binding)
	refusal(t, err, http.StatusUnauthorized, oidc.ErrIDToken)

	if _, err := oidc.New(t.Context(), e.m, e.dir, &oidc.Config{Issuer: e.op.srv.URL, ClientID: "a", ClientSecret: "b", RedirectURL: "https://x/cb", Algorithms: []string{"HS256"}}); err == nil {
		t.Fatal("New accepted Algorithms HS256")
	}
	_ = oidctest.SignIDToken
}

// TestCompleteState: a tampered state, another browser's binding, a
// second use of the same callback and a replayed code are all refused;
// the state is used up by the first try, even a failed one.
func TestCompleteState(t *testing.T) {
	e := newEnv(t, nil)
	claims := e.op.claims("alice", time.Now())

	u, binding := e.begin(nil)
	q := e.op.authorize(u, claims)
	tampered := url.Values{"code": q["code"], "state": {q.Get("state") + "x"}}
	_, err := e.c.Complete(t.Context(), tampered, binding)
	refusal(t, err, http.StatusBadRequest, oidc.ErrState)

	u, binding = e.begin(nil)
	q = e.op.authorize(u, claims)
	_, otherBinding := e.begin(nil)
	_, err = e.c.Complete(t.Context(), q, otherBinding)
	refusal(t, err, http.StatusBadRequest, oidc.ErrState)
	_, err = e.c.Complete(t.Context(), q, binding) // the failed try used the state up
	refusal(t, err, http.StatusBadRequest, oidc.ErrState)

	u, binding = e.begin(nil)
	q = e.op.authorize(u, claims)
	if _, err := e.c.Complete(t.Context(), q, binding); err != nil {
		t.Fatal(err)
	}
	_, err = e.c.Complete(t.Context(), q, binding)
	refusal(t, err, http.StatusBadRequest, oidc.ErrState)

	// The code of a completed sign-in, with a new state: the provider
	// refuses it (and PKCE would too: another verifier).
	u, binding = e.begin(nil)
	replay := e.op.authorize(u, claims)
	replay.Set("code", q.Get("code"))
	_, err = e.c.Complete(t.Context(), replay, binding)
	refusal(t, err, http.StatusUnauthorized, oidc.ErrCode)

	for _, bad := range []url.Values{{}, {"state": {strings.Repeat("s", 129)}}, {"state": {"a", "b"}}} {
		_, err := e.c.Complete(t.Context(), bad, binding)
		refusal(t, err, http.StatusBadRequest, oidc.ErrState)
	}

	u, binding = e.begin(nil)
	st, _ := url.Parse(u)
	cancelled := url.Values{"state": {st.Query().Get("state")}, "error": {"access_denied\x00<b>"}}
	_, err = e.c.Complete(t.Context(), cancelled, binding)
	refusal(t, err, http.StatusUnauthorized, oidc.ErrProvider)
}

// TestReauth: a re-authentication asks for prompt=login&max_age=0; it is
// accepted only with a fresh auth_time and as the same person.
func TestReauth(t *testing.T) {
	e := newEnv(t, nil)
	p := &auth.Principal{User: *e.alice, CredentialID: "session-1",
		Federation: auth.Federation{Issuer: e.op.srv.URL, Subject: "sub-alice", SID: "sid-alice"}}
	u, binding := e.begin(p)
	q, _ := url.Parse(u)
	if q.Query().Get("prompt") != "login" || q.Query().Get("max_age") != "0" {
		t.Fatalf("re-authentication URL %s: want prompt=login and max_age=0", u)
	}
	id, err := e.c.Complete(t.Context(), e.op.authorize(u, e.op.claims("alice", time.Now())), binding)
	if err != nil || id.ReauthSessionID != "session-1" || id.User.ID != "u-alice" {
		t.Fatalf("re-authentication = %+v, %v; want alice re-authenticating session-1", id, err)
	}

	u, binding = e.begin(p)
	_, err = e.c.Complete(t.Context(), e.op.authorize(u, e.op.claims("alice", time.Now().Add(-time.Hour))), binding)
	refusal(t, err, http.StatusUnauthorized, oidc.ErrNotReauthed)

	u, binding = e.begin(p)
	_, err = e.c.Complete(t.Context(), e.op.authorize(u, e.op.claims("bob", time.Now())), binding)
	refusal(t, err, http.StatusForbidden, oidc.ErrOtherSubject)

	// Same subject at the provider, but the directory now maps the login
	// to another user ID (an account recreated under the same name).
	q2 := e.op.claims("bob", time.Now())
	q2["sub"] = "sub-alice"
	u, binding = e.begin(p)
	_, err = e.c.Complete(t.Context(), e.op.authorize(u, q2), binding)
	refusal(t, err, http.StatusForbidden, oidc.ErrOtherSubject)
}

// TestIDClaim: with IDClaim, the (nested) claim must equal User.ID.
func TestIDClaim(t *testing.T) {
	e := newEnv(t, &oidc.Config{IDClaim: "federated_claims.user_id"})
	c := e.op.claims("alice", time.Now())
	c["federated_claims"] = map[string]any{"user_id": "u-alice"}
	if _, err := e.signIn(c); err != nil {
		t.Fatal(err)
	}
	c["federated_claims"] = map[string]any{"user_id": "u-bob"}
	_, err := e.signIn(c)
	refusal(t, err, http.StatusForbidden, oidc.ErrIDMismatch)
}

// TestEmailLoginClaim: with LoginClaim "email", an unverified address is
// refused.
func TestEmailLoginClaim(t *testing.T) {
	e := newEnv(t, &oidc.Config{LoginClaim: "email"})
	if err := e.dir.AddUser(auth.User{ID: "u-erin", Login: "erin@example.com"}, "pw"); err != nil {
		t.Fatal(err)
	}
	c := e.op.claims("x", time.Now())
	c["email"], c["email_verified"] = "erin@example.com", true
	if id, err := e.signIn(c); err != nil || id.User.ID != "u-erin" {
		t.Fatalf("sign-in by verified e-mail = %+v, %v", id, err)
	}
	c["email_verified"] = false
	_, err := e.signIn(c)
	refusal(t, err, http.StatusForbidden, oidc.ErrClaim)
}

// TestOutages: a provider that is down, answers 5xx or hangs, and a
// directory that cannot answer, are ErrUnavailable (503), never a refusal.
func TestOutages(t *testing.T) {
	e := newEnv(t, &oidc.Config{Timeout: 200 * time.Millisecond})
	claims := e.op.claims("alice", time.Now())

	e.op.mu.Lock()
	e.op.tokenStatus = http.StatusBadGateway
	e.op.mu.Unlock()
	if _, err := e.signIn(claims); !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("token endpoint 502: %v, want ErrUnavailable", err)
	}
	e.op.mu.Lock()
	e.op.tokenStatus, e.op.hang = 0, make(chan struct{})
	e.op.mu.Unlock()
	if _, err := e.signIn(claims); !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("hung token endpoint: %v, want ErrUnavailable", err)
	}
	e.op.mu.Lock()
	close(e.op.hang)
	e.op.hang = nil
	e.op.mu.Unlock()

	u, binding := e.begin(nil)
	q := e.op.authorize(u, claims)
	e.op.srv.CloseClientConnections()
	url := e.op.srv.URL
	e.op.srv.Close()
	if _, err := e.c.Complete(t.Context(), q, binding); !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("provider down: %v, want ErrUnavailable", err)
	}
	if _, err := oidc.New(t.Context(), e.m, e.dir, &oidc.Config{Issuer: url, ClientID: "a", ClientSecret: "b", RedirectURL: "https://x/cb"}); err == nil ||
		!strings.Contains(err.Error(), "discover") {
		t.Fatalf("New with the provider down: %v, want a discovery error", err)
	}
}

// TestAuthTimeFromIssuedAt: without auth_time an ID token is refused,
// unless AuthTimeFromIssuedAt takes iat instead.
func TestAuthTimeFromIssuedAt(t *testing.T) {
	e := newEnv(t, &oidc.Config{AuthTimeFromIssuedAt: true})
	c := e.op.claims("alice", time.Now())
	iat := time.Now().Add(-time.Minute).Truncate(time.Second)
	c["auth_time"], c["iat"] = nil, iat.Unix()
	id, err := e.signIn(c)
	if err != nil || !id.AuthTime.Equal(iat) {
		t.Fatalf("sign-in without auth_time = %+v, %v; want auth time %v (iat)", id, err, iat)
	}
}

// TestTokenEndpointThrottled: the real provider behind a proxy that
// answers the token request with 429 Too Many Requests (with and without
// Retry-After) or 408 Request Timeout. That is the provider unavailable,
// not the code refused: the callback is the 503 page, not a 401 "start
// again", and the next sign-in works.
func TestTokenEndpointThrottled(t *testing.T) {
	s := newProxiedSSO(t)
	for _, f := range []fault{
		{status: http.StatusTooManyRequests, header: http.Header{"Retry-After": {"30"}}},
		{status: http.StatusTooManyRequests},
		{status: http.StatusRequestTimeout},
	} {
		b := s.newBrowser(t)
		s.proxy.fail(s.tokenPath, f)
		before := s.proxy.count(s.tokenPath)
		resp, body := s.signIn(t, b, "alice")
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "Temporarily unavailable") {
			t.Errorf("token endpoint %d %v: callback %d, want 503 Temporarily unavailable", f.status, f.header, resp.StatusCode)
		}
		if s.proxy.count(s.tokenPath) == before {
			t.Fatalf("token endpoint %d: the callback made no token request through the proxy", f.status)
		}
		s.proxy.fail(s.tokenPath, fault{})
		resp, _ = s.signIn(t, b, "alice")
		if resp.StatusCode != http.StatusSeeOther || !strings.HasSuffix(resp.Header.Get("Location"), "/account/security") {
			t.Fatalf("sign-in after the provider's %d: %d to %q, want 303 to the security page", f.status, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
}

// TestRotatedSigningKey: the ID token's keys are the logout tokens' (the
// same key set, fetched at most once a minute), and a key that the real
// provider rotates in is still learnt: a sign-in within a minute of the
// last fetch is asked to start again, without a request for the keys;
// the first one after that fetches them, once, and signs in.
func TestRotatedSigningKey(t *testing.T) {
	s := newProxiedSSO(t)
	s.signInKeys(t, "first sign-in", http.StatusSeeOther, 1)
	s.op.RotateKeys(t)
	s.signInKeys(t, "sign-in with a new key within the minute", http.StatusUnauthorized, 1)
	s.clock.Add(61 * time.Second)
	s.signInKeys(t, "sign-in with a new key after the minute", http.StatusSeeOther, 2)
	s.signInKeys(t, "next sign-in", http.StatusSeeOther, 2)
}

// TestKeyFetchFailureRetriedSoon: when the provider's keys cannot be
// fetched, sign-ins are unavailable (503), not refused; the failure is
// not repeated to the provider for every sign-in, and it is not kept for
// the whole minute of a good answer: a few seconds after the provider is
// back, sign-ins work.
func TestKeyFetchFailureRetriedSoon(t *testing.T) {
	s := newProxiedSSO(t)
	s.proxy.fail(s.jwksPath, fault{status: http.StatusBadGateway})
	s.signInKeys(t, "keys failing", http.StatusServiceUnavailable, 1)
	s.proxy.fail(s.jwksPath, fault{})
	s.clock.Add(time.Second)
	s.signInKeys(t, "a second later, provider back", http.StatusServiceUnavailable, 1)
	s.clock.Add(oidc.KeyRetryAfterFailure)
	s.signInKeys(t, "after the retry interval", http.StatusSeeOther, 2)
	s.signInKeys(t, "next sign-in", http.StatusSeeOther, 2)
}
