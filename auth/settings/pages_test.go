package settings_test

import (
	"html"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/settings"
	"github.com/appauth/appauth/internal/testkit"
)

var (
	csrfField   = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	newPassword = regexp.MustCompile(`<code id="created-password" class="password">([^<]+)</code>`)
	createdUser = regexp.MustCompile(`<code id="created-login">([^<]+)</code>`)
	scriptTag   = regexp.MustCompile(`(?s)<script([^>]*)>(.*?)</script>`)
)

func wantRedirect(t *testing.T, w *httptest.ResponseRecorder, to string) {
	t.Helper()
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != to {
		t.Fatalf("got %d Location %q, want 303 to %q; body %.300s", w.Code, w.Header().Get("Location"), to, w.Body)
	}
}

func wantPage(t *testing.T, w *httptest.ResponseRecorder, status int, contains ...string) string {
	t.Helper()
	body := w.Body.String()
	if w.Code != status {
		t.Fatalf("status %d, want %d; body %.500s", w.Code, status, body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	for _, s := range contains {
		if !strings.Contains(body, s) {
			t.Errorf("page lacks %q", s)
		}
	}
	return body
}

// signInForm signs c in through the sign-in form and picks up the page's
// CSRF token.
func signInForm(t *testing.T, c *client, login, password string) string {
	t.Helper()
	wantRedirect(t, c.form("signin", "username", login, "password", password), c.e.prefix+"security")
	if c.cookie == nil {
		t.Fatal("no session cookie after signing in")
	}
	body := wantPage(t, c.get("security"), 200)
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no CSRF token on the page")
	}
	c.csrf = html.UnescapeString(m[1])
	return body
}

func TestPagesSignedOutRedirectToSignIn(t *testing.T) {
	e := newEnv(t, nil, func(o *settings.Options) { o.Prefix = "/account/" })
	c := e.client()
	wantRedirect(t, c.get(""), "/account/signin")
	wantRedirect(t, c.get("security"), "/account/signin")
	// A state-changing form without a session changes nothing.
	wantRedirect(t, c.form("app-passwords", "name", "x", "csrf", "x"), "/account/signin")
	wantRedirect(t, c.form("signout", "csrf", "x"), "/account/signin")
}

func TestSignInPage(t *testing.T) {
	e := newEnv(t, nil, func(o *settings.Options) { o.Prefix = "/account/"; o.Title = "Example Cloud" })
	c := e.client()
	body := wantPage(t, c.get("signin"), 200,
		`<meta name="viewport" content="width=device-width, initial-scale=1">`,
		`<title>Sign in · Example Cloud</title>`,
		`<label for="username">Username</label>`, `<input id="username" name="username"`, `autocomplete="username"`,
		`<label for="password">Password</label>`, `<input id="password" name="password" type="password"`, `autocomplete="current-password"`,
		`<form method="post" action="/account/signin"`,
		`<link rel="stylesheet" href="/account/static/style.css">`, `<script src="/account/static/app.js" defer></script>`,
	)
	checkNoInlineCode(t, body)

	// Failures: the same message for a wrong password and an unknown user.
	msg := "The username or password is incorrect."
	wantPage(t, c.form("signin", "username", "alice", "password", "wrong"), 401, msg, `value="alice"`)
	wantPage(t, c.form("signin", "username", "nobody", "password", "wrong"), 401, msg)
	wantPage(t, c.form("signin", "username", "alice", "password", ""), 400, "Enter your username and password.")
	if c.cookie != nil {
		t.Fatal("a failed sign-in set a cookie")
	}
	e.verifier.Fail(errDirectoryDown)
	wantPage(t, c.form("signin", "username", "alice", "password", alicePassword), 503, "temporarily unavailable")
	e.verifier.Fail(nil)

	// Success: a cookie limited to the prefix, then the security page.
	wantRedirect(t, c.form("signin", "username", " alice ", "password", alicePassword), "/account/security")
	if ck := c.cookie; ck == nil || ck.Path != "/account/" || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode {
		t.Fatalf("cookie %+v", ck)
	}
	// Signed in, the sign-in page and the home page lead to the security page.
	wantRedirect(t, c.get("signin"), "/account/security")
	wantRedirect(t, c.get(""), "/account/security")

	// A cross-site form post (login CSRF) is refused.
	r := e.client().req("POST", "signin", "application/x-www-form-urlencoded", "username=alice&password="+alicePassword)
	r.Header.Set("Origin", "https://evil.example")
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	wantPage(t, w, 403, "came from another site")
	if len(w.Result().Cookies()) != 0 {
		t.Error("a cross-site sign-in set a cookie")
	}
}

func TestSecurityPage(t *testing.T) {
	e := newEnv(t, nil, nil)
	c := e.client()
	body := signInForm(t, c, "alice", alicePassword)
	for _, want := range []string{
		`<nav aria-label="Breadcrumb"`, `>Settings</a>`, `<li aria-current="page">Security</li>`,
		`<h2 id="devices-h">Devices &amp; sessions</h2>`,
		`<label for="app-name">App name</label>`, `<input id="app-name" name="name"`,
		`>Create new app password</button>`,
		`No app passwords yet.`,
		`Browser sessions`, `This session`, `Firefox on Linux`, `from 192.0.2.10`,
		`Alice Example`, `>Sign out</button>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, `id="reauth-password"`) {
		t.Error("a fresh sign-in is asked for the password again")
	}
	if strings.Contains(body, "Revoke all other sessions") {
		t.Error("\"Revoke all other sessions\" shown with no other session")
	}
	checkNoInlineCode(t, body)
}

// The page must work under the CSP: no inline script, style or handlers.
func checkNoInlineCode(t *testing.T, body string) {
	t.Helper()
	for _, m := range scriptTag.FindAllStringSubmatch(body, -1) {
		if !strings.Contains(m[1], " src=") || m[2] != "" {
			t.Errorf("inline script: %q", m[0])
		}
	}
	for _, bad := range []string{"<style", ` style="`, ` onclick=`, ` onload=`, ` onsubmit=`, "javascript:"} {
		if strings.Contains(body, bad) {
			t.Errorf("page holds %q, which the CSP blocks", bad)
		}
	}
}

func TestCreateAppPasswordPage(t *testing.T) {
	e := newEnv(t, nil, func(o *settings.Options) { o.ServerURL = "https://dav.example.com/" })
	c := e.client()
	signInForm(t, c, "alice", alicePassword)

	w := c.followCreate(t, c.form("app-passwords", "name", "My iPhone"))
	body := wantPage(t, w, 200,
		`New app password for “<span id="created-name">My iPhone</span>”`,
		`The password is shown only once`,
		`<code id="created-server">https://dav.example.com/</code>`,
		`data-copy="created-password"`, `>Copy</button>`, `id="created-done"`, `>Done</a>`,
	)
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("the page with the secret has Cache-Control %q", cc)
	}
	m := newPassword.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("the new password is not on the page")
	}
	secret := html.UnescapeString(m[1])
	if u := createdUser.FindStringSubmatch(body); u == nil || u[1] != "alice" {
		t.Errorf("the username shown is %v, want alice", u)
	}
	if !e.appPasswordWorks("alice", secret) {
		t.Fatal("the password on the page does not authenticate")
	}
	checkNoInlineCode(t, body)

	// Done: the list shows the new app password with its use, never the secret.
	body = wantPage(t, c.get("security"), 200, "My iPhone", "from 192.0.2.99", "DAVx⁵", "Last activity")
	if strings.Contains(body, secret) || strings.Contains(body, "created-password") {
		t.Error("the secret is shown again")
	}
	aps, _ := e.m.ListAppPasswords(t.Context(), "u-alice")
	if len(aps) != 1 || !strings.Contains(body, "…"+aps[0].Hint) {
		t.Errorf("the list lacks the hint of %+v", aps)
	}

	// Refused names: the form comes back with a clear error, nothing created.
	body = wantPage(t, c.form("app-passwords", "name", strings.Repeat("x", 101)), 400, "longer than 100 characters", `aria-invalid="true"`)
	if newPassword.MatchString(body) {
		t.Error("an over-long name produced a password")
	}
	wantPage(t, c.form("app-passwords", "name", " "), 400, "name is empty")
	if aps, _ := e.m.ListAppPasswords(t.Context(), "u-alice"); len(aps) != 1 {
		t.Errorf("refused names created app passwords: %d", len(aps))
	}
}

