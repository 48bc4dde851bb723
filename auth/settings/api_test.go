package settings_test

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/settings"
	"github.com/appauth/appauth/internal/testkit"
)

func TestNewValidatesOptions(t *testing.T) {
	e := newEnv(t, nil, nil)
	for _, tc := range []struct {
		name string
		m    *auth.Manager
		v    auth.PasswordVerifier
		opts *settings.Options
		want string
	}{
		{"nil manager", nil, e.verifier, nil, "nil Manager"},
		{"nil verifier", e.m, nil, nil, "nil PasswordVerifier"},
		{"prefix without slash", e.m, e.verifier, &settings.Options{Prefix: "account"}, "Prefix"},
		{"prefix without trailing slash", e.m, e.verifier, &settings.Options{Prefix: "/account"}, "Prefix"},
		{"prefix with a pattern", e.m, e.verifier, &settings.Options{Prefix: "/{x}/"}, "Prefix"},
		{"bad cookie name", e.m, e.verifier, &settings.Options{CookieName: "a b"}, "CookieName"},
		{"negative RecentAuth", e.m, e.verifier, &settings.Options{RecentAuth: -time.Second}, "RecentAuth"},
		{"bad trusted origin", e.m, e.verifier, &settings.Options{TrustedOrigins: []string{"not an origin"}}, "TrustedOrigins"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := settings.New(tc.m, tc.v, tc.opts)
			if err == nil || h != nil {
				t.Fatalf("New = %v, %v; want an error", h, err)
			}
			if !strings.HasPrefix(err.Error(), "settings: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q: want prefix \"settings: \" and %q", err, tc.want)
			}
		})
	}
	h, err := settings.New(e.m, e.verifier, nil)
	if err != nil || h.Prefix() != "/" {
		t.Fatalf("New with nil options = %v, %v; want prefix /", h, err)
	}
}

// Every response, of every kind, carries the security headers.
func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	e := newEnv(t, nil, nil)
	signedIn := e.client()
	signedIn.signIn("alice", alicePassword)
	anon := e.client()
	for _, tc := range []struct {
		name   string
		c      *client
		method string
		path   string
		body   string
		status int
	}{
		{"sign-in page", anon, "GET", "signin", "", 200},
		{"home, signed out", anon, "GET", "", "", 303},
		{"security, signed out", anon, "GET", "security", "", 303},
		{"security page", signedIn, "GET", "security", "", 200},
		{"script", anon, "GET", "static/app.js", "", 200},
		{"style", anon, "GET", "static/style.css", "", 200},
		{"missing static", anon, "GET", "static/nope.js", "", 404},
		{"api list", signedIn, "GET", "api/v1/app-passwords", "", 200},
		{"api create", signedIn, "POST", "api/v1/app-passwords", `{"name":"x"}`, 201},
		{"api signed out", anon, "GET", "api/v1/sessions", "", 401},
		{"api unknown path", anon, "GET", "api/v1/nope", "", 404},
		{"api wrong method", anon, "PUT", "api/v1/session", "", 405},
		{"api bad body", anon, "POST", "api/v1/session", "{", 400},
		{"unknown page", anon, "GET", "nope", "", 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.c.req(tc.method, tc.path, "application/json", tc.body)
			if tc.c.csrf != "" {
				r.Header.Set("X-CSRF-Token", tc.c.csrf)
			}
			w := tc.c.send(r)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d; body %s", w.Code, tc.status, w.Body)
			}
			h := w.Header()
			for k, want := range map[string]string{
				"Cache-Control":          "no-store",
				"X-Content-Type-Options": "nosniff",
				"Referrer-Policy":        "no-referrer",
				"X-Frame-Options":        "DENY",
			} {
				if got := h.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			csp := h.Get("Content-Security-Policy")
			for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "form-action 'self'"} {
				if !strings.Contains(csp, want) {
					t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
				}
			}
			if strings.Contains(csp, "unsafe") {
				t.Errorf("Content-Security-Policy %q allows unsafe sources", csp)
			}
		})
	}
}

func TestAPISignIn(t *testing.T) {
	e := newEnv(t, nil, func(o *settings.Options) { o.Prefix = "/account/" })
	c := e.client()
	w := c.api("POST", "session", `{"username":"alice","password":"`+alicePassword+`"}`)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	var resp struct {
		User      map[string]string `json:"user"`
		CSRFToken string            `json:"csrfToken"`
	}
	decode(t, w, &resp)
	if resp.User["id"] != "u-alice" || resp.User["login"] != "alice" || resp.User["displayName"] != "Alice Example" || len(resp.CSRFToken) < 32 {
		t.Errorf("response %s: want alice's user and a CSRF token", w.Body)
	}
	ck := c.cookie
	if ck == nil {
		t.Fatal("no session cookie")
	}
	if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/account/" || ck.Secure {
		t.Errorf("cookie %+v: want HttpOnly, SameSite=Lax, Path=/account/, not Secure over plain HTTP", ck)
	}
	if !strings.HasPrefix(ck.Value, "aas-") || strings.Contains(w.Body.String(), ck.Value) {
		t.Errorf("cookie value %q: want a session secret that is not in the body", ck.Value)
	}
	if want := e.clock.Now().Add(14 * 24 * time.Hour); !ck.Expires.Equal(want) {
		t.Errorf("cookie expires %v, want the session's absolute end %v", ck.Expires, want)
	}
	sessions, err := e.m.ListSessions(t.Context(), "u-alice")
	if err != nil || len(sessions) != 1 {
		t.Fatalf("ListSessions = %v, %v; want the new session", sessions, err)
	}
	if s := sessions[0]; s.LastUsedAddr != "192.0.2.10" || s.LastUsedClient != c.ua {
		t.Errorf("session recorded address %q client %q", s.LastUsedAddr, s.LastUsedClient)
	}

	// The cookie works on the API, and the token is the session's.
	if w := c.api("GET", "sessions", ""); w.Code != http.StatusOK {
		t.Errorf("GET sessions with the new cookie: %d %s", w.Code, w.Body)
	}
}

