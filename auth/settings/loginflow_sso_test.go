package settings_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/settings"
)

// fakeSSO is a narrow stand-in for settings.SSO: Begin remembers the
// request under its binding, Complete signs in whoever the test set in as
// (the provider's answer), with the request's return path and re-auth
// session, as auth/oidc does. The real provider is in auth/oidc's
// browser tests.
type fakeSSO struct {
	mu       sync.Mutex
	n        int
	begun    map[string]settings.SSORequest // binding -> request
	urls     []string                       // every URL Begin sent the browser to
	as       *auth.User                     // who signs in at the provider
	authTime time.Time                      // the provider's auth_time
	fail     error                          // if set, Begin and Complete fail with it
}

func newFakeSSO(as *auth.User, authTime time.Time) *fakeSSO {
	return &fakeSSO{begun: map[string]settings.SSORequest{}, as: as, authTime: authTime}
}

func (f *fakeSSO) Name() string { return "Example SSO" }

func (f *fakeSSO) Begin(_ context.Context, req settings.SSORequest) (*settings.SSOStart, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	f.n++
	binding := fmt.Sprintf("binding-%d", f.n)
	f.begun[binding] = req
	u := fmt.Sprintf("https://sso.example/authorize?state=state-%d&client_id=appauth", f.n)
	if req.Reauth != nil {
		u += "&prompt=login&max_age=0"
	}
	f.urls = append(f.urls, u)
	return &settings.SSOStart{URL: u, Binding: binding}, nil
}

func (f *fakeSSO) Complete(_ context.Context, _ url.Values, binding string) (*settings.SSOIdentity, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	req, ok := f.begun[binding]
	if !ok {
		return nil, &settings.SSOError{Status: http.StatusBadRequest, Message: "expired", Err: fmt.Errorf("unknown binding")}
	}
	delete(f.begun, binding)
	id := &settings.SSOIdentity{
		User:       f.as,
		Federation: auth.Federation{Issuer: "https://sso.example", Subject: "sub-" + f.as.ID},
		AuthTime:   f.authTime, ReturnPath: req.ReturnPath,
	}
	if req.Reauth != nil {
		id.ReauthSessionID = req.Reauth.CredentialID
	}
	return id, nil
}

func (f *fakeSSO) LogoutURL(string) string                         { return "" }
func (f *fakeSSO) BackChannelLogout(context.Context, string) error { return nil }

// request returns what the sign-in of binding was begun for.
func (f *fakeSSO) request(binding string) (settings.SSORequest, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.begun[binding]
	return r, ok
}

// ssoRoundTrip follows a redirect to the provider (w) back to the
// callback, as the browser does, and returns the callback's answer and
// the request that sign-in was begun for.
func (c *client) ssoRoundTrip(sso *fakeSSO, w *httptest.ResponseRecorder) (int, string, settings.SSORequest) {
	c.e.t.Helper()
	res := w.Result()
	var binding string
	for _, ck := range res.Cookies() {
		if ck.Name == "appauth_sso" {
			binding = ck.Value
		}
	}
	loc := res.Header.Get("Location")
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "https://sso.example/") || binding == "" {
		c.e.t.Fatalf("SSO start: %d Location %q binding %q, want a redirect to the provider", res.StatusCode, loc, binding)
	}
	req, _ := sso.request(binding)
	r := c.req("GET", "sso/callback?code=c&state=s", "", "")
	r.AddCookie(&http.Cookie{Name: "appauth_sso", Value: binding})
	cw := c.send(r)
	return cw.Code, cw.Header().Get("Location"), req
}