func TestPageFormsNeedCSRFToken(t *testing.T) {
	e := newEnv(t, nil, nil)
	c := e.client()
	signInForm(t, c, "alice", alicePassword)
	id, secret := c.createAppPasswordViaManager(t)
	other := e.client()
	other.signIn("bob", bobPassword)
	sessions, _ := e.m.ListSessions(t.Context(), "u-alice")

	for _, tc := range []struct {
		name, path string
		kv         []string
	}{
		{"create, no token", "app-passwords", []string{"name", "x", "csrf", ""}},
		{"create, wrong token", "app-passwords", []string{"name", "x", "csrf", "wrong"}},
		{"create, bob's token", "app-passwords", []string{"name", "x", "csrf", other.csrf}},
		{"rename, no token", "app-passwords/" + id + "/rename", []string{"name", "x", "csrf", ""}},
		{"revoke, no token", "app-passwords/" + id + "/revoke", []string{"csrf", ""}},
		{"revoke session, no token", "sessions/" + sessions[0].ID + "/revoke", []string{"csrf", ""}},
		{"revoke others, no token", "sessions/revoke-others", []string{"csrf", ""}},
		{"sign out, no token", "signout", []string{"csrf", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantPage(t, c.form(tc.path, tc.kv...), 403, "Request refused")
		})
	}
	// Cross-site, even with the right token.
	r := c.req("POST", "app-passwords/"+id+"/revoke", "application/x-www-form-urlencoded", "csrf="+c.csrf)
	r.Header.Set("Sec-Fetch-Site", "cross-site")
	wantPage(t, c.send(r), 403, "came from another site")

	if !e.appPasswordWorks("alice", secret) {
		t.Error("a refused form revoked the app password")
	}
	if aps, _ := e.m.ListAppPasswords(t.Context(), "u-alice"); len(aps) != 1 || aps[0].Name != "Laptop" {
		t.Errorf("refused forms changed the app passwords: %+v", aps)
	}
	if c.cookie == nil {
		t.Fatal("a refused form signed out")
	}
	wantPage(t, c.get("security"), 200)
}

