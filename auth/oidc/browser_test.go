package oidc_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/httpauth"
	"github.com/appauth/appauth/auth/loginflow"
	"github.com/appauth/appauth/auth/oidc"
	"github.com/appauth/appauth/auth/settings"
	"github.com/appauth/appauth/backends/ldap"
	"github.com/appauth/appauth/backends/memory"
	"github.com/appauth/appauth/internal/browser"
	"github.com/appauth/appauth/internal/testenv"
	"github.com/appauth/appauth/internal/testkit"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// ssoServer is the whole stack of the seed's story with single sign-on: a
// real OpenID provider (oidc-provider), the settings page at /account/
// signing people in through it as the users of a real OpenLDAP, and a DAV
// stand-in at /dav/ behind the Basic-auth middleware.
type ssoServer struct {
	srv       *httptest.Server
	op        *testenv.OIDCProvider
	m         *auth.Manager
	dir       *ldap.Directory
	c         *oidc.Client
	offset    atomic.Int64    // added to the settings page's clock
	callbacks chan string     // every callback URL, as the browser sent it
	events    chan auth.Event // revocations by back-channel logout
	flows     *loginflow.Flows
	logs      *testkit.Buffer // what the page, the flows and the SSO logged

	mu         sync.Mutex
	toProvider []string // every redirect of the page to the provider
}

func newSSOServer(t *testing.T) *ssoServer {
	t.Helper()
	s := &ssoServer{callbacks: make(chan string, 16), events: make(chan auth.Event, 16), logs: &testkit.Buffer{}}
	logger := slog.New(slog.NewTextHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dirSrv := testenv.LDAP(t)
	cfg := ldap.OpenLDAP([]string{dirSrv.URL}, dirSrv.BaseDN)
	cfg.BindDN, cfg.BindPassword, cfg.CAFile = dirSrv.BindDN, dirSrv.BindPassword, dirSrv.CAFile
	dir, err := ldap.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dir.Close() })
	s.dir = dir

	// The page's address must be known to register it at the provider.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	s.op = testenv.OIDC(t, testenv.OIDCClient{
		ID: "appauth", Secret: "client-secret-for-tests-0123456789",
		RedirectURIs:                     []string{base + "/account/sso/callback"},
		PostLogoutRedirectURIs:           []string{base + "/account/signin?done=signed-out"},
		BackchannelLogoutURI:             base + "/account/sso/backchannel-logout",
		BackchannelLogoutSessionRequired: true,
	})
	s.m = testkit.NewManager(t, memory.NewStore(), dir, &auth.Options{OnEvent: func(e auth.Event) {
		if e.Type == auth.EventRevoked && e.Reason == "backchannel_logout" {
			s.events <- e
		}
	}})
	s.c, err = oidc.New(t.Context(), s.m, dir, &oidc.Config{
		Issuer: s.op.Issuer, ClientID: "appauth", ClientSecret: "client-secret-for-tests-0123456789",
		RedirectURL: base + "/account/sso/callback", PostLogoutRedirectURL: base + "/account/signin?done=signed-out",
		Name: "Example SSO", Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	now := func() time.Time { return time.Now().Add(time.Duration(s.offset.Load())) }
	s.flows, err = loginflow.New(s.m, &loginflow.Options{Key: []byte("login-flow-key-for-tests-0123456789"), Prefix: "/account/", Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.flows.Close() })
	// Single sign-on only: no PasswordVerifier.
	h, err := settings.New(s.m, nil, &settings.Options{Prefix: "/account/", SSO: s.c, Now: now, LoginFlows: s.flows, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	mw, err := httpauth.New(s.m, nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/account/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/account/sso/callback" {
			select {
			case s.callbacks <- r.URL.String():
			default:
			}
		}
		h.ServeHTTP(w, r)
		if loc := w.Header().Get("Location"); strings.HasPrefix(loc, s.op.Issuer) {
			s.mu.Lock()
			s.toProvider = append(s.toProvider, loc)
			s.mu.Unlock()
		}
	}))
	mux.Handle("/account/index.php/", s.flows)
	mux.Handle("/account/login/v2/poll", s.flows)
	mux.Handle("/dav/", mw.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := httpauth.PrincipalFromContext(r.Context())
		fmt.Fprintf(w, "hello %s via %s", p.User.Login, p.Method)
	})))
	s.srv = &httptest.Server{Listener: ln, Config: &http.Server{Handler: mux}}
	s.srv.Start()
	t.Cleanup(s.srv.Close)
	return s
}