// An SSO-only page (no PasswordVerifier) grants a flow: the grant page
// offers "Sign in with <provider>" and no password form, the sign-in
// returns to the same grant page, and the flow's token is kept out of
// what goes to the provider and out of the log.
func TestGrantPageSSOOnly(t *testing.T) {
	sso := newFakeSSO(&auth.User{ID: "u-alice", Login: "alice", DisplayName: "Alice Example"}, time.Time{})
	e := newFlowEnvSSO(t, sso, false)
	sso.authTime = e.clock.Now()
	fc, path := e.start("DAVx5/4.4.2-ose (2024/10/01; dav4jvm; okhttp/4.12.0) Android/15")
	token := path[strings.LastIndex(path, "/")+1:]
	c := e.client()

	body := c.get(path).Body.String()
	if !strings.Contains(body, `id="sso-signin"`) || !strings.Contains(body, "Sign in with Example SSO") {
		t.Fatalf("grant page without a session offers no single sign-on:\n%s", body)
	}
	if strings.Contains(body, `name="password"`) {
		t.Fatalf("grant page of an SSO-only deployment shows a password form:\n%s", body)
	}
	if !strings.Contains(body, `href="`+e.prefix+path+`?sso=signin" id="sso-signin"`) {
		t.Fatalf("Sign in with does not link to the grant page's own SSO start:\n%s", body)
	}
	status, loc, req := c.ssoRoundTrip(sso, c.get(path+"?sso=signin"))
	if req.ReturnPath != path || req.Reauth != nil {
		t.Errorf("SSO begun for %+v, want a new sign-in returning to the grant page", req)
	}
	if status != http.StatusSeeOther || loc != e.prefix+path || c.cookie == nil {
		t.Fatalf("callback: %d Location %q, want the grant page", status, loc)
	}
	for _, u := range sso.urls {
		if strings.Contains(u, token) {
			t.Errorf("the provider's URL %s carries the flow's token", u)
		}
	}

	w := c.get(path)
	if !strings.Contains(w.Body.String(), `id="grant-submit"`) {
		t.Fatalf("after the SSO sign-in no grant question:\n%s", w.Body)
	}
	c.csrf = between(w.Body.String(), `name="csrf" value="`, `"`)
	if w := c.form(path, "action", "grant", "access", "dav", "expires", "never"); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `id="grant-done"`) {
		t.Fatalf("grant: %d\n%s", w.Code, w.Body)
	}
	st, res, err := fc.Poll()
	if st != http.StatusOK || err != nil || res.LoginName != "alice" || !e.appPasswordWorks("alice", res.AppPassword) {
		t.Fatalf("poll after the SSO grant: %d %v %+v", st, err, res)
	}
	// A password sign-in posted anyway is refused: there is no verifier.
	_, path2 := e.start("DAVx5/4.4.2-ose")
	if w := e.client().form(path2, "action", "signin", "username", "alice", "password", alicePassword); w.Code == http.StatusSeeOther {
		t.Errorf("password sign-in on an SSO-only grant page: %d", w.Code)
	}
	if strings.Contains(e.logs.String(), token) {
		t.Errorf("the log holds the flow's login token:\n%s", e.logs)
	}
}

// With both a verifier and SSO the grant page offers both.
func TestGrantPageSSOAndPassword(t *testing.T) {
	sso := newFakeSSO(&auth.User{ID: "u-alice", Login: "alice"}, time.Time{})
	e := newFlowEnvSSO(t, sso, true)
	_, path := e.start("DAVx5/4.4.2-ose")
	body := e.client().get(path).Body.String()
	if !strings.Contains(body, `id="sso-signin"`) || !strings.Contains(body, `name="password"`) {
		t.Fatalf("grant page with SSO and passwords must offer both:\n%s", body)
	}
}

