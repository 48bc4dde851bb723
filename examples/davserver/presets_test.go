package main

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var (
	pageCSRF         = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	pageSecret       = regexp.MustCompile(`<code id="created-password" class="password">([^<]+)</code>`)
	pagePresets      = regexp.MustCompile(`name="access" value="([^"]+)"`)
	pageProfile      = regexp.MustCompile(`href="(/app-passwords/[^"]+/profile)"`)
	profilePrincipal = regexp.MustCompile(`<key>(?:CalDAV|CardDAV)PrincipalURL</key><string>([^<]+)</string>`)
	bannerSignIn     = regexp.MustCompile(`Sign-in and app passwords:\s+(\S+)`)
)

// startInProcess runs the server in this process with args (plus an empty
// data folder and a free port) until the test ends, and returns its base
// URL and the demo user's password from the banner.
func startInProcess(t *testing.T, args ...string) (base, password string) {
	t.Helper()
	cfg, err := parseConfig(append([]string{"-data", t.TempDir(), "-addr", "127.0.0.1:0"}, args...), noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	stdout := &signalWriter{match: "never the account password", seen: make(chan struct{})}
	logs := &signalWriter{match: "\x00", seen: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, stdout, logs) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	select {
	case <-stdout.seen:
	case err := <-done:
		t.Fatalf("the server did not start: %v\n%s", err, logs.String())
	}
	banner := stdout.String()
	m := bannerSignIn.FindStringSubmatch(banner)
	password = bannerValue(banner, "password")
	if m == nil || password == "" {
		t.Fatalf("banner without URL or demo password:\n%s", banner)
	}
	return m[1], password
}

// pageClient is a browser stand-in: it signs in through the page's form,
// keeps the cookie, and follows redirects.
type pageClient struct {
	t    *testing.T
	base string
	hc   *http.Client
	csrf string
}

func signInPage(t *testing.T, base, user, password string) *pageClient {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &pageClient{t: t, base: base, hc: &http.Client{Jar: jar}}
	body := c.post("signin", url.Values{"username": {user}, "password": {password}})
	if m := pageCSRF.FindStringSubmatch(body); m != nil {
		c.csrf = html.UnescapeString(m[1])
	}
	if c.csrf == "" {
		t.Fatalf("signed in, but no form with a CSRF token on %.500s", body)
	}
	return c
}

func (c *pageClient) post(path string, form url.Values) string {
	c.t.Helper()
	if c.csrf != "" {
		form.Set("csrf", c.csrf)
	}
	req, _ := http.NewRequest("POST", c.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req)
}

func (c *pageClient) get(path string) string {
	c.t.Helper()
	req, _ := http.NewRequest("GET", c.base+strings.TrimPrefix(path, "/"), nil)
	return c.do(req)
}

func (c *pageClient) do(req *http.Request) string {
	c.t.Helper()
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("%s %s: %d %.300s", req.Method, req.URL.Path, resp.StatusCode, b)
	}
	return string(b)
}

