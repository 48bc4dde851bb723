package settings_test

import (
	"bytes"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/loginflow"
	"github.com/appauth/appauth/auth/settings"
	"github.com/appauth/appauth/internal/testkit"
)

// flowEnv is a settings Handler with the Login Flow grant page, and the
// flows' client endpoints on a loopback server.
type flowEnv struct {
	*env
	flows *loginflow.Flows
	srv   *httptest.Server
}

func newFlowEnv(t *testing.T) *flowEnv {
	t.Helper()
	return newFlowEnvSSO(t, nil, true)
}

// newFlowEnvSSO is newFlowEnv with sso as Options.SSO (if not nil), and
// no PasswordVerifier unless passwords.
func newFlowEnvSSO(t *testing.T, sso settings.SSO, passwords bool) *flowEnv {
	t.Helper()
	var holder lateFlows
	e := newEnvVerifier(t, nil, func(o *settings.Options) {
		o.LoginFlows = &holder
		if sso != nil {
			o.SSO = sso
		}
	}, passwords)
	flows, err := loginflow.New(e.m, &loginflow.Options{Key: bytes.Repeat([]byte("f"), 32), Now: e.clock.Now, PurgeInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { flows.Close() })
	holder.Flows = flows
	srv := httptest.NewServer(flows)
	t.Cleanup(srv.Close)
	return &flowEnv{env: e, flows: flows, srv: srv}
}

// lateFlows lets the Flows be made after the Handler, on its Manager.
type lateFlows struct{ *loginflow.Flows }

// start begins a flow as client ua and returns the client and the login
// URL's path relative to the prefix.
func (e *flowEnv) start(ua string) (*testkit.LoginFlowClient, string) {
	e.t.Helper()
	c := &testkit.LoginFlowClient{HTTP: e.srv.Client(), UserAgent: ua}
	if err := c.Initiate(e.srv.URL); err != nil {
		e.t.Fatal(err)
	}
	u, err := url.Parse(c.Login)
	if err != nil {
		e.t.Fatal(err)
	}
	return c, strings.TrimPrefix(u.Path, "/")
}

func TestGrantPageSignInThenGrant(t *testing.T) {
	e := newFlowEnv(t)
	fc, path := e.start("DAVx5/4.4.2-ose (2024/10/01; dav4jvm; okhttp/4.12.0) Android/15")
	c := e.client()
	w := c.get(path + "?user=alice")
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `name="action" value="signin"`) || !strings.Contains(w.Body.String(), `value="alice"`) {
		t.Fatalf("grant page before sign-in: %d\n%s", w.Code, w.Body)
	}
	w = c.form(path, "action", "signin", "username", "alice", "password", "wrong")
	if w.Code != http.StatusUnauthorized || c.cookie != nil {
		t.Fatalf("sign-in with a wrong password: %d", w.Code)
	}
	w = c.form(path, "action", "signin", "username", "alice", "password", alicePassword)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != e.prefix+path || c.cookie == nil {
		t.Fatalf("sign-in on the grant page: %d Location %q", w.Code, w.Header().Get("Location"))
	}
	w = c.get(path)
	if !strings.Contains(w.Body.String(), "Grant access to “<span id=\"grant-client\"") || !strings.Contains(w.Body.String(), "DAVx⁵ on Android") {
		t.Fatalf("grant question missing:\n%s", w.Body)
	}
	c.csrf = between(w.Body.String(), `name="csrf" value="`, `"`)
	if st, _, _ := fc.Poll(); st != http.StatusNotFound {
		t.Fatalf("poll before the grant: %d", st)
	}
	w = c.form(path, "action", "grant", "access", "dav", "expires", "30d")
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `id="grant-done"`) {
		t.Fatalf("grant: %d\n%s", w.Code, w.Body)
	}
	st, res, err := fc.Poll()
	if st != http.StatusOK || err != nil {
		t.Fatalf("poll after the grant: %d %v", st, err)
	}
	p, err := e.m.Authenticate(t.Context(), auth.Attempt{Username: res.LoginName, Password: res.AppPassword})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Scopes, []string{auth.ScopeCalendars, auth.ScopeContacts}) {
		t.Errorf("scopes %v, want the preset's calendars and contacts", p.Scopes)
	}
	aps, _ := e.m.ListAppPasswords(t.Context(), e.alice.ID)
	if len(aps) != 1 || !aps[0].ExpiresAt.Equal(e.clock.Now().Add(30*24*time.Hour)) || !strings.HasPrefix(aps[0].Name, "DAVx5/") {
		t.Errorf("app passwords %+v, want one named after the client, expiring in 30 days", aps)
	}
	// The link is used up.
	if w := c.get(path); w.Code != http.StatusNotFound {
		t.Errorf("the used link: %d, want 404", w.Code)
	}
}