func TestAPISignInFailures(t *testing.T) {
	e := newEnv(t, nil, nil)
	wrong := func(body string) (int, string) {
		c := e.client()
		w := c.api("POST", "session", body)
		if c.cookie != nil {
			t.Errorf("%s: a cookie was set on failure", body)
		}
		return w.Code, errorMessage(t, w)
	}
	// Unknown user and wrong password: the same answer.
	codeA, msgA := wrong(`{"username":"alice","password":"wrong"}`)
	codeB, msgB := wrong(`{"username":"mallory","password":"wrong"}`)
	if codeA != http.StatusUnauthorized || codeA != codeB || msgA != msgB || msgA != "invalid username or password" {
		t.Errorf("wrong password: %d %q; unknown user: %d %q; want the same 401", codeA, msgA, codeB, msgB)
	}
	if code, msg := wrong(`{"username":"alice","password":""}`); code != http.StatusBadRequest || !strings.Contains(msg, "required") {
		t.Errorf("empty password: %d %q, want 400 naming the required fields", code, msg)
	}
	if code, _ := wrong(`{"username":"` + strings.Repeat("a", 300) + `","password":"x"}`); code != http.StatusUnauthorized {
		t.Errorf("over-long username: %d, want 401", code)
	}
	calls := e.verifier.Calls.Load()
	wrong(`{"username":"alice","password":""}`)
	wrong(`{"username":"","password":"x"}`)
	if e.verifier.Calls.Load() != calls {
		t.Error("an empty username or password reached the verifier")
	}

	e.verifier.Fail(errDirectoryDown)
	if code, msg := wrong(`{"username":"alice","password":"` + alicePassword + `"}`); code != http.StatusServiceUnavailable || !strings.Contains(msg, "unavailable") {
		t.Errorf("directory down: %d %q, want 503 (never 401)", code, msg)
	}
	if strings.Contains(e.logs.String(), alicePassword) {
		t.Error("the log holds the account password")
	}
}

func TestCookieSecure(t *testing.T) {
	yes, no := true, false
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for _, tc := range []struct {
		name   string
		opts   settings.Options
		tls    bool
		peer   string
		header [2]string
		want   bool
	}{
		{"plain HTTP", settings.Options{}, false, "192.0.2.1:1", [2]string{}, false},
		{"TLS", settings.Options{}, true, "192.0.2.1:1", [2]string{}, true},
		{"trusted proxy says https", settings.Options{ClientAddr: testkit.Resolver(t, proxies, "")}, false, "10.1.2.3:1", [2]string{"X-Forwarded-Proto", "https"}, true},
		{"trusted proxy, Forwarded", settings.Options{ClientAddr: testkit.Resolver(t, proxies, "")}, false, "10.1.2.3:1", [2]string{"Forwarded", "for=192.0.2.1;proto=https"}, true},
		{"trusted proxy says http", settings.Options{ClientAddr: testkit.Resolver(t, proxies, "")}, false, "10.1.2.3:1", [2]string{"X-Forwarded-Proto", "http"}, false},
		{"untrusted peer says https", settings.Options{ClientAddr: testkit.Resolver(t, proxies, "")}, false, "192.0.2.1:1", [2]string{"X-Forwarded-Proto", "https"}, false},
		{"forced on", settings.Options{Secure: &yes}, false, "192.0.2.1:1", [2]string{}, true},
		{"forced off", settings.Options{Secure: &no}, true, "192.0.2.1:1", [2]string{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil, func(o *settings.Options) {
				o.Secure, o.ClientAddr = tc.opts.Secure, tc.opts.ClientAddr
			})
			c := e.client()
			c.addr = tc.peer
			r := c.req("POST", "api/v1/session", "application/json", `{"username":"alice","password":"`+alicePassword+`"}`)
			if tc.tls {
				r.TLS = &tls.ConnectionState{}
			}
			if tc.header[0] != "" {
				r.Header.Set(tc.header[0], tc.header[1])
			}
			w := c.send(r)
			if w.Code != http.StatusOK || c.cookie == nil {
				t.Fatalf("sign in: %d %s", w.Code, w.Body)
			}
			if c.cookie.Secure != tc.want {
				t.Errorf("Secure = %v, want %v", c.cookie.Secure, tc.want)
			}
		})
	}
}

