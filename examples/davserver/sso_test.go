package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/appauth/appauth/internal/browser"
	"github.com/appauth/appauth/internal/testenv"
	"github.com/appauth/appauth/internal/testkit"
)

// TestSSOConfig: the -oidc-* flags need each other, and a provider that
// cannot be discovered at start stops the start with one clear line.
func TestSSOConfig(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-oidc-client-id", "x"}, "-oidc-client-id needs -oidc-issuer"},
		{[]string{"-oidc-name", "Corp"}, "-oidc-name needs -oidc-issuer"},
		{[]string{"-oidc-only"}, "-oidc-only needs -oidc-issuer"},
		{[]string{"-oidc-issuer", dead}, "-oidc-issuer needs -oidc-client-id and -oidc-client-secret-file"},
		{[]string{"-oidc-issuer", dead, "-oidc-client-id", "x", "-oidc-client-secret-file", secret, "-data", filepath.Join(dir, "d"), "-addr", "127.0.0.1:0"},
			"-oidc-issuer " + dead + ": oidc: discover the provider"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(tt.args, nil, &stdout, &stderr, noEnv)
		if line := lastLine(stderr.String()); code == 0 || !strings.Contains(line, tt.want) {
			t.Errorf("%v: exit %d, %q; want %q", tt.args, code, line, tt.want)
		}
	}
	if err := checkEnvNames([]string{"APPAUTH_OIDC_ISSUER=x", "APPAUTH_OIDC_CLIENT_SECRET_FILE=y", "APPAUTH_OIDC_LOGIN_CLAIM=email", "APPAUTH_OIDC_NAME=z", "APPAUTH_OIDC_CLIENT_ID=c", "APPAUTH_OIDC_ONLY=1"}); err != nil {
		t.Errorf("the APPAUTH_OIDC_* variables: %v", err)
	}
}

// startSSO starts a real OpenID provider that knows this server's
// redirect and back-channel logout URIs, then the built example server on
// that address with single sign-on configured through APPAUTH_OIDC_* (and
// env). It returns the server, the provider and the server's base URL.
func startSSO(t *testing.T, env ...string) (*serverProcess, *testenv.OIDCProvider, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // the server listens there next; the provider must know it first
	base := "http://" + addr + "/"
	op := testenv.OIDC(t, testenv.OIDCClient{
		ID: "davserver", Secret: "client-secret-for-tests-0123456789",
		RedirectURIs: []string{base + "sso/callback"}, BackchannelLogoutURI: base + "sso/backchannel-logout",
	})
	dir := t.TempDir()
	secret := filepath.Join(dir, "oidc-secret")
	if err := os.WriteFile(secret, []byte("client-secret-for-tests-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startServerWith(t, buildServer(t), dir, nil, append([]string{
		"APPAUTH_ADDR=" + addr, "APPAUTH_OIDC_ISSUER=" + op.Issuer, "APPAUTH_OIDC_CLIENT_ID=davserver",
		"APPAUTH_OIDC_CLIENT_SECRET_FILE=" + secret, "APPAUTH_OIDC_NAME=Example SSO",
	}, env...))
	return srv, op, base
}