// dav makes a Basic-auth PROPFIND and returns the status.
func (s *ssoServer) dav(t *testing.T, user, password string) int {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "PROPFIND", s.srv.URL+"/dav/calendars/", nil)
	req.SetBasicAuth(user, password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// lastCallback returns the newest callback URL the browser sent.
func (s *ssoServer) lastCallback(t *testing.T) string {
	t.Helper()
	var last string
	for {
		select {
		case u := <-s.callbacks:
			last = u
		default:
			if last == "" {
				t.Fatal("no callback was sent")
			}
			return last
		}
	}
}

// newBrowser starts headless Chromium in which host names other than
// 127.0.0.1 do not resolve (the provider's pages link web fonts).
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	return browser.New(t, chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"))
}

// providerLogin fills in the provider's login form as login.
func providerLogin(t *testing.T, ctx context.Context, login string) {
	t.Helper()
	browser.Do(t, ctx, "provider login form as "+login,
		chromedp.WaitVisible(`input[name="login"]`),
		chromedp.SetValue(`input[name="login"]`, login),
		chromedp.SetValue(`input[name="password"]`, "any password"),
		chromedp.Click(`button[type="submit"]`),
	)
}

// waitLocation waits until the browser is at a URL starting with prefix
// (a selector present on both pages would match the old one).
func waitLocation(t *testing.T, ctx context.Context, prefix string) {
	t.Helper()
	for {
		loc, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil {
			t.Fatalf("browser: wait for %s: %v", prefix, err)
		}
		if strings.HasPrefix(loc, prefix) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("browser: at %s, never reached %s", loc, prefix)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitBackChannel waits for a back-channel logout that revokes a session of login.
func waitBackChannel(t *testing.T, ctx context.Context, s *ssoServer, login string) {
	t.Helper()
	select {
	case e := <-s.events:
		if e.Login != login {
			t.Fatalf("back-channel logout revoked %+v, want a session of %s", e, login)
		}
	case <-ctx.Done():
		t.Fatalf("no back-channel logout arrived; provider log:\n%s", s.op.Log())
	}
}

func location(t *testing.T, ctx context.Context) string {
	t.Helper()
	return browser.Get(t, ctx, "location", chromedp.Location())
}

// TestBrowserSSOUserStory: the seed's story through a real OpenID
// provider in Chromium, with the identity from a real OpenLDAP: sign in
// with the provider, create an app password, use it over DAV; a silent
// single sign-on with an old auth_time is not a recent sign-in; "confirm
// it's you" goes through prompt=login and refuses another person; a
// back-channel logout from the provider signs the browser out while the
// app password keeps working; "Sign out" ends the provider's session
// too. And the directory decides: a login it does not know, or a
// disabled one, is refused with a clear page; a callback replayed is
// refused; a code replayed at the real provider is refused.
func TestBrowserSSOUserStory(t *testing.T) {
	s := newSSOServer(t)
	ctx := newBrowser(t)
	signin := s.srv.URL + "/account/signin"

	// A login the directory does not know, then a disabled one: refused,
	// never provisioned. The provider's session is ended between them.
	for _, tt := range []struct{ login, text string }{
		{"mallory", "no account of that name"},
		{"dave", "is disabled"},
	} {
		browser.Do(t, ctx, "open the sign-in page", chromedp.Navigate(signin), chromedp.Click(`#sso-signin`))
		providerLogin(t, ctx, tt.login)
		browser.Do(t, ctx, "wait for the refusal", chromedp.WaitVisible(`main`))
		body := browser.Get(t, ctx, "refusal page", chromedp.Text(`body`))
		if !strings.Contains(body, "Sign-in refused") || !strings.Contains(body, tt.text) {
			t.Fatalf("sign-in as %s: page says %q, want a refusal saying %q", tt.login, body, tt.text)
		}
		browser.Do(t, ctx, "end the provider session", chromedp.Navigate(s.op.Issuer+"/session/end"),
			chromedp.Click(`button[name="logout"][value="yes"]`))
		waitLocation(t, ctx, s.op.Issuer+"/session/end/success")
	}

	// 1. Sign in through the provider, as alice.
	browser.Do(t, ctx, "sign in", chromedp.Navigate(signin), chromedp.Click(`#sso-signin`))
	providerLogin(t, ctx, "alice")
	browser.Do(t, ctx, "security page", chromedp.WaitVisible(`#create-form`))
	if loc := location(t, ctx); loc != s.srv.URL+"/account/security" {
		t.Fatalf("after sign-in at %s, want the security page", loc)
	}
	if n := browser.Get(t, ctx, "password form", chromedp.Evaluate[int](`document.querySelectorAll('#username').length`)); n != 0 {
		t.Fatal("the security page (or sign-in) showed a password field without a PasswordVerifier")
	}

	// A replay of the callback that just signed alice in is refused.
	cb := s.lastCallback(t)
	browser.Do(t, ctx, "replay the callback", chromedp.Navigate(s.srv.URL+cb), chromedp.WaitVisible(`main`))
	if body := browser.Get(t, ctx, "replayed callback", chromedp.Text(`body`)); !strings.Contains(body, "expired, was already used") {
		t.Fatalf("replayed callback: page says %q, want a refusal", body)
	}
	// Its code, with a new state and binding: the real provider refuses it.
	cbURL, _ := url.Parse(cb)
	st, err := s.c.Begin(t.Context(), settings.SSORequest{})
	if err != nil {
		t.Fatal(err)
	}
	begun, _ := url.Parse(st.URL)
	_, err = s.c.Complete(t.Context(), url.Values{"code": {cbURL.Query().Get("code")}, "state": {begun.Query().Get("state")}}, st.Binding)
	if !strings.Contains(fmt.Sprint(err), "code was refused") {
		t.Fatalf("replayed code at the provider: %v, want it refused", err)
	}

	// 2-4. Create an app password; use it over DAV.
	browser.Do(t, ctx, "create an app password", chromedp.Navigate(s.srv.URL+"/account/security"),
		chromedp.SetValue(`#app-name`, "My iPhone"), chromedp.Click(`#create-submit`), chromedp.WaitVisible(`#created-password`))
	secret := browser.Get(t, ctx, "read the new password", chromedp.Text(`#created-password`))
	login := browser.Get(t, ctx, "read the username", chromedp.Text(`#created-login`))
	if status := s.dav(t, login, secret); status != http.StatusMultiStatus && status != http.StatusOK {
		t.Fatalf("DAV with the new app password: %d", status)
	}

	// A silent single sign-on twenty minutes later: the provider does not
	// ask for the password, its auth_time is old, so the new session is
	// not a recent sign-in and creating asks to confirm.
	s.offset.Store(int64(20 * time.Minute))
	browser.Do(t, ctx, "silent single sign-on", chromedp.Navigate(s.srv.URL+"/account/sso/start"), chromedp.WaitVisible(`#create-form`))
	if loc := location(t, ctx); loc != s.srv.URL+"/account/security" {
		t.Fatalf("silent sign-on ended at %s", loc)
	}
	browser.Do(t, ctx, "confirm it's you is offered", chromedp.WaitVisible(`#sso-reauth`))
	browser.Do(t, ctx, "create without confirming", chromedp.SetValue(`#app-name`, "Tablet"), chromedp.Click(`#create-submit`), chromedp.WaitVisible(`#form-error`))
	if n := browser.Get(t, ctx, "no secret", chromedp.Evaluate[int](`document.querySelectorAll('#created-password').length`)); n != 0 {
		t.Fatal("an app password was created on a silent sign-on with an old auth_time")
	}

	// Confirm as alice: prompt=login shows the login form again; the new
	// session's auth_time is fresh (the page's clock agrees with the
	// provider's again), so creating works.
	s.offset.Store(0)
	browser.Do(t, ctx, "confirm it's you", chromedp.Click(`#sso-reauth`))
	providerLogin(t, ctx, "alice")
	browser.Do(t, ctx, "create after confirming", chromedp.WaitVisible(`#create-form`),
		chromedp.SetValue(`#app-name`, "Tablet"), chromedp.Click(`#create-submit`), chromedp.WaitVisible(`#created-password`))

	// Confirm as another person: refused. The provider, whose session
	// is now bob's, signs alice's session here out by back-channel logout.
	s.offset.Store(int64(20 * time.Minute))
	browser.Do(t, ctx, "not recent again", chromedp.Navigate(s.srv.URL+"/account/security"), chromedp.WaitVisible(`#sso-reauth`))
	s.offset.Store(0)
	browser.Do(t, ctx, "confirm it's you", chromedp.Click(`#sso-reauth`))
	providerLogin(t, ctx, "bob")
	browser.Do(t, ctx, "refusal", chromedp.WaitVisible(`main`))
	if body := browser.Get(t, ctx, "re-auth as bob", chromedp.Text(`body`)); !strings.Contains(body, "another person") {
		t.Fatalf("re-authentication as bob: page says %q, want a refusal", body)
	}
	waitBackChannel(t, ctx, s, "alice")
	browser.Do(t, ctx, "signed out", chromedp.Navigate(s.srv.URL+"/account/security"), chromedp.WaitVisible(`#sso-signin`))
	browser.Do(t, ctx, "end bob's provider session", chromedp.Navigate(s.op.Issuer+"/session/end"),
		chromedp.Click(`button[name="logout"][value="yes"]`))
	waitLocation(t, ctx, s.op.Issuer+"/session/end/success")
	browser.Do(t, ctx, "sign in as alice", chromedp.Navigate(signin), chromedp.Click(`#sso-signin`))
	providerLogin(t, ctx, "alice")
	browser.Do(t, ctx, "signed in", chromedp.WaitVisible(`#create-form`))

	// Back-channel logout: the person signs out at the provider (another
	// application's logout would do the same); the provider posts a logout
	// token; the browser session here ends, the app password keeps working.
	browser.Do(t, ctx, "sign out at the provider", chromedp.Navigate(s.op.Issuer+"/session/end"),
		chromedp.Click(`button[name="logout"][value="yes"]`))
	// The provider's own page first: a navigation started while its
	// logout still loads is aborted (net::ERR_ABORTED).
	waitLocation(t, ctx, s.op.Issuer+"/session/end/success")
	waitBackChannel(t, ctx, s, "alice")
	browser.Do(t, ctx, "the page after back-channel logout", chromedp.Navigate(s.srv.URL+"/account/security"), chromedp.WaitVisible(`#sso-signin`))
	if status := s.dav(t, login, secret); status != http.StatusMultiStatus && status != http.StatusOK {
		t.Fatalf("DAV after back-channel logout: %d, want the app password to keep working", status)
	}

	// RP-initiated logout: sign in again (the provider asks, its session
	// is gone), then "Sign out" ends ours and the provider's.
	browser.Do(t, ctx, "sign in again", chromedp.Click(`#sso-signin`))
	providerLogin(t, ctx, "alice")
	browser.Do(t, ctx, "signed in", chromedp.WaitVisible(`#create-form`),
		chromedp.Click(`form[action="/account/signout"] button`),
		chromedp.WaitVisible(`button[name="logout"][value="yes"]`))
	if loc := location(t, ctx); !strings.HasPrefix(loc, s.op.Issuer+"/session/end") {
		t.Fatalf("after Sign out at %s, want the provider's logout", loc)
	}
	browser.Do(t, ctx, "confirm at the provider", chromedp.Click(`button[name="logout"][value="yes"]`), chromedp.WaitVisible(`#sso-signin`))
	if loc := location(t, ctx); loc != signin+"?done=signed-out" {
		t.Fatalf("after the provider's logout at %s, want our sign-in page", loc)
	}
	alice, err := s.dir.LookupUser(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if sessions, err := s.m.ListSessions(t.Context(), alice.ID); err != nil || len(sessions) != 0 {
		t.Fatalf("after Sign out alice has sessions %v (%v)", sessions, err)
	}
	// The provider's session is gone too: signing in asks for the login.
	browser.Do(t, ctx, "sign in once more", chromedp.Click(`#sso-signin`), chromedp.WaitVisible(`input[name="login"]`))
}