func (c *client) createAppPasswordViaManager(t *testing.T) (id, secret string) {
	t.Helper()
	u, err := c.e.m.AuthenticateSession(t.Context(), c.cookie.Value, "", "")
	if err != nil {
		t.Fatal(err)
	}
	ap, secret, err := c.e.m.IssueAppPassword(t.Context(), &u.User, auth.IssueRequest{Name: "Laptop"})
	if err != nil {
		t.Fatal(err)
	}
	return ap.ID, secret
}

func TestRenameAndRevokePage(t *testing.T) {
	e := newEnv(t, nil, nil)
	c := e.client()
	signInForm(t, c, "alice", alicePassword)
	id, secret := c.createAppPasswordViaManager(t)
	bob := e.client()
	bob.signIn("bob", bobPassword)
	bobID, bobSecret := bob.createAppPassword("Bob's phone")

	body := wantPage(t, c.get("security"), 200, `action="/app-passwords/`+id+`/rename"`, `action="/app-passwords/`+id+`/revoke"`,
		`<label for="rename-`+id+`" class="sr-only">New name for Laptop</label>`, `aria-label="Revoke Laptop"`)
	_ = body

	wantRedirect(t, c.form("app-passwords/"+id+"/rename", "name", "Work laptop"), "/security?done=renamed")
	wantPage(t, c.get("security?done=renamed"), 200, "App password renamed.", "Work laptop")
	wantPage(t, c.form("app-passwords/"+id+"/rename", "name", ""), 400, "Could not rename: name is empty.")

	// Bob's id: 404, nothing changed.
	wantPage(t, c.form("app-passwords/"+bobID+"/rename", "name", "pwned"), 404, "Not found")
	wantPage(t, c.form("app-passwords/"+bobID+"/revoke"), 404, "Not found")
	if !e.appPasswordWorks("bob", bobSecret) {
		t.Error("alice's form revoked bob's app password")
	}

	wantRedirect(t, c.form("app-passwords/"+id+"/revoke"), "/security?done=revoked")
	if e.appPasswordWorks("alice", secret) {
		t.Error("the revoked app password still works")
	}
	wantPage(t, c.get("security?done=revoked"), 200, "App password revoked.", "No app passwords yet.")
	wantPage(t, c.form("app-passwords/"+id+"/revoke"), 404, "Not found")
}

