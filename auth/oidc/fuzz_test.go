package oidc_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/settings"
)

// FuzzCallback feeds the settings page's sso/callback arbitrary queries
// and cookies, with "STATE" and "BINDING" replaced by those of a sign-in
// just begun (so the fuzzer reaches the token exchange and the checks
// after it), and "CODE" by a code the provider would accept for it. Every
// answer is a page (no crash), never a 5xx while the provider is up, and
// a session cookie is set only for a sign-in with the real state, binding
// and code together.
func FuzzCallback(f *testing.F) {
	f.Add("code=CODE&state=STATE", "BINDING")
	f.Add("code=CODE&state=STATE&state=STATE", "BINDING")
	f.Add("code=CODE&state=STATE", "")
	f.Add("code=x&state=STATE", "BINDING")
	f.Add("error=access_denied&state=STATE", "BINDING")
	f.Add("code=CODE&state=STATEx", "BINDING")
	f.Add("%zz&;;state=", "\x00")
	f.Add("code="+strings.Repeat("c", 5000)+"&state=STATE", "BINDING")
	e := newEnv(f, nil)
	h, err := settings.New(e.m, nil, &settings.Options{SSO: e.c})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, rawQuery, binding string) {
		st, err := e.c.Begin(t.Context(), settings.SSORequest{ReturnPath: "security"})
		if err != nil {
			t.Fatal(err)
		}
		begun, _ := url.Parse(st.URL)
		good := e.op.authorizeT(t, st.URL, e.op.claims("alice", time.Now()))
		rawQuery = strings.NewReplacer("STATE", url.QueryEscape(begun.Query().Get("state")), "CODE", url.QueryEscape(good.Get("code"))).Replace(rawQuery)
		binding = strings.ReplaceAll(binding, "BINDING", st.Binding)
		req := httptest.NewRequest("GET", "/sso/callback", nil)
		req.URL.RawQuery = rawQuery
		req.Header.Set("Cookie", (&http.Cookie{Name: "appauth_sso", Value: sanitizeCookie(binding)}).String())
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("query %q: status %d: %s", rawQuery, w.Code, w.Body)
		}
		signedIn := false
		for _, c := range w.Result().Cookies() {
			if c.Name == "appauth_session" && c.Value != "" {
				signedIn = true
			}
		}
		q, _ := url.ParseQuery(rawQuery)
		legit := len(q["state"]) == 1 && q.Get("state") == begun.Query().Get("state") && q.Get("code") == good.Get("code") &&
			len(q["code"]) == 1 && q.Get("error") == "" && sanitizeCookie(binding) == st.Binding
		if signedIn && !legit {
			t.Fatalf("query %q with binding %q signed in", rawQuery, binding)
		}
	})
}