// TestSSODeployment: the built server, configured through APPAUTH_OIDC_*
// against a real provider, prints the URIs to register, offers "Sign in
// with" and sends the browser to the provider; when the provider is gone,
// the callback is 503 and the server keeps serving.
func TestSSODeployment(t *testing.T) {
	srv, op, base := startSSO(t)
	for _, want := range []string{"redirect URI:               " + base + "sso/callback", "back-channel logout URI:    " + base + "sso/backchannel-logout"} {
		if !strings.Contains(srv.banner, want) {
			t.Fatalf("banner lacks %q:\n%s", want, srv.banner)
		}
	}
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Get(base + "signin")
	if err != nil {
		t.Fatal(err)
	}
	var page bytes.Buffer
	page.ReadFrom(resp.Body)
	resp.Body.Close()
	if !strings.Contains(page.String(), "Sign in with Example SSO") || !strings.Contains(page.String(), `name="password"`) {
		t.Fatalf("sign-in page without the SSO button and the password form:\n%s", page.String())
	}
	resp, err = hc.Get(base + "sso/start")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	to, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(to.String(), op.Issuer) || to.Query().Get("client_id") != "davserver" ||
		to.Query().Get("redirect_uri") != base+"sso/callback" {
		t.Fatalf("sso/start: %d to %s", resp.StatusCode, to)
	}

	op.Stop(t)
	resp, err = hc.Get(base + "sso/callback?" + url.Values{"state": {to.Query().Get("state")}, "code": {"some-code"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("callback with the provider down: %d, want 503", resp.StatusCode)
	}
	if resp, err = hc.Get(base + "signin"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the sign-in page after the provider went away: %v %v", resp, err)
	}
	resp.Body.Close()
	srv.stop(t)
}

// TestSSOOnly: with -oidc-only the page offers the provider alone: no
// password form, and the demo user's correct account password signs
// nobody in, on the page or through the JSON API.
func TestSSOOnly(t *testing.T) {
	srv, _, base := startSSO(t, "APPAUTH_OIDC_ONLY=1")
	user, password := bannerValue(srv.banner, "username"), bannerValue(srv.banner, "password")
	if user == "" || password == "" {
		t.Fatalf("no demo user in the banner:\n%s", srv.banner)
	}
	resp, err := http.Get(base + "signin")
	if err != nil {
		t.Fatal(err)
	}
	var page bytes.Buffer
	page.ReadFrom(resp.Body)
	resp.Body.Close()
	if !strings.Contains(page.String(), "Sign in with Example SSO") || strings.Contains(page.String(), `name="password"`) {
		t.Fatalf("-oidc-only sign-in page: want the SSO button and no password form:\n%s", page.String())
	}
	form := url.Values{"username": {user}, "password": {password}}
	req, _ := http.NewRequest("POST", base+"signin", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", strings.TrimSuffix(base, "/"))
	api, _ := http.NewRequest("POST", base+"api/v1/session", strings.NewReader(`{"username":"`+user+`","password":"`+password+`"}`))
	api.Header.Set("Content-Type", "application/json")
	api.Header.Set("Origin", strings.TrimSuffix(base, "/"))
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, r := range []*http.Request{req, api} {
		resp, err := noRedirect.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode < 400 || len(resp.Cookies()) > 0 {
			t.Errorf("%s %s with the account password: %d, cookies %v; want refused, no session", r.Method, r.URL.Path, resp.StatusCode, resp.Cookies())
		}
	}
	srv.stop(t)
}

// TestSSOLoginFlow: DAVx⁵'s Login Flow v2 against the example server with
// single sign-on, through the real OpenID provider in Chromium: the grant
// page's "Sign in with Example SSO" goes to the provider and back to the
// same grant page, the grant hands DAVx⁵ an app password, and DAVx⁵'s
// discovery at /remote.php/dav works with it. The flow's login token is
// in none of the server's log lines (at debug, one per request).
func TestSSOLoginFlow(t *testing.T) {
	srv, _, base := startSSO(t, "APPAUTH_LOG_LEVEL=debug")
	// The provider's pages link web fonts: nothing but loopback resolves.
	tab := browser.New(t, chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"))
	user := bannerValue(srv.banner, "username")

	davx5 := &testkit.LoginFlowClient{UserAgent: uaDAVx5}
	if err := davx5.Initiate(strings.TrimSuffix(base, "/")); err != nil {
		t.Fatal(err)
	}
	token := davx5.Login[strings.LastIndex(davx5.Login, "/")+1:]
	// A bound on the step, so that a failure leaves time to show the page;
	// not a timing assertion.
	step, cancel := context.WithTimeout(tab, 30*time.Second)
	defer cancel()
	err := chromedp.Do(step,
		chromedp.Navigate(davx5.Login),
		chromedp.Click(chromedp.ID("sso-signin")),
		chromedp.WaitVisible(`input[name="login"]`),
		chromedp.SetValue(`input[name="login"]`, user),
		chromedp.SetValue(`input[name="password"]`, "any password"),
		chromedp.Click(`button[type="submit"]`),
		chromedp.WaitVisible(chromedp.ID("grant-submit")),
	)
	if err != nil {
		body, _ := chromedp.Run(tab, chromedp.Text(`body`))
		t.Fatalf("browser: sign in through the provider: %v\npage: %.500s\nstderr:\n%s", err, body, srv.stderr)
	}
	if loc, _ := chromedp.Run(tab, chromedp.Location()); loc != davx5.Login {
		t.Fatalf("after the provider at %s, want the grant page %s", loc, davx5.Login)
	}
	if err := chromedp.Do(tab, chromedp.Click(chromedp.ID("access-dav")), chromedp.Click(chromedp.ID("grant-submit")),
		chromedp.WaitVisible(chromedp.ID("grant-done"))); err != nil {
		t.Fatalf("browser: grant: %v", err)
	}
	status, got, err := davx5.Poll()
	if status != http.StatusOK || err != nil || got.LoginName != user {
		t.Fatalf("DAVx⁵'s poll after the SSO grant: %d %v %+v", status, err, got)
	}
	st, body := dav(t, "PROPFIND", got.Server+"/remote.php/dav", got.LoginName, got.AppPassword, "0", propfindPrincipal)
	if st != http.StatusMultiStatus || !strings.Contains(body, "/remote.php/dav/principals/"+user+"/") {
		t.Fatalf("PROPFIND /remote.php/dav with the flow's password: %d %s", st, body)
	}
	srv.stop(t)
	if !strings.Contains(srv.stderr.String(), "/login/v2/flow/…") {
		t.Fatalf("the grant page's requests are not in the debug log:\n%s", lastLines(srv.stderr.String(), 20))
	}
	if strings.Contains(srv.stderr.String(), token) {
		t.Errorf("the server's log holds the flow's login token")
	}
}