func TestRecentAuthPage(t *testing.T) {
	lim := &testkit.Limiter{}
	e := newEnv(t, func(o *auth.Options) { o.Limiter = lim }, func(o *settings.Options) { o.RecentAuth = 5 * time.Minute })
	c := e.client()
	signInForm(t, c, "alice", alicePassword)
	e.clock.Add(6 * time.Minute)

	// The form now asks for the password up front.
	wantPage(t, c.get("security"), 200, `<label for="reauth-password">Your account password</label>`)

	// Without it: refused, with the name kept and a clear message.
	body := wantPage(t, c.form("app-passwords", "name", "My iPhone"), 403,
		"enter your password again", "more than 5 minutes ago", `value="My iPhone"`, `id="reauth-password"`)
	if newPassword.MatchString(body) {
		t.Fatal("created without re-authentication")
	}
	body = wantPage(t, c.form("app-passwords", "name", "My iPhone", "password", "wrong"), 401, "The password is incorrect.")
	if newPassword.MatchString(body) {
		t.Fatal("created with a wrong password")
	}
	// Bob's password does not re-authenticate alice.
	wantPage(t, c.form("app-passwords", "name", "My iPhone", "password", bobPassword), 401)
	if aps, _ := e.m.ListAppPasswords(t.Context(), "u-alice"); len(aps) != 0 {
		t.Fatalf("created %d app passwords without re-authentication", len(aps))
	}
	failures, _ := lim.Counts()
	if failures != 2 {
		t.Errorf("the limiter saw %d failed re-authentications, want 2", failures)
	}

	old := c.cookie.Value
	body = wantPage(t, c.followCreate(t, c.form("app-passwords", "name", "My iPhone", "password", alicePassword)), 200, "My iPhone")
	if !newPassword.MatchString(body) {
		t.Fatal("not created after re-authentication")
	}
	if strings.Contains(body, `id="reauth-password"`) {
		t.Error("still asks for the password after re-authenticating")
	}
	// Re-authenticating replaced the session; a copy of the old cookie
	// (stolen) neither works nor shares the recent sign-in.
	if c.cookie.Value == old {
		t.Error("re-authentication kept the session cookie")
	}
	stolen := e.client()
	stolen.cookie = &http.Cookie{Name: "appauth_session", Value: old}
	wantRedirect(t, stolen.get("security"), c.e.prefix+"signin")
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no CSRF token on the page")
	}
	c.csrf = html.UnescapeString(m[1])
	// Within RecentAuth of the re-authentication, no password is needed.
	e.clock.Add(4 * time.Minute)
	wantPage(t, c.followCreate(t, c.form("app-passwords", "name", "iPad")), 200, "iPad", `id="created-password"`)
}