func TestClientAddress(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	for _, tc := range []struct {
		name, peer, header, value, want string
		forwarded                       bool // Header "Forwarded"
	}{
		{"direct", "192.0.2.1:4000", "", "", "192.0.2.1", false},
		{"untrusted peer's header ignored", "192.0.2.1:4000", "X-Forwarded-For", "203.0.113.9", "192.0.2.1", false},
		{"trusted proxy", "10.0.0.1:4000", "X-Forwarded-For", "203.0.113.9", "203.0.113.9", false},
		{"spoofed left entry skipped", "10.0.0.1:4000", "X-Forwarded-For", "198.51.100.1, 203.0.113.9, 10.0.0.2", "203.0.113.9", false},
		{"Forwarded header", "10.0.0.1:4000", "Forwarded", `for="[2001:db8::7]:4711";proto=https`, "2001:db8::7", true},
		{"Forwarded element without for", "10.0.0.1:4000", "Forwarded", `for=203.0.113.9, proto=https`, "10.0.0.1", true},
		// A proxy passes on the header it does not set as the client sent it.
		{"client's XFF through a Forwarded proxy", "10.0.0.1:4000", "X-Forwarded-For", "198.51.100.1", "10.0.0.1", true},
		{"client's Forwarded through an XFF proxy", "10.0.0.1:4000", "Forwarded", "for=198.51.100.1", "10.0.0.1", false},
		{"IPv6 trusted proxy", "[fd00::1]:4000", "X-Forwarded-For", "203.0.113.9", "203.0.113.9", false},
		{"garbage stops the walk", "10.0.0.1:4000", "X-Forwarded-For", "not-an-ip", "10.0.0.1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil, func(o *settings.Options) {
				header := ""
				if tc.forwarded {
					header = "Forwarded"
				}
				o.ClientAddr = testkit.Resolver(t, proxies, header)
			})
			c := e.client()
			c.addr = tc.peer
			r := c.req("POST", "api/v1/session", "application/json", `{"username":"alice","password":"`+alicePassword+`"}`)
			if tc.header != "" {
				r.Header.Set(tc.header, tc.value)
			}
			if w := c.send(r); w.Code != http.StatusOK {
				t.Fatalf("sign in: %d %s", w.Code, w.Body)
			}
			sessions, err := e.m.ListSessions(t.Context(), "u-alice")
			if err != nil || len(sessions) != 1 {
				t.Fatalf("ListSessions = %v, %v", sessions, err)
			}
			if got := sessions[0].LastUsedAddr; got != tc.want {
				t.Errorf("recorded address %q, want %q", got, tc.want)
			}
		})
	}
}

func TestAPIAppPasswordLifecycle(t *testing.T) {
	e := newEnv(t, nil, func(o *settings.Options) {
		o.ServerURL = "https://dav.example.com/"
		o.LoginName = func(u *auth.User) string { return u.Login + "@example.com" }
	})
	c := e.client()
	c.signIn("alice", alicePassword)

	w := c.api("POST", "app-passwords", `{"name":"  My iPhone  ","scopes":["calendars","contacts"],"expiresAt":"2030-01-02T15:04:05Z"}`)
	if w.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	var created struct {
		ID, Name, LoginName, Password, ServerURL, Hint string
		Scopes                                         []string
		ExpiresAt                                      time.Time
	}
	decode(t, w, &created)
	if created.Name != "My iPhone" || created.LoginName != "alice@example.com" || created.ServerURL != "https://dav.example.com/" ||
		!strings.HasPrefix(created.Password, "aap-") || !slices.Equal(created.Scopes, []string{"calendars", "contacts"}) ||
		!created.ExpiresAt.Equal(time.Date(2030, 1, 2, 15, 4, 5, 0, time.UTC)) {
		t.Errorf("created %s", w.Body)
	}
	if loc := w.Header().Get("Location"); loc != "/api/v1/app-passwords/"+created.ID {
		t.Errorf("Location %q", loc)
	}
	if !e.appPasswordWorks("alice", created.Password) {
		t.Fatal("the new app password does not authenticate")
	}

	// The list shows it with its last use, never the secret.
	w = c.api("GET", "app-passwords", "")
	if w.Code != http.StatusOK {
		t.Fatalf("list: %d %s", w.Code, w.Body)
	}
	var list struct {
		AppPasswords []map[string]any `json:"appPasswords"`
	}
	decode(t, w, &list)
	if len(list.AppPasswords) != 1 || list.AppPasswords[0]["id"] != created.ID || list.AppPasswords[0]["name"] != "My iPhone" ||
		list.AppPasswords[0]["lastUsedAddr"] != "192.0.2.99" || list.AppPasswords[0]["lastUsedAt"] == nil {
		t.Errorf("list %s", w.Body)
	}
	if _, ok := list.AppPasswords[0]["password"]; ok || strings.Contains(w.Body.String(), created.Password) ||
		strings.Contains(w.Body.String(), strings.ReplaceAll(created.Password, "-", "")) {
		t.Errorf("the list holds the secret: %s", w.Body)
	}

	w = c.api("PATCH", "app-passwords/"+created.ID, `{"name":"Old iPhone"}`)
	var renamed map[string]any
	decode(t, w, &renamed)
	if w.Code != http.StatusOK || renamed["name"] != "Old iPhone" || renamed["password"] != nil {
		t.Errorf("rename: %d %s", w.Code, w.Body)
	}
	aps, _ := e.m.ListAppPasswords(t.Context(), "u-alice")
	if len(aps) != 1 || aps[0].Name != "Old iPhone" {
		t.Errorf("after rename the Manager lists %+v", aps)
	}

	if w := c.api("DELETE", "app-passwords/"+created.ID, ""); w.Code != http.StatusNoContent || w.Body.Len() != 0 {
		t.Fatalf("revoke: %d %s", w.Code, w.Body)
	}
	if e.appPasswordWorks("alice", created.Password) {
		t.Error("the revoked app password still authenticates")
	}
	if w := c.api("DELETE", "app-passwords/"+created.ID, ""); w.Code != http.StatusNotFound || errorMessage(t, w) != "app password not found" {
		t.Errorf("revoke twice: %d %s, want 404", w.Code, w.Body)
	}
	if w := c.api("GET", "app-passwords", ""); !strings.Contains(w.Body.String(), `"appPasswords":[]`) {
		t.Errorf("empty list: %s, want an empty array", w.Body)
	}
	if logs := e.logs.String(); strings.Contains(logs, created.Password) || strings.Contains(logs, c.cookie.Value) {
		t.Error("the log holds a secret")
	}
}