// FuzzBackChannelLogout posts arbitrary bodies to the settings page's
// sso/backchannel-logout (anyone may), with "TOKEN" replaced by a logout
// token the provider just signed. Every answer is 200 or 400 (no crash,
// no 5xx while the provider is up), and 200 exactly when the body's
// logout_token is that token.
func FuzzBackChannelLogout(f *testing.F) {
	f.Add("logout_token=TOKEN")
	f.Add("logout_token=TOKEN&logout_token=x")
	f.Add("logout_token=x&logout_token=TOKEN")
	f.Add("logout_token=TOKENx")
	f.Add("logout_token=eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.")
	f.Add("logout_token=a.b.c")
	f.Add("%zz&;;logout_token=")
	f.Add("logout_token=" + strings.Repeat("a", 40<<10))
	e := newEnv(f, nil)
	h, err := settings.New(e.m, nil, &settings.Options{SSO: e.c})
	if err != nil {
		f.Fatal(err)
	}
	n := 0
	f.Fuzz(func(t *testing.T, body string) {
		n++
		tok := e.op.logoutToken(e.op.logoutClaims(fmt.Sprintf("jti-fuzz-%d-%d", time.Now().UnixNano(), n), "sub-alice", ""))
		body = strings.ReplaceAll(body, "TOKEN", tok)
		req := httptest.NewRequest("POST", "/sso/backchannel-logout", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		q, err := url.ParseQuery(body) // as the handler reads the form
		legit := err == nil && q.Get("logout_token") == tok && len(body) <= 32<<10
		switch {
		case w.Code != http.StatusOK && w.Code != http.StatusBadRequest:
			t.Fatalf("body %.200q: status %d: %s", body, w.Code, w.Body)
		case (w.Code == http.StatusOK) != legit:
			t.Fatalf("body %.200q: status %d, want 200 only for the token the provider signed", body, w.Code)
		}
	})
}

// sanitizeCookie keeps what a browser could send as a cookie value.
func sanitizeCookie(s string) string {
	return strings.Map(func(r rune) rune {
		if r <= ' ' || r >= 0x7f || r == '"' || r == ';' || r == '\\' || r == ',' {
			return -1
		}
		return r
	}, s)
}

// TestCallbackPage: the callback answers a good sign-in with a session
// cookie and a redirect to the page, a refusal with its status and
// message, and an outage with 503.
func TestCallbackPage(t *testing.T) {
	e := newEnv(t, nil)
	h, err := settings.New(e.m, nil, &settings.Options{SSO: e.c})
	if err != nil {
		t.Fatal(err)
	}
	call := func(claims map[string]any) *httptest.ResponseRecorder {
		st, err := e.c.Begin(t.Context(), settings.SSORequest{ReturnPath: "security"})
		if err != nil {
			t.Fatal(err)
		}
		q := e.op.authorize(st.URL, claims)
		req := httptest.NewRequest("GET", "/sso/callback?"+q.Encode(), nil)
		req.AddCookie(&http.Cookie{Name: "appauth_sso", Value: st.Binding})
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	w := call(e.op.claims("alice", time.Now()))
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/security" {
		t.Fatalf("good sign-in: %d %s", w.Code, w.Header().Get("Location"))
	}
	var session string
	for _, c := range w.Result().Cookies() {
		if c.Name == "appauth_session" {
			session = c.Value
		}
	}
	p, err := e.m.AuthenticateSession(t.Context(), session, "192.0.2.1", "test")
	if err != nil || p.User.ID != "u-alice" || p.Federation.Subject != "sub-alice" {
		t.Fatalf("the session of the sign-in: %+v, %v", p, err)
	}
	w = call(e.op.claims("mallory", time.Now()))
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "no account of that name") {
		t.Fatalf("unknown login: %d %s", w.Code, w.Body)
	}
	e.op.mu.Lock()
	e.op.tokenStatus = http.StatusServiceUnavailable
	e.op.mu.Unlock()
	if w = call(e.op.claims("alice", time.Now())); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("provider down: %d, want 503", w.Code)
	}
}

// TestSSOOnlyPage: without a PasswordVerifier the page offers single
// sign-on only (no password form; a password POST is refused), and the
// JSON API answers an SSO session that is not a recent sign-in (an old
// auth_time) with 403 and the URL that confirms it.
func TestSSOOnlyPage(t *testing.T) {
	e := newEnv(t, nil)
	h, err := settings.New(e.m, nil, &settings.Options{SSO: e.c})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := settings.New(e.m, nil, nil); err == nil {
		t.Fatal("settings.New accepted neither a PasswordVerifier nor an SSO")
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/signin", nil))
	if body := w.Body.String(); !strings.Contains(body, `id="sso-signin"`) || strings.Contains(body, `name="password"`) {
		t.Fatalf("SSO-only sign-in page:\n%s", body)
	}
	w = httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/api/v1/session", strings.NewReader(`{"username":"alice","password":"pw-alice"}`))
	req.Header.Set("Content-Type", "application/json")
	h.ServeHTTP(w, req)
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("password sign-in with single sign-on only: %d %s, want 401", w.Code, w.Body)
	}

	_, secret, err := e.m.CreateFederatedSession(t.Context(), e.alice, auth.Federation{Issuer: e.op.srv.URL, Subject: "sub-alice"},
		time.Now().Add(-time.Hour), "192.0.2.1", "test")
	if err != nil {
		t.Fatal(err)
	}
	csrf := csrfOf(t, h, secret)
	w = httptest.NewRecorder()
	req = httptest.NewRequest("POST", "/api/v1/app-passwords", strings.NewReader(`{"name":"Phone"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF-Token", csrf)
	req.AddCookie(&http.Cookie{Name: "appauth_session", Value: secret})
	h.ServeHTTP(w, req)
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), `"reauthURL":"/sso/reauth?return=security"`) {
		t.Fatalf("create on an old SSO sign-in: %d %s, want 403 with reauthURL", w.Code, w.Body)
	}
}

// csrfOf reads the session's CSRF token from the security page.
func csrfOf(t *testing.T, h http.Handler, secret string) string {
	t.Helper()
	req := httptest.NewRequest("GET", "/security", nil)
	req.AddCookie(&http.Cookie{Name: "appauth_session", Value: secret})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	body := w.Body.String()
	_, rest, ok := strings.Cut(body, `name="csrf" value="`)
	if !ok {
		t.Fatalf("no CSRF token on the security page: %d %s", w.Code, body)
	}
	token, _, _ := strings.Cut(rest, `"`)
	return token
}