func TestSessionsPage(t *testing.T) {
	e := newEnv(t, nil, nil)
	laptop := e.client()
	signInForm(t, laptop, "alice", alicePassword)
	phone := e.client()
	phone.ua = "Mozilla/5.0 (Linux; Android 15) Chrome/140.0 Mobile Safari/537.36"
	phone.addr = "198.51.100.5:1"
	signInForm(t, phone, "alice", alicePassword)
	tablet := e.client()
	tablet.ua = "Mozilla/5.0 (iPad; CPU OS 18_0 like Mac OS X) Version/18.0 Safari/604.1"
	signInForm(t, tablet, "alice", alicePassword)

	body := wantPage(t, laptop.get("security"), 200, "Chrome on Android", "from 198.51.100.5", "Safari on iPad", "Revoke all other sessions")
	if n := strings.Count(body, "This session"); n != 1 {
		t.Errorf("\"This session\" appears %d times", n)
	}
	if i, j := strings.Index(body, "Firefox on Linux"), strings.Index(body, "Chrome on Android"); i < 0 || i > j {
		t.Error("this session is not listed first")
	}

	sessions, _ := e.m.ListSessions(t.Context(), "u-alice")
	var phoneID string
	for _, s := range sessions {
		if strings.Contains(s.LastUsedClient, "Android") {
			phoneID = s.ID
		}
	}
	wantRedirect(t, laptop.form("sessions/"+phoneID+"/revoke"), "/security?done=session-revoked")
	wantRedirect(t, phone.get("security"), "/signin")
	if phone.cookie != nil {
		t.Error("the revoked session's cookie was not cleared")
	}
	wantPage(t, tablet.get("security"), 200)

	wantRedirect(t, laptop.form("sessions/revoke-others"), "/security?done=sessions-revoked")
	wantRedirect(t, tablet.get("security"), "/signin")
	body = wantPage(t, laptop.get("security?done=sessions-revoked"), 200, "All other sessions are signed out.")
	if strings.Contains(body, "Revoke all other sessions") {
		t.Error("\"Revoke all other sessions\" still offered")
	}

	// Revoking this session from the list signs out.
	sessions, _ = e.m.ListSessions(t.Context(), "u-alice")
	if len(sessions) != 1 {
		t.Fatalf("%d sessions left, want 1", len(sessions))
	}
	wantRedirect(t, laptop.form("sessions/"+sessions[0].ID+"/revoke"), "/signin?done=signed-out")
	if sessions, _ := e.m.ListSessions(t.Context(), "u-alice"); len(sessions) != 0 {
		t.Errorf("sessions left after signing out: %d", len(sessions))
	}
}

func TestSignOutPage(t *testing.T) {
	e := newEnv(t, nil, nil)
	c := e.client()
	signInForm(t, c, "alice", alicePassword)
	stolen := c.cookie.Value
	w := c.form("signout")
	wantRedirect(t, w, "/signin?done=signed-out")
	if c.cookie != nil {
		t.Error("sign-out did not clear the cookie")
	}
	if sessions, _ := e.m.ListSessions(t.Context(), "u-alice"); len(sessions) != 0 {
		t.Errorf("the session is still stored after sign-out: %+v", sessions)
	}
	wantPage(t, c.get("signin?done=signed-out"), 200, "You have signed out.")
	c.cookie = &http.Cookie{Name: "appauth_session", Value: stolen}
	wantRedirect(t, c.get("security"), "/signin")
}

func TestSecurityPageUnavailable(t *testing.T) {
	e := newEnv(t, func(o *auth.Options) { o.CacheSize = -1 }, nil)
	c := e.client()
	signInForm(t, c, "alice", alicePassword)
	e.store.Fail(auth.ErrUnavailable)
	// An outage is a 503 page, not a sign-out.
	wantPage(t, c.get("security"), 503, "Temporarily unavailable", "Nothing was changed")
	if c.cookie == nil {
		t.Error("an outage cleared the session cookie")
	}
	e.store.Fail(nil)
	wantPage(t, c.get("security"), 200)
}

