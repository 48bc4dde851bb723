package settings_test

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/settings"
	"github.com/appauth/appauth/backends/memory"
	"github.com/appauth/appauth/internal/testkit"
)

// errDirectoryDown is what the verifier fails with in a directory outage.
var errDirectoryDown = errors.Join(errors.New("ldap: dial: connection refused"), auth.ErrUnavailable)

const (
	alicePassword = "correct horse battery staple"
	bobPassword   = "bob's account password"
)

type env struct {
	t        *testing.T
	m        *auth.Manager
	h        *settings.Handler
	store    *testkit.Store
	dir      *memory.Directory
	verifier *testkit.Verifier // dir's, given to the Handler
	clock    *testkit.Clock
	logs     *testkit.Buffer
	prefix   string
	alice    *auth.User
	bob      *auth.User
}

// newEnv returns a Handler on a Manager with a memory store and directory
// holding alice and bob, a settable clock and captured logs. editM and
// editS may change the options (either may be nil).
func newEnv(t *testing.T, editM func(*auth.Options), editS func(*settings.Options)) *env {
	t.Helper()
	return newEnvVerifier(t, editM, editS, true)
}

// newEnvVerifier is newEnv, with the Handler given no PasswordVerifier
// when passwords is false (a single-sign-on-only page).
func newEnvVerifier(t *testing.T, editM func(*auth.Options), editS func(*settings.Options), passwords bool) *env {
	t.Helper()
	e := &env{
		t:     t,
		store: testkit.NewStore(memory.NewStore()),
		dir:   memory.NewDirectory(),
		clock: testkit.NewClock(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)),
		logs:  &testkit.Buffer{},
		alice: &auth.User{ID: "u-alice", Login: "alice", DisplayName: "Alice Example"},
		bob:   &auth.User{ID: "u-bob", Login: "bob"},
	}
	if err := e.dir.AddUser(*e.alice, alicePassword); err != nil {
		t.Fatal(err)
	}
	if err := e.dir.AddUser(*e.bob, bobPassword); err != nil {
		t.Fatal(err)
	}
	e.verifier = testkit.NewVerifier(e.dir)
	logger := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	mo := &auth.Options{Now: e.clock.Now, Logger: logger}
	if editM != nil {
		editM(mo)
	}
	m := testkit.NewManager(t, e.store, e.dir, mo)
	so := &settings.Options{Now: e.clock.Now, Logger: logger}
	if editS != nil {
		editS(so)
	}
	var verifier auth.PasswordVerifier
	if passwords {
		verifier = e.verifier
	}
	h, err := settings.New(m, verifier, so)
	if err != nil {
		t.Fatal(err)
	}
	e.m, e.h, e.prefix = m, h, h.Prefix()
	return e
}

// client is one browser or API client: it keeps the session cookie and the
// CSRF token, and sends requests straight to the Handler.
type client struct {
	e      *env
	cookie *http.Cookie
	csrf   string
	ua     string
	addr   string
}

func (e *env) client() *client {
	return &client{e: e, ua: "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0", addr: "192.0.2.10:51000"}
}

// req builds a request to path (relative to the prefix).
func (c *client) req(method, path, contentType, body string) *http.Request {
	r := httptest.NewRequest(method, "http://example.test"+c.e.prefix+path, strings.NewReader(body))
	r.RemoteAddr = c.addr
	r.Header.Set("User-Agent", c.ua)
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	if c.cookie != nil {
		r.AddCookie(&http.Cookie{Name: c.cookie.Name, Value: c.cookie.Value})
	}
	return r
}

// send serves r and keeps a new session cookie from the answer.
func (c *client) send(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	c.e.h.ServeHTTP(w, r)
	for _, ck := range w.Result().Cookies() {
		if ck.Name != "appauth_session" {
			continue
		}
		if ck.MaxAge < 0 || ck.Value == "" {
			c.cookie = nil
		} else {
			c.cookie = ck
		}
	}
	return w
}

// api sends a JSON API request with the CSRF token.
func (c *client) api(method, path, body string) *httptest.ResponseRecorder {
	ct := ""
	if body != "" {
		ct = "application/json"
	}
	r := c.req(method, "api/v1/"+path, ct, body)
	if c.csrf != "" {
		r.Header.Set("X-CSRF-Token", c.csrf)
	}
	return c.send(r)
}

// form posts a form to a page route, adding the CSRF token unless the
// values set "csrf" themselves.
func (c *client) form(path string, kv ...string) *httptest.ResponseRecorder {
	vals := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		vals.Add(kv[i], kv[i+1])
	}
	if !vals.Has("csrf") && c.csrf != "" {
		vals.Set("csrf", c.csrf)
	}
	return c.send(c.req("POST", path, "application/x-www-form-urlencoded", vals.Encode()))
}

func (c *client) get(path string) *httptest.ResponseRecorder {
	return c.send(c.req("GET", path, "", ""))
}

// signIn signs in through the API and keeps the cookie and CSRF token.
func (c *client) signIn(login, password string) {
	c.e.t.Helper()
	w := c.api("POST", "session", mustJSON(map[string]string{"username": login, "password": password}))
	if w.Code != http.StatusOK {
		c.e.t.Fatalf("sign in as %s: %d %s", login, w.Code, w.Body)
	}
	var resp struct {
		CSRFToken string `json:"csrfToken"`
	}
	decode(c.e.t, w, &resp)
	if resp.CSRFToken == "" || c.cookie == nil {
		c.e.t.Fatalf("sign in as %s: no CSRF token or cookie: %s", login, w.Body)
	}
	c.csrf = resp.CSRFToken
}

// createAppPassword creates one through the API and returns its id and secret.
func (c *client) createAppPassword(name string) (id, secret string) {
	c.e.t.Helper()
	w := c.api("POST", "app-passwords", mustJSON(map[string]string{"name": name}))
	if w.Code != http.StatusCreated {
		c.e.t.Fatalf("create %q: %d %s", name, w.Code, w.Body)
	}
	var resp struct{ ID, Password string }
	decode(c.e.t, w, &resp)
	return resp.ID, resp.Password
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func decode(t *testing.T, w *httptest.ResponseRecorder, v any) {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Fatalf("Content-Type %q, want JSON; body %s", ct, w.Body)
	}
	if err := json.Unmarshal(w.Body.Bytes(), v); err != nil {
		t.Fatalf("decode %s: %v", w.Body, err)
	}
}

// errorMessage returns the "error" of a JSON error body, failing the test
// if the body is anything else.
func errorMessage(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	var e map[string]any
	decode(t, w, &e)
	msg, ok := e["error"].(string)
	if !ok || len(e) != 1 || msg == "" {
		t.Fatalf("want {\"error\":\"...\"}, got %s", w.Body)
	}
	return msg
}

// appPasswordWorks reports whether login:secret passes the Manager.
func (e *env) appPasswordWorks(login, secret string) bool {
	_, err := e.m.Authenticate(e.t.Context(), auth.Attempt{Username: login, Password: secret, RemoteAddr: "192.0.2.99", UserAgent: "DAVx5/4.4"})
	if err != nil && !errors.Is(err, auth.ErrInvalidCredentials) {
		e.t.Fatalf("authenticate: %v", err)
	}
	return err == nil
}