func TestAPIBadRequests(t *testing.T) {
	e := newEnv(t, nil, nil)
	c := e.client()
	c.signIn("alice", alicePassword)
	id, _ := c.createAppPassword("Laptop")

	for _, tc := range []struct {
		name, method, path, ct, body string
		status                       int
		want                         string
	}{
		{"empty name", "POST", "app-passwords", "", `{"name":""}`, 400, "name is empty"},
		{"blank name", "POST", "app-passwords", "", `{"name":"   "}`, 400, "name is empty"},
		{"missing name", "POST", "app-passwords", "", `{}`, 400, "name is empty"},
		{"over-long name", "POST", "app-passwords", "", `{"name":"` + strings.Repeat("x", 101) + `"}`, 400, "longer than 100"},
		{"control characters", "POST", "app-passwords", "", `{"name":"a\u0007b"}`, 400, "control characters"},
		{"unknown field", "POST", "app-passwords", "", `{"name":"x","admin":true}`, 400, `unknown field "admin"`},
		{"bad JSON", "POST", "app-passwords", "", `{"name":`, 400, "truncated JSON"},
		{"syntax error", "POST", "app-passwords", "", `{"name" "x"}`, 400, "malformed JSON at byte"},
		{"empty body", "POST", "app-passwords", "application/json", ``, 400, "body is empty"},
		{"two objects", "POST", "app-passwords", "", `{"name":"a"}{"name":"b"}`, 400, "exactly one JSON object"},
		{"array", "POST", "app-passwords", "", `[{"name":"a"}]`, 400, "must be a JSON object"},
		{"wrong type", "POST", "app-passwords", "", `{"name":42}`, 400, `field "name" must be a string`},
		{"bad scope", "POST", "app-passwords", "", `{"name":"a","scopes":["Calendars!"]}`, 400, "scope"},
		{"bad expiry", "POST", "app-passwords", "", `{"name":"a","expiresAt":"tomorrow"}`, 400, "RFC 3339"},
		{"past expiry", "POST", "app-passwords", "", `{"name":"a","expiresAt":"2001-01-01T00:00:00Z"}`, 400, "future"},
		{"over 64 KiB", "POST", "app-passwords", "", `{"name":"a","scopes":["` + strings.Repeat("a", 70<<10) + `"]}`, 400, "larger than 64 KiB"},
		{"over 64 KiB of spaces", "PATCH", "app-passwords/" + id, "", `{"name":"a"}` + strings.Repeat(" ", 70<<10), 400, "larger than 64 KiB"},
		{"form instead of JSON", "POST", "app-passwords", "application/x-www-form-urlencoded", `name=x`, 415, "Content-Type: application/json"},
		{"rename empty", "PATCH", "app-passwords/" + id, "", `{"name":""}`, 400, "name is empty"},
		{"rename unknown field", "PATCH", "app-passwords/" + id, "", `{"name":"a","id":"x"}`, 400, `unknown field "id"`},
		{"sign-in unknown field", "POST", "session", "", `{"username":"alice","password":"x","remember":true}`, 400, `unknown field "remember"`},
		{"sign-in bad JSON", "POST", "session", "", `username=alice`, 400, "malformed JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ct := tc.ct
			if ct == "" {
				ct = "application/json"
			}
			r := c.req(tc.method, "api/v1/"+tc.path, ct, tc.body)
			r.Header.Set("X-CSRF-Token", c.csrf)
			w := c.send(r)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d; body %s", w.Code, tc.status, w.Body)
			}
			if msg := errorMessage(t, w); !strings.Contains(msg, tc.want) {
				t.Errorf("error %q, want it to say %q", msg, tc.want)
			}
		})
	}
	aps, _ := e.m.ListAppPasswords(t.Context(), "u-alice")
	if len(aps) != 1 || aps[0].Name != "Laptop" {
		t.Errorf("a refused request changed something: %+v", aps)
	}
}