// An SSO session whose sign-in is not recent confirms through the
// provider (prompt=login), back on the same grant page; a confirmation
// that returns as another person is refused and grants nothing.
func TestGrantPageSSOReauth(t *testing.T) {
	alice := &auth.User{ID: "u-alice", Login: "alice", DisplayName: "Alice Example"}
	sso := newFakeSSO(alice, time.Time{})
	e := newFlowEnvSSO(t, sso, false)
	sso.authTime = e.clock.Now()
	fc, path := e.start("Nextcloud-android/3.30")
	c := e.client()
	if st, _, _ := c.ssoRoundTrip(sso, c.get(path+"?sso=signin")); st != http.StatusSeeOther {
		t.Fatalf("SSO sign-in: %d", st)
	}
	e.clock.Add(11 * time.Minute)

	w := c.get(path)
	body := w.Body.String()
	if !strings.Contains(body, `id="sso-reauth"`) || strings.Contains(body, `id="grant-submit"`) || strings.Contains(body, `name="password"`) {
		t.Fatalf("a single sign-on 11 minutes old: want only \"confirm it's you\"\n%s", body)
	}
	c.csrf = between(body, `name="csrf" value="`, `"`)
	if w := c.form(path, "action", "grant"); w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "confirm it") {
		t.Fatalf("grant without confirming: %d\n%s", w.Code, w.Body)
	}

	// Another person returns from the provider: refused.
	sso.as, sso.authTime = e.bob, e.clock.Now()
	status, _, req := c.ssoRoundTrip(sso, c.get(path+"?sso=reauth"))
	if req.Reauth == nil || req.Reauth.User.ID != alice.ID || req.ReturnPath != path {
		t.Fatalf("re-auth begun for %+v, want alice's session returning to the grant page", req)
	}
	if !strings.Contains(sso.urls[len(sso.urls)-1], "prompt=login") {
		t.Errorf("re-auth URL %s", sso.urls[len(sso.urls)-1])
	}
	if status != http.StatusForbidden {
		t.Fatalf("re-auth as bob: %d, want 403", status)
	}
	if st, _, _ := fc.Poll(); st != http.StatusNotFound {
		t.Fatalf("poll after a refused re-auth: %d", st)
	}
	if aps, _ := e.m.ListAppPasswords(t.Context(), e.bob.ID); len(aps) != 0 {
		t.Fatal("bob got an app password")
	}

	// Alice confirms: back on the grant page, granting works.
	sso.as, sso.authTime = alice, e.clock.Now()
	status, loc, _ := c.ssoRoundTrip(sso, c.get(path+"?sso=reauth"))
	if status != http.StatusSeeOther || loc != e.prefix+path {
		t.Fatalf("re-auth as alice: %d Location %q, want the grant page", status, loc)
	}
	w = c.get(path)
	c.csrf = between(w.Body.String(), `name="csrf" value="`, `"`)
	if w := c.form(path, "action", "grant"); w.Code != http.StatusOK {
		t.Fatalf("grant after confirming: %d\n%s", w.Code, w.Body)
	}
	if st, res, _ := fc.Poll(); st != http.StatusOK || res.LoginName != "alice" {
		t.Errorf("poll after the grant: %d", st)
	}
}

// The return path of an SSO start may name a grant page, nothing else
// outside the settings pages.
func TestSSOReturnPathGrantPage(t *testing.T) {
	sso := newFakeSSO(&auth.User{ID: "u-alice", Login: "alice"}, time.Now())
	e := newFlowEnvSSO(t, sso, false)
	sso.authTime = e.clock.Now()
	_, path := e.start("DAVx5/4.4.2-ose")
	for ret, want := range map[string]string{
		path:                          path,
		"login/v2/flow/../../../evil": "security",
		"login/v2/flow/a//b":          "security",
		"login/v2/flow/" + strings.Repeat("a", 200): "security",
		"login/v2/flow/":                 "security",
		"login/v2/flow/a?b":              "security",
		"//evil.example/login/v2/flow/a": "security",
	} {
		c := e.client()
		_, loc, _ := c.ssoRoundTrip(sso, c.get("sso/start?return="+url.QueryEscape(ret)))
		if loc != e.prefix+want {
			t.Errorf("return %q: Location %q, want %q", ret, loc, e.prefix+want)
		}
	}
}

// The provider down when the grant page starts or completes a sign-in: a
// 503 page, the flow kept, and the log lines about it without the token.
func TestGrantPageSSOOutage(t *testing.T) {
	sso := newFakeSSO(&auth.User{ID: "u-alice", Login: "alice"}, time.Time{})
	e := newFlowEnvSSO(t, sso, false)
	sso.authTime = e.clock.Now()
	fc, path := e.start("DAVx5/4.4.2-ose")
	token := path[strings.LastIndex(path, "/")+1:]
	c := e.client()
	sso.mu.Lock()
	sso.fail = fmt.Errorf("oidc: begin sign-in: dial tcp: connection refused: %w", auth.ErrUnavailable)
	sso.mu.Unlock()
	if w := c.get(path + "?sso=signin"); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("SSO start on the grant page with the provider down: %d, want 503", w.Code)
	}
	if !strings.Contains(e.logs.String(), "unavailable") || strings.Contains(e.logs.String(), token) {
		t.Fatalf("the outage is not logged, or logged with the token:\n%s", e.logs)
	}
	sso.mu.Lock()
	sso.fail = nil
	sso.mu.Unlock()
	if st, _, _ := c.ssoRoundTrip(sso, c.get(path+"?sso=signin")); st != http.StatusSeeOther {
		t.Fatalf("SSO sign-in after the outage: %d", st)
	}
	w := c.get(path)
	c.csrf = between(w.Body.String(), `name="csrf" value="`, `"`)
	if w := c.form(path, "action", "grant"); w.Code != http.StatusOK {
		t.Fatalf("grant after the outage: %d", w.Code)
	}
	if st, _, _ := fc.Poll(); st != http.StatusOK {
		t.Errorf("poll after the outage and the grant: %d", st)
	}
}