func TestGrantPageNeedsRecentSignInAndCSRF(t *testing.T) {
	e := newFlowEnv(t)
	fc, path := e.start("Nextcloud-android/3.30")
	c := e.client()
	c.signIn("alice", alicePassword)
	e.clock.Add(11 * time.Minute)
	w := c.get(path)
	if !strings.Contains(w.Body.String(), `id="reauth-password"`) {
		t.Fatalf("a sign-in 11 minutes old: no password field\n%s", w.Body)
	}
	if w := c.form(path, "action", "grant", "csrf", "forged"); w.Code != http.StatusForbidden {
		t.Errorf("grant with a wrong CSRF token: %d, want 403", w.Code)
	}
	if w := c.form(path, "action", "grant"); w.Code == http.StatusOK {
		t.Errorf("grant without the password after 11 minutes: %d", w.Code)
	}
	if w := c.form(path, "action", "grant", "password", "wrong"); w.Code != http.StatusUnauthorized {
		t.Errorf("grant with a wrong password: %d, want 401", w.Code)
	}
	if w := c.form(path, "action", "grant", "access", "nonsense", "password", alicePassword); w.Code != http.StatusBadRequest {
		t.Errorf("grant with an unknown access choice: %d, want 400", w.Code)
	}
	if aps, _ := e.m.ListAppPasswords(t.Context(), e.alice.ID); len(aps) != 0 {
		t.Fatalf("refused grants issued %d app passwords", len(aps))
	}
	if st, _, _ := fc.Poll(); st != http.StatusNotFound {
		t.Fatalf("poll after refused grants: %d", st)
	}
	if w := c.form(path, "action", "grant", "password", alicePassword); w.Code != http.StatusOK {
		t.Fatalf("grant with the password: %d\n%s", w.Code, w.Body)
	}
	if st, res, _ := fc.Poll(); st != http.StatusOK || !e.appPasswordWorks("alice", res.AppPassword) {
		t.Errorf("poll after the grant: %d", st)
	}
}

func TestGrantPageDeny(t *testing.T) {
	e := newFlowEnv(t)
	fc, path := e.start("mirall/3.7.3")
	c := e.client()
	c.signIn("alice", alicePassword)
	w := c.form(path, "action", "deny")
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `id="grant-denied"`) {
		t.Fatalf("deny: %d\n%s", w.Code, w.Body)
	}
	if st, _, _ := fc.Poll(); st != http.StatusNotFound {
		t.Errorf("poll after deny: %d", st)
	}
	if w := c.get(path); w.Code != http.StatusNotFound {
		t.Errorf("the denied link: %d, want 404", w.Code)
	}
	if aps, _ := e.m.ListAppPasswords(t.Context(), e.alice.ID); len(aps) != 0 {
		t.Errorf("deny issued %d app passwords", len(aps))
	}
}

// A hostile User-Agent is shown escaped; unknown and malformed tokens are
// one 404 page.
func TestGrantPageHostileInput(t *testing.T) {
	e := newFlowEnv(t)
	const ua = `<script>alert(1)</script><img src=x onerror=alert(2)>"'`
	_, path := e.start(ua)
	c := e.client()
	c.signIn("alice", alicePassword)
	body := c.get(path).Body.String()
	if strings.Contains(body, "<script>alert") || strings.Contains(body, "<img src=x") {
		t.Fatalf("the User-Agent is not escaped:\n%s", body)
	}
	if !strings.Contains(html.UnescapeString(body), "<script>alert(1)</script>") {
		t.Errorf("the User-Agent is not shown")
	}
	for _, p := range []string{"login/v2/flow/nope", "login/v2/flow/" + strings.Repeat("A", 43), "login/v2/flow/" + strings.Repeat("A", 100000)} {
		if w := c.get(p); w.Code != http.StatusNotFound {
			t.Errorf("GET %.40s: %d, want 404", p, w.Code)
		}
	}
}

// A directory outage during the sign-in on the grant page is a 503 that
// keeps the flow, and the log lines about it do not carry the token.
func TestGrantPageOutage(t *testing.T) {
	e := newFlowEnv(t)
	fc, path := e.start("DAVx5/4.4.2-ose")
	token := path[strings.LastIndex(path, "/")+1:]
	c := e.client()
	e.verifier.Fail(errDirectoryDown)
	if w := c.form(path, "action", "signin", "username", "alice", "password", alicePassword); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("sign-in on the grant page while the directory is down: %d, want 503", w.Code)
	}
	if !strings.Contains(e.logs.String(), "unavailable") {
		t.Fatalf("the outage is not logged:\n%s", e.logs)
	}
	if strings.Contains(e.logs.String(), token) {
		t.Errorf("the log holds the flow's login token:\n%s", e.logs)
	}
	e.verifier.Fail(nil)
	c.form(path, "action", "signin", "username", "alice", "password", alicePassword)
	w := c.get(path)
	c.csrf = between(w.Body.String(), `name="csrf" value="`, `"`)
	if w := c.form(path, "action", "grant"); w.Code != http.StatusOK {
		t.Fatalf("grant after the outage: %d", w.Code)
	}
	if st, _, _ := fc.Poll(); st != http.StatusOK {
		t.Errorf("poll after the outage and the grant: %d", st)
	}
}

func between(s, from, to string) string {
	_, rest, ok := strings.Cut(s, from)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, to)
	return v
}