func TestAPIMethodsAndPaths(t *testing.T) {
	e := newEnv(t, nil, nil)
	c := e.client()
	for _, tc := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{"GET", "session", 405, "POST, DELETE"},
		{"PUT", "app-passwords", 405, "GET, HEAD, POST"},
		{"GET", "app-passwords/abc", 405, "PATCH, DELETE"},
		{"POST", "sessions", 405, "GET, HEAD"},
		{"GET", "sessions/abc", 405, "DELETE"},
		{"GET", "nothing-here", 404, ""},
		{"GET", "app-passwords/a/b", 404, ""},
	} {
		w := c.send(c.req(tc.method, "api/v1/"+tc.path, "", ""))
		if w.Code != tc.status || w.Header().Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d Allow %q, want %d Allow %q", tc.method, tc.path, w.Code, w.Header().Get("Allow"), tc.status, tc.allow)
		}
		errorMessage(t, w)
	}
	// Signed out, every route that needs a session is 401.
	for _, route := range [][2]string{
		{"DELETE", "session"}, {"GET", "app-passwords"}, {"POST", "app-passwords"}, {"PATCH", "app-passwords/x"},
		{"DELETE", "app-passwords/x"}, {"GET", "sessions"}, {"DELETE", "sessions/x"},
	} {
		w := c.send(c.req(route[0], "api/v1/"+route[1], "application/json", `{"name":"x"}`))
		if w.Code != http.StatusUnauthorized || errorMessage(t, w) != "not signed in" || w.Header().Get("WWW-Authenticate") != "" {
			t.Errorf("%s %s signed out: %d %s (WWW-Authenticate %q), want 401 without a Basic prompt", route[0], route[1], w.Code, w.Body, w.Header().Get("WWW-Authenticate"))
		}
	}
	// A forged or malformed cookie is no session, and is cleared.
	c.cookie = &http.Cookie{Name: "appauth_session", Value: "aas-forged"}
	if w := c.api("GET", "sessions", ""); w.Code != http.StatusUnauthorized || c.cookie != nil {
		t.Errorf("forged cookie: %d, cookie kept %v", w.Code, c.cookie)
	}
}

func TestAPICSRF(t *testing.T) {
	e := newEnv(t, nil, nil)
	alice := e.client()
	alice.signIn("alice", alicePassword)
	bob := e.client()
	bob.signIn("bob", bobPassword)
	id, _ := alice.createAppPassword("Laptop")

	for _, tc := range []struct {
		name, method, path, body string
		header                   map[string]string
		want                     string
	}{
		{"create without token", "POST", "app-passwords", `{"name":"x"}`, map[string]string{"X-CSRF-Token": ""}, "X-CSRF-Token"},
		{"create with wrong token", "POST", "app-passwords", `{"name":"x"}`, map[string]string{"X-CSRF-Token": testkit.Typo(alice.csrf)}, "X-CSRF-Token"},
		{"create with another session's token", "POST", "app-passwords", `{"name":"x"}`, map[string]string{"X-CSRF-Token": bob.csrf}, "X-CSRF-Token"},
		{"token in a query", "POST", "app-passwords?csrf=" + alice.csrf, `{"name":"x"}`, map[string]string{"X-CSRF-Token": ""}, "X-CSRF-Token"},
		{"rename without token", "PATCH", "app-passwords/" + id, `{"name":"x"}`, map[string]string{"X-CSRF-Token": ""}, "X-CSRF-Token"},
		{"revoke without token", "DELETE", "app-passwords/" + id, "", map[string]string{"X-CSRF-Token": ""}, "X-CSRF-Token"},
		{"sign out without token", "DELETE", "session", "", map[string]string{"X-CSRF-Token": ""}, "X-CSRF-Token"},
		{"cross-site Origin", "POST", "app-passwords", `{"name":"x"}`, map[string]string{"Origin": "https://evil.example"}, "cross-site"},
		{"cross-site fetch", "DELETE", "app-passwords/" + id, "", map[string]string{"Sec-Fetch-Site": "cross-site"}, "cross-site"},
		{"same-site but other origin", "DELETE", "app-passwords/" + id, "", map[string]string{"Sec-Fetch-Site": "same-site"}, "cross-site"},
		{"cross-site sign-in", "POST", "session", `{"username":"alice","password":"` + alicePassword + `"}`, map[string]string{"Origin": "https://evil.example"}, "cross-site"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ct := ""
			if tc.body != "" {
				ct = "application/json"
			}
			r := alice.req(tc.method, "api/v1/"+tc.path, ct, tc.body)
			r.Header.Set("X-CSRF-Token", alice.csrf)
			for k, v := range tc.header {
				r.Header.Set(k, v)
			}
			w := httptestServe(e, r)
			if w.Code != http.StatusForbidden {
				t.Fatalf("status %d, want 403; body %s", w.Code, w.Body)
			}
			if msg := errorMessage(t, w); !strings.Contains(msg, tc.want) {
				t.Errorf("error %q, want it to say %q", msg, tc.want)
			}
		})
	}
	// Nothing changed, alice is still signed in.
	aps, _ := e.m.ListAppPasswords(t.Context(), "u-alice")
	if len(aps) != 1 || aps[0].Name != "Laptop" {
		t.Errorf("refused requests changed the app passwords: %+v", aps)
	}
	if w := alice.api("GET", "sessions", ""); w.Code != http.StatusOK {
		t.Errorf("alice signed out by a refused request: %d", w.Code)
	}
	// The browser's own same-origin request with the token passes.
	r := alice.req("POST", "api/v1/app-passwords", "application/json", `{"name":"Phone"}`)
	r.Header.Set("X-CSRF-Token", alice.csrf)
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	r.Header.Set("Origin", "http://example.test")
	if w := alice.send(r); w.Code != http.StatusCreated {
		t.Errorf("same-origin create with the token: %d %s", w.Code, w.Body)
	}
}