// davStatus sends one DAV request with Basic auth and returns its status.
func davStatus(t *testing.T, method, u, user, password, body string) int {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	req.SetBasicAuth(user, password)
	if method == "PROPFIND" {
		req.Header.Set("Depth", "0")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestPagePresetsOnTheServer creates an app password with each access
// preset through the example server's page, as a person would, and checks
// with DAV requests that it reaches what the preset promises and gets 403
// everywhere else: reads in each area, and a write in calendars and files.
func TestPagePresetsOnTheServer(t *testing.T) {
	base, password := startInProcess(t)
	web := signInPage(t, base, "demo", password)
	// What each preset promises, written here independently of the list in
	// auth/settings/access.go.
	type reach struct{ calendars, contacts, files, write bool }
	want := map[string]reach{
		"everything":      {true, true, true, true},
		"dav":             {true, true, false, true},
		"files":           {false, false, true, true},
		"read-only":       {true, true, true, false},
		"dav-read-only":   {true, true, false, false},
		"files-read-only": {false, false, true, false},
		"network":         {false, false, false, false}, // Wi-Fi and VPN: no DAV area
	}
	var offered []string
	for _, m := range pagePresets.FindAllStringSubmatch(web.get(""), -1) {
		offered = append(offered, m[1])
	}
	if len(offered) != len(want) {
		t.Errorf("the page offers %v; this test checks %d presets: add the new one's promise here", offered, len(want))
	}
	dav := base + "dav/"
	status := func(ok bool, okStatus int) int {
		if ok {
			return okStatus
		}
		return http.StatusForbidden
	}
	for _, id := range offered {
		t.Run(id, func(t *testing.T) {
			r, ok := want[id]
			if !ok {
				t.Fatalf("preset %q is offered but its promise is not written in this test", id)
			}
			page := web.post("app-passwords", url.Values{"name": {"Preset " + id}, "access": {id}, "expires": {"90d"}})
			m := pageSecret.FindStringSubmatch(page)
			if m == nil {
				t.Fatalf("no new password on the page: %.500s", page)
			}
			secret := html.UnescapeString(m[1])
			// Apple's profile holds calendar and contact accounts: offered
			// only where the password reaches one of them.
			if got := pageProfile.FindStringSubmatch(page); (got != nil) != (r.calendars || r.contacts) {
				t.Errorf("profile offered: %v", got)
			} else if got != nil {
				// The profile's principal is where this server answers
				// discovery for this password.
				profile := web.get(got[1])
				pm := profilePrincipal.FindStringSubmatch(profile)
				if pm == nil || !strings.HasPrefix(pm[1], base) {
					t.Fatalf("profile without a principal URL on %s: %s", base, profile)
				}
				if s := davStatus(t, "PROPFIND", html.UnescapeString(pm[1]), "demo", secret, ""); s != http.StatusMultiStatus {
					t.Errorf("PROPFIND the profile's principal %s: %d, want 207", pm[1], s)
				}
			}
			checks := []struct {
				method, path, body string
				want               int
			}{
				{"PROPFIND", "calendars/demo/", "", status(r.calendars, http.StatusMultiStatus)},
				{"PROPFIND", "contacts/demo/", "", status(r.contacts, http.StatusMultiStatus)},
				{"PROPFIND", "files/demo/", "", status(r.files, http.StatusMultiStatus)},
				{"MKCALENDAR", "calendars/demo/cal-" + id + "/", "", status(r.calendars && r.write, http.StatusCreated)},
				{"PUT", "files/demo/" + id + ".txt", "hello", status(r.files && r.write, http.StatusCreated)},
				{"PROPFIND", "", "", http.StatusMultiStatus}, // discovery works with any
			}
			for _, c := range checks {
				if got := davStatus(t, c.method, dav+c.path, "demo", secret, c.body); got != c.want {
					t.Errorf("%s /dav/%s: %d, want %d", c.method, c.path, got, c.want)
				}
			}
		})
	}
	// The list says each one's access in words.
	list := web.get("security")
	for _, words := range []string{"Access: Everything", "Access: Calendars and contacts", "Access: Files only",
		"Access: Calendars, contacts and files, read-only", "Access: Calendars and contacts, read-only", "Access: Files only, read-only"} {
		if !strings.Contains(list, words) {
			t.Errorf("the list lacks %q", words)
		}
	}
	if slices.Contains(offered, "") {
		t.Error("an empty preset ID")
	}
}

// TestExpireUnusedDays: -expire-unused-days (APPAUTH_EXPIRE_UNUSED_DAYS)
// reaches the Manager, so the list says until when a password may go
// unused; it is off by default, and a negative number is refused.
func TestExpireUnusedDays(t *testing.T) {
	env := func(name string) string {
		if name == "APPAUTH_EXPIRE_UNUSED_DAYS" {
			return "365"
		}
		return ""
	}
	cfg, err := parseConfig([]string{"-data", t.TempDir()}, env, io.Discard)
	if err != nil || cfg.expireUnusedDays != 365 {
		t.Fatalf("APPAUTH_EXPIRE_UNUSED_DAYS=365: %v, %+v", err, cfg)
	}
	if _, err := parseConfig([]string{"-data", t.TempDir(), "-expire-unused-days", "-1"}, noEnv, io.Discard); err == nil ||
		!strings.Contains(err.Error(), "-expire-unused-days") {
		t.Errorf("-expire-unused-days -1: %v, want an error naming the flag", err)
	}
	for _, tc := range []struct {
		args []string
		want bool
	}{{nil, false}, {[]string{"-expire-unused-days", "365"}, true}} {
		base, password := startInProcess(t, tc.args...)
		web := signInPage(t, base, "demo", password)
		web.post("app-passwords", url.Values{"name": {"Phone"}})
		if got := strings.Contains(web.get("security"), "Expires if unused until"); got != tc.want {
			t.Errorf("%v: the list says \"Expires if unused until\": %v, want %v", tc.args, got, tc.want)
		}
	}
}
