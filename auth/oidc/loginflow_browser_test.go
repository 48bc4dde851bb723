package oidc_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/appauth/appauth/internal/browser"
	"github.com/appauth/appauth/internal/testkit"
)

// TestBrowserSSOLoginFlow: Nextcloud Login Flow v2 on a single-sign-on
// only page (no PasswordVerifier), through the real OpenID provider in
// Chromium. A client starts a flow; its login URL offers "Sign in with
// <provider>", the provider's callback returns to the same grant page, the
// grant hands the client an app password that works over DAV. Later, an
// SSO session signed in long ago confirms through the provider
// (prompt=login) and comes back to the grant page; a confirmation that
// returns as another person is refused and grants nothing. The flow's
// login token never reaches the provider or a log.
func TestBrowserSSOLoginFlow(t *testing.T) {
	s := newSSOServer(t)
	ctx := newBrowser(t)
	start := func(ua string) (*testkit.LoginFlowClient, string) {
		t.Helper()
		fc := &testkit.LoginFlowClient{HTTP: s.srv.Client(), UserAgent: ua}
		if err := fc.Initiate(s.srv.URL + "/account/"); err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(fc.Login)
		if err != nil || !strings.HasPrefix(fc.Login, s.srv.URL+"/account/login/v2/flow/") {
			t.Fatalf("login URL %q: %v", fc.Login, err)
		}
		return fc, u.Path[strings.LastIndex(u.Path, "/")+1:]
	}
	var tokens []string

	// 1. A flow, signed in through the provider, granted.
	fc, token := start("DAVx5/4.4.2-ose (2024/10/01; dav4jvm; okhttp/4.12.0) Android/15")
	tokens = append(tokens, token)
	browser.Do(t, ctx, "open the login URL", chromedp.Navigate(fc.Login), chromedp.WaitVisible(`#sso-signin`))
	if n := browser.Get(t, ctx, "password form", chromedp.Evaluate[int](`document.querySelectorAll('input[type=password]').length`)); n != 0 {
		t.Fatal("the grant page of an SSO-only deployment shows a password field")
	}
	browser.Do(t, ctx, "sign in with the provider", chromedp.Click(`#sso-signin`))
	providerLogin(t, ctx, "alice")
	browser.Do(t, ctx, "back on the grant page", chromedp.WaitVisible(`#grant-submit`))
	if loc := location(t, ctx); loc != fc.Login {
		t.Fatalf("after the provider at %s, want the grant page %s", loc, fc.Login)
	}
	if st, _, _ := fc.Poll(); st != http.StatusNotFound {
		t.Fatalf("poll before the grant: %d", st)
	}
	browser.Do(t, ctx, "grant", chromedp.Click(`#grant-submit`), chromedp.WaitVisible(`#grant-done`))
	st, res, err := fc.Poll()
	if st != http.StatusOK || err != nil || res.LoginName != "alice" {
		t.Fatalf("poll after the grant: %d %v %+v", st, err, res)
	}
	if status := s.dav(t, res.LoginName, res.AppPassword); status != http.StatusMultiStatus && status != http.StatusOK {
		t.Fatalf("DAV with the flow's app password: %d", status)
	}

	// 2. Twenty minutes later the SSO session is not a recent sign-in: the
	// grant page asks to confirm through the provider, which asks for the
	// login again (prompt=login), and returns to the grant page.
	fc2, token2 := start("Nextcloud-android/3.30")
	tokens = append(tokens, token2)
	s.offset.Store(int64(20 * time.Minute))
	browser.Do(t, ctx, "open the second login URL", chromedp.Navigate(fc2.Login), chromedp.WaitVisible(`#sso-reauth`))
	if n := browser.Get(t, ctx, "grant button", chromedp.Evaluate[int](`document.querySelectorAll('#grant-submit').length`)); n != 0 {
		t.Fatal("an old SSO sign-in may grant without confirming")
	}
	s.offset.Store(0)
	browser.Do(t, ctx, "confirm it's you", chromedp.Click(`#sso-reauth`))
	providerLogin(t, ctx, "alice")
	browser.Do(t, ctx, "back on the grant page", chromedp.WaitVisible(`#grant-submit`))
	if loc := location(t, ctx); loc != fc2.Login {
		t.Fatalf("after confirming at %s, want the grant page", loc)
	}
	browser.Do(t, ctx, "grant", chromedp.Click(`#grant-submit`), chromedp.WaitVisible(`#grant-done`))
	if st, res, _ := fc2.Poll(); st != http.StatusOK || res.LoginName != "alice" {
		t.Fatalf("poll after the confirmed grant: %d", st)
	}

	// 3. Confirming as another person is refused; the flow grants nothing.
	fc3, token3 := start("Nextcloud-android/3.30")
	tokens = append(tokens, token3)
	s.offset.Store(int64(20 * time.Minute))
	browser.Do(t, ctx, "open the third login URL", chromedp.Navigate(fc3.Login), chromedp.WaitVisible(`#sso-reauth`))
	s.offset.Store(0)
	browser.Do(t, ctx, "confirm it's you", chromedp.Click(`#sso-reauth`))
	providerLogin(t, ctx, "bob")
	browser.Do(t, ctx, "refusal", chromedp.WaitVisible(`main`))
	if body := browser.Get(t, ctx, "re-auth as bob", chromedp.Text(`body`)); !strings.Contains(body, "another person") {
		t.Fatalf("confirmation as bob: page says %q, want a refusal", body)
	}
	if st, _, _ := fc3.Poll(); st != http.StatusNotFound {
		t.Fatalf("poll after a refused confirmation: %d, want 404", st)
	}
	bob, err := s.dir.LookupUser(t.Context(), "bob")
	if err != nil {
		t.Fatal(err)
	}
	if aps, _ := s.m.ListAppPasswords(t.Context(), bob.ID); len(aps) != 0 {
		t.Fatalf("bob got app passwords %v", aps)
	}

	// The login tokens went neither to the provider nor to a log.
	s.mu.Lock()
	sent := strings.Join(s.toProvider, "\n")
	s.mu.Unlock()
	if !strings.Contains(sent, "prompt=login") {
		t.Fatalf("no confirmation was sent to the provider:\n%s", sent)
	}
	for _, tok := range tokens {
		for what, text := range map[string]string{"redirects to the provider": sent, "provider log": s.op.Log(), "our log": s.logs.String()} {
			if strings.Contains(text, tok) {
				t.Errorf("the %s hold a flow's login token", what)
			}
		}
	}
}