// httptestServe serves r without touching any client's cookie.
func httptestServe(e *env, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

func TestAPIOtherUsersIDs(t *testing.T) {
	e := newEnv(t, nil, nil)
	alice := e.client()
	alice.signIn("alice", alicePassword)
	bob := e.client()
	bob.ua = "DAVx5/4.4 Bob"
	bob.signIn("bob", bobPassword)
	bobApp, bobSecret := bob.createAppPassword("Bob's phone")
	bobSessions, _ := e.m.ListSessions(t.Context(), "u-bob")

	for _, tc := range []struct{ method, path, body, want string }{
		{"PATCH", "app-passwords/" + bobApp, `{"name":"pwned"}`, "app password not found"},
		{"DELETE", "app-passwords/" + bobApp, "", "app password not found"},
		{"DELETE", "sessions/" + bobSessions[0].ID, "", "session not found"},
		{"PATCH", "app-passwords/unknown", `{"name":"x"}`, "app password not found"},
		{"DELETE", "app-passwords/unknown", "", "app password not found"},
		{"DELETE", "sessions/unknown", "", "session not found"},
		{"DELETE", "app-passwords/" + strings.Repeat("a", 100), "", "app password not found"},
		// An app password's id is not a session's, and the other way round.
		{"DELETE", "sessions/" + bobApp, "", "session not found"},
	} {
		w := alice.api(tc.method, tc.path, tc.body)
		if w.Code != http.StatusNotFound || errorMessage(t, w) != tc.want {
			t.Errorf("%s %s as alice: %d %s, want 404 %q", tc.method, tc.path, w.Code, w.Body, tc.want)
		}
	}
	// Lists are per user.
	if w := alice.api("GET", "app-passwords", ""); strings.Contains(w.Body.String(), bobApp) {
		t.Errorf("alice's list shows bob's app password: %s", w.Body)
	}
	if w := alice.api("GET", "sessions", ""); strings.Contains(w.Body.String(), bobSessions[0].ID) {
		t.Errorf("alice's list shows bob's session: %s", w.Body)
	}
	// Bob's credentials are untouched.
	if !e.appPasswordWorks("bob", bobSecret) {
		t.Error("bob's app password stopped working")
	}
	aps, _ := e.m.ListAppPasswords(t.Context(), "u-bob")
	if len(aps) != 1 || aps[0].Name != "Bob's phone" {
		t.Errorf("bob's app passwords changed: %+v", aps)
	}
	if w := bob.api("GET", "sessions", ""); w.Code != http.StatusOK {
		t.Errorf("bob's session ended: %d", w.Code)
	}
}

func TestAPIRecentAuthRequiredToCreate(t *testing.T) {
	e := newEnv(t, nil, nil)
	c := e.client()
	c.signIn("alice", alicePassword)
	cookie := c.cookie.Value
	c.createAppPassword("Fresh sign-in works")

	e.clock.Add(11 * time.Minute)
	w := c.api("POST", "app-passwords", `{"name":"Later"}`)
	if w.Code != http.StatusForbidden {
		t.Fatalf("create 11 minutes after sign-in: %d %s, want 403", w.Code, w.Body)
	}
	if msg := errorMessage(t, w); !strings.Contains(msg, "recent sign-in required") || !strings.Contains(msg, "session") {
		t.Errorf("error %q should say a recent sign-in is needed and how to get one", msg)
	}
	// Renaming and revoking do not need a recent sign-in.
	if w := c.api("GET", "app-passwords", ""); w.Code != http.StatusOK {
		t.Errorf("list: %d", w.Code)
	}

	// A wrong password does not re-authenticate.
	if w := c.api("POST", "session", `{"username":"alice","password":"wrong"}`); w.Code != http.StatusUnauthorized {
		t.Errorf("re-authenticate with a wrong password: %d", w.Code)
	}
	if w := c.api("POST", "app-passwords", `{"name":"Later"}`); w.Code != http.StatusForbidden {
		t.Errorf("create after a failed re-authentication: %d, want 403", w.Code)
	}

	// Signing in again replaces the session: a copy of the old cookie (a
	// stolen one) neither survives nor gains the recent sign-in.
	c.signIn("alice", alicePassword)
	if c.cookie.Value == cookie {
		t.Error("signing in again kept the session cookie")
	}
	if sessions, _ := e.m.ListSessions(t.Context(), "u-alice"); len(sessions) != 1 {
		t.Errorf("signing in again left %d sessions, want 1", len(sessions))
	}
	if w := c.api("POST", "app-passwords", `{"name":"Later"}`); w.Code != http.StatusCreated {
		t.Errorf("create after signing in again: %d %s", w.Code, w.Body)
	}
	stolen := e.client()
	stolen.cookie = &http.Cookie{Name: "appauth_session", Value: cookie}
	if w := stolen.api("GET", "app-passwords", ""); w.Code != http.StatusUnauthorized {
		t.Errorf("the old cookie after signing in again: %d, want 401", w.Code)
	}
}

// Signing in as another user while holding a session ends the old one.
func TestAPISignInAsAnotherUserEndsOldSession(t *testing.T) {
	e := newEnv(t, nil, nil)
	c := e.client()
	c.signIn("alice", alicePassword)
	old := c.cookie.Value
	c.signIn("bob", bobPassword)
	if c.cookie.Value == old {
		t.Fatal("bob got alice's session")
	}
	if sessions, _ := e.m.ListSessions(t.Context(), "u-alice"); len(sessions) != 0 {
		t.Errorf("alice's old session survived: %+v", sessions)
	}
}

func TestAPISignOutRevokesServerSide(t *testing.T) {
	e := newEnv(t, nil, nil)
	c := e.client()
	c.signIn("alice", alicePassword)
	stolen := c.cookie.Value

	w := c.api("DELETE", "session", "")
	if w.Code != http.StatusNoContent {
		t.Fatalf("sign out: %d %s", w.Code, w.Body)
	}
	var cleared *http.Cookie
	for _, ck := range w.Result().Cookies() {
		if ck.Name == "appauth_session" {
			cleared = ck
		}
	}
	if cleared == nil || cleared.MaxAge >= 0 || cleared.Value != "" || cleared.Path != "/" {
		t.Errorf("sign-out cookie %+v: want it cleared", cleared)
	}
	if sessions, _ := e.m.ListSessions(t.Context(), "u-alice"); len(sessions) != 0 {
		t.Errorf("the session is still stored: %+v", sessions)
	}
	// A copy of the old cookie no longer works.
	c.cookie = &http.Cookie{Name: "appauth_session", Value: stolen}
	if w := c.api("GET", "app-passwords", ""); w.Code != http.StatusUnauthorized {
		t.Errorf("old cookie after sign-out: %d, want 401", w.Code)
	}
}

func TestAPISessions(t *testing.T) {
	e := newEnv(t, nil, nil)
	laptop := e.client()
	laptop.signIn("alice", alicePassword)
	phone := e.client()
	phone.ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Version/18.0 Mobile Safari/604.1"
	phone.addr = "198.51.100.5:443"
	phone.signIn("alice", alicePassword)

	w := laptop.api("GET", "sessions", "")
	var list struct {
		Sessions []struct {
			ID             string
			Current        bool
			LastUsedAddr   string
			LastUsedClient string
			CreatedAt      time.Time
		}
	}
	decode(t, w, &list)
	if len(list.Sessions) != 2 {
		t.Fatalf("sessions %s, want 2", w.Body)
	}
	var current, other int
	var phoneID string
	for _, s := range list.Sessions {
		if s.Current {
			current++
			if s.LastUsedClient != laptop.ua {
				t.Errorf("current session is not the laptop's: %+v", s)
			}
		} else {
			other++
			phoneID = s.ID
			if s.LastUsedAddr != "198.51.100.5" || s.LastUsedClient != phone.ua || s.CreatedAt.IsZero() {
				t.Errorf("phone session %+v", s)
			}
		}
	}
	if current != 1 || other != 1 {
		t.Errorf("current %d other %d, want one each: %s", current, other, w.Body)
	}
	if strings.Contains(w.Body.String(), laptop.cookie.Value) || strings.Contains(w.Body.String(), phone.cookie.Value) {
		t.Error("the sessions list holds a session secret")
	}

	if w := laptop.api("DELETE", "sessions/"+phoneID, ""); w.Code != http.StatusNoContent {
		t.Fatalf("revoke phone session: %d %s", w.Code, w.Body)
	}
	if w := phone.api("GET", "sessions", ""); w.Code != http.StatusUnauthorized {
		t.Errorf("phone after revoke: %d, want 401", w.Code)
	}
	if laptop.cookie == nil {
		t.Fatal("revoking another session cleared this one's cookie")
	}
	// Revoking this session signs out.
	sessions, _ := e.m.ListSessions(t.Context(), "u-alice")
	if w := laptop.api("DELETE", "sessions/"+sessions[0].ID, ""); w.Code != http.StatusNoContent || laptop.cookie != nil {
		t.Errorf("revoke this session: %d, cookie %v", w.Code, laptop.cookie)
	}
	if sessions, _ := e.m.ListSessions(t.Context(), "u-alice"); len(sessions) != 0 {
		t.Errorf("sessions left: %+v", sessions)
	}
}

func TestSignInThrottled(t *testing.T) {
	lim := &testkit.Limiter{}
	e := newEnv(t, func(o *auth.Options) { o.Limiter = lim }, nil)
	c := e.client()
	for range 3 {
		if w := c.api("POST", "session", `{"username":"alice","password":"wrong"}`); w.Code != http.StatusUnauthorized {
			t.Fatalf("wrong password: %d", w.Code)
		}
	}
	// The limiter was told of the three failures; now it throttles.
	if f, s := lim.Counts(); f != 3 || s != 0 {
		t.Fatalf("limiter saw %d failures %d successes, want 3 and 0", f, s)
	}
	lim.Refuse(&auth.ThrottleError{RetryAfter: 90 * time.Second})
	calls := e.verifier.Calls.Load()
	w := c.api("POST", "session", `{"username":"alice","password":"`+alicePassword+`"}`)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "90" || c.cookie != nil {
		t.Fatalf("throttled sign-in: %d Retry-After %q cookie %v, want 429, 90 and no session", w.Code, w.Header().Get("Retry-After"), c.cookie)
	}
	if msg := errorMessage(t, w); !strings.Contains(msg, "too many attempts") {
		t.Errorf("error %q", msg)
	}
	if e.verifier.Calls.Load() != calls {
		t.Error("a throttled attempt reached the directory")
	}
	// The form says the same in HTML.
	w = c.form("signin", "username", "alice", "password", alicePassword)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "90" || !strings.Contains(w.Body.String(), "Too many attempts") {
		t.Errorf("throttled form: %d %q", w.Code, w.Header().Get("Retry-After"))
	}
	if f, s := lim.Counts(); f != 3 || s != 0 {
		t.Errorf("limiter saw %d failures %d successes, want 3 and 0", f, s)
	}
	seen := lim.Allowed()[0]
	if seen.Username != "alice" || seen.RemoteAddr != "192.0.2.10" || seen.UserAgent != c.ua {
		t.Errorf("limiter saw %+v", seen)
	}

	// A limiter that cannot decide fails closed, as an outage.
	lim.Refuse(errorString("throttle storage full"))
	if w := c.api("POST", "session", `{"username":"bob","password":"`+bobPassword+`"}`); w.Code != http.StatusServiceUnavailable {
		t.Errorf("limiter error: %d, want 503", w.Code)
	}

	// Successes are reported.
	lim2 := &testkit.Limiter{}
	e2 := newEnv(t, func(o *auth.Options) { o.Limiter = lim2 }, nil)
	e2.client().signIn("alice", alicePassword)
	if f, s := lim2.Counts(); f != 0 || s != 1 {
		t.Errorf("limiter saw %d failures %d successes after a good sign-in, want 0 and 1", f, s)
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }

func TestAPISessionStoreUnavailable(t *testing.T) {
	e := newEnv(t, func(o *auth.Options) { o.CacheSize = -1 }, nil)
	c := e.client()
	c.signIn("alice", alicePassword)
	e.store.Fail(auth.ErrUnavailable)
	w := c.api("GET", "app-passwords", "")
	if w.Code != http.StatusServiceUnavailable || c.cookie == nil {
		t.Errorf("store down: %d (cookie kept: %v), want 503 and the cookie kept", w.Code, c.cookie != nil)
	}
	errorMessage(t, w)
	e.store.Fail(nil)
	if w := c.api("GET", "app-passwords", ""); w.Code != http.StatusOK {
		t.Errorf("store back: %d", w.Code)
	}
}

// TestSignOutDuringOutage: when the session cannot be ended on the server,
// the answer is 503 and the cookie stays, so the person knows they are
// still signed in and can try again; nothing claims a sign-out that did not
// happen.
func TestSignOutDuringOutage(t *testing.T) {
	e := newEnv(t, nil, nil)
	c := e.client()
	c.signIn("alice", alicePassword)
	e.store.Fail(auth.ErrUnavailable)
	if w := c.api("DELETE", "session", ""); w.Code != http.StatusServiceUnavailable || c.cookie == nil {
		t.Fatalf("sign-out with the store down: %d (cookie kept: %v), want 503 and the cookie kept", w.Code, c.cookie != nil)
	}
	if w := c.form("signout"); w.Code != http.StatusServiceUnavailable || c.cookie == nil {
		t.Fatalf("sign-out form with the store down: %d (cookie kept: %v), want 503 and the cookie kept", w.Code, c.cookie != nil)
	}
	e.store.Fail(nil)
	old := *c.cookie
	if w := c.api("DELETE", "session", ""); w.Code != http.StatusNoContent && w.Code != http.StatusOK || c.cookie != nil {
		t.Fatalf("sign-out: %d, cookie cleared: %v", w.Code, c.cookie == nil)
	}
	c.cookie = &old
	if w := c.api("GET", "app-passwords", ""); w.Code != http.StatusUnauthorized {
		t.Errorf("the signed-out session still works: %d", w.Code)
	}
}

func TestAPIResponsesAreValidJSON(t *testing.T) {
	// Names with HTML and quotes come back escaped and intact.
	e := newEnv(t, nil, nil)
	c := e.client()
	c.signIn("alice", alicePassword)
	name := `<script>alert("x")</script> & "quotes" ✓`
	w := c.api("POST", "app-passwords", mustJSON(map[string]string{"name": name}))
	if strings.Contains(w.Body.String(), "<script>") {
		t.Errorf("HTML not escaped in JSON: %s", w.Body)
	}
	var resp map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil || resp["name"] != name {
		t.Errorf("name round trip: %v %v", resp["name"], err)
	}
}