func TestStaticFiles(t *testing.T) {
	e := newEnv(t, nil, nil)
	c := e.client()
	for path, ct := range map[string]string{"static/app.js": "text/javascript; charset=utf-8", "static/style.css": "text/css; charset=utf-8", "static/key.svg": "image/svg+xml"} {
		w := c.get(path)
		if w.Code != 200 || w.Header().Get("Content-Type") != ct || w.Body.Len() < 200 {
			t.Errorf("%s: %d %q %d bytes", path, w.Code, w.Header().Get("Content-Type"), w.Body.Len())
		}
		if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
			t.Errorf("%s: Cache-Control %q", path, cc)
		}
	}
	for _, path := range []string{"static/../settings.go", "static/..%2fsettings.go", "static/..%2ftemplates/layout.html", "static/%2e%2e/settings.go"} {
		if w := c.get(path); w.Code == 200 {
			t.Errorf("%s: 200; static serves files outside static/", path)
		}
	}
	// A Range request gets the whole file, with the headers.
	for _, rng := range []string{"bytes=999999-", "bytes=0-1,5-6"} {
		r := httptest.NewRequest("GET", e.prefix+"static/app.js", nil)
		r.Header.Set("Range", rng)
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		if w.Code != 200 || w.Header().Get("Cache-Control") != "no-store" || w.Header().Get("Content-Type") != "text/javascript; charset=utf-8" {
			t.Errorf("Range %s: %d, Cache-Control %q, Content-Type %q", rng, w.Code, w.Header().Get("Cache-Control"), w.Header().Get("Content-Type"))
		}
	}
	// No directory listing, and a 404 keeps the headers.
	for _, path := range []string{"static/", "static", "static/.", "static/index.html", "static/nope.css"} {
		w := c.get(path)
		if w.Code == 200 || strings.Contains(w.Body.String(), "app.js") {
			t.Errorf("%s: %d %q; want no listing", path, w.Code, w.Body)
		}
		if w.Code == 404 && w.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("%s: 404 without Cache-Control: no-store", path)
		}
	}
}

func TestClientLabels(t *testing.T) {
	e := newEnv(t, nil, nil)
	c := e.client()
	signInForm(t, c, "alice", alicePassword)
	for ua, want := range map[string]string{
		"DAVx5/4.4.2-ose (2024/10/01; dav4jvm; okhttp/4.12.0) Android/15":                      "DAVx⁵",
		"iOS/18.0 (22A3354) dataaccessd/1.0":                                                   "Apple Calendar/Contacts",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Thunderbird/128.0": "Thunderbird on Windows",
		"curl/8.5.0": "curl",
		"":           "Unknown client",
		"SomeUnknownAgent/1.0 with a very long tail that goes on and on": "SomeUnknownAgent/1.0 with a very long ta…",
	} {
		ap, secret, err := e.m.IssueAppPassword(t.Context(), e.alice, auth.IssueRequest{Name: "x"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.m.Authenticate(t.Context(), auth.Attempt{Username: "alice", Password: secret, UserAgent: ua}); err != nil {
			t.Fatal(err)
		}
		body := wantPage(t, c.get("security"), 200)
		i := strings.Index(body, `data-id="`+ap.ID+`"`)
		j := strings.Index(body[i:], "</li>")
		if !strings.Contains(body[i:i+j], html.EscapeString(want)) {
			t.Errorf("UA %q: want label %q in %s", ua, want, body[i:i+j])
		}
	}
}

// TestNetworkDeviceList: an app password used through RADIUS (package
// auth/radiusrest) is listed with the NAS and the station of its last use,
// which come from the network and are escaped.
func TestNetworkDeviceList(t *testing.T) {
	e := newEnv(t, nil, nil)
	c := e.client()
	signInForm(t, c, "alice", alicePassword)
	_, secret, err := e.m.IssueAppPassword(t.Context(), e.alice, auth.IssueRequest{Name: "Wi-Fi", Scopes: []string{auth.ScopeNetwork}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Authenticate(t.Context(), auth.Attempt{Username: "alice", Password: secret, RemoteAddr: "192.0.2.1",
		UserAgent: `RADIUS ap-<b>3</b> (192.0.2.1) station 02-00-00-00-00-07`}); err != nil {
		t.Fatal(err)
	}
	body := wantPage(t, c.get("security"), 200, "Access: Wi-Fi and VPN", "Wi-Fi/VPN ap-&lt;b&gt;3&lt;/b&gt; (192.0.2.1) station 02-00-00-00-00-07", "from 192.0.2.1")
	if strings.Contains(body, "<b>3") {
		t.Error("the NAS's name is not escaped")
	}
}
