package settings_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/httpauth"
	"github.com/appauth/appauth/auth/settings"
	"github.com/appauth/appauth/auth/throttle"
	"github.com/appauth/appauth/internal/browser"
)

// EnvUpdateScreenshot, when "1", makes TestBrowserUserStory write the
// screenshots of the pages to docs/settings.png (desktop width),
// docs/settings-phone.png (390px) and docs/signin.png in the repository.
const EnvUpdateScreenshot = "APPAUTH_UPDATE_SCREENSHOT"

// userStoryServer serves the settings page at / and a DAV stand-in at /dav/
// behind the Basic-auth middleware, on loopback.
func userStoryServer(t *testing.T, e *env) *httptest.Server {
	t.Helper()
	mw, err := httpauth.New(e.m, nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", e.h)
	mux.Handle("/dav/", mw.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := httpauth.PrincipalFromContext(r.Context())
		if !ok {
			http.Error(w, "no principal", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "hello %s via %s", p.User.Login, p.Method)
	})))
	srv := httptest.NewServer(mux) // 127.0.0.1 only
	t.Cleanup(srv.Close)
	return srv
}

// davGet makes a Basic-auth request to /dav/ and returns the status and body.
func davGet(t *testing.T, srv *httptest.Server, user, password string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "PROPFIND", srv.URL+"/dav/calendars/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(user, password)
	req.Header.Set("User-Agent", "DAVx5/4.4.2-ose (2024/10/01; dav4jvm; okhttp/4.12.0) Android/15")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// newBrowser starts headless Chromium for one test, with stable
// rendering for the screenshots.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	return browser.New(t, chromedp.Flag("hide-scrollbars", true), chromedp.Flag("force-color-profile", "srgb"))
}

// seed gives alice other devices and a second browser session, so the
// list (and the screenshot) looks like a real account.
func seed(t *testing.T, e *env) {
	t.Helper()
	ctx := t.Context()
	for _, d := range []struct{ name, ua, addr string }{
		{"Work laptop", "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Thunderbird/128.4.0", "203.0.113.24"},
		{"Pixel 8", "DAVx5/4.4.2-ose (2024/10/01; dav4jvm; okhttp/4.12.0) Android/15", "198.51.100.17"},
	} {
		_, secret, err := e.m.IssueAppPassword(ctx, e.alice, auth.IssueRequest{Name: d.name})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.m.Authenticate(ctx, auth.Attempt{Username: "alice", Password: secret, RemoteAddr: d.addr, UserAgent: d.ua}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := e.m.CreateSession(ctx, e.alice, "198.51.100.17",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"); err != nil {
		t.Fatal(err)
	}
}

// TestBrowserUserStory walks the user story of docs/architecture.md in headless
// Chromium: sign in, open Devices & sessions, create "My iPhone", read the
// password from the page, use it over Basic auth, revoke it in the page.
func TestBrowserUserStory(t *testing.T) {
	ctx := newBrowser(t)
	e := newEnv(t, func(o *auth.Options) { o.Now = time.Now }, func(o *settings.Options) {
		o.Now = time.Now
		o.Title = "Example Cloud"
	})
	seed(t, e)
	srv := userStoryServer(t, e)
	shots := t.TempDir()
	id := func(s string) chromedp.ID { return chromedp.ID(s) }
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }

	// 1. Sign in through the single sign-on page.
	browser.Do(t, ctx, "open the sign-in page",
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(id("username")),
	)
	if os.Getenv(EnvUpdateScreenshot) == "1" {
		screenshot(t, ctx, filepath.Join("..", "..", "docs", "signin.png"), 1024)
		browser.Do(t, ctx, "desktop width", chromedp.EmulateViewport(1280, 900))
	}
	browser.Do(t, ctx, "sign in",
		chromedp.SendKeys(id("username"), "alice"),
		chromedp.SendKeys(id("password"), alicePassword),
		chromedp.Click(id("signin-submit")),
		chromedp.WaitVisible(id("devices-h")),
	)
	// 2. Settings > Security > Devices & sessions, with this session marked.
	if heading := browser.Get(t, ctx, "heading", chromedp.Text(id("devices-h"))); heading != "Devices & sessions" {
		t.Errorf("heading %q", heading)
	}
	if crumb := browser.Get(t, ctx, "breadcrumb", chromedp.Text(css(`nav[aria-label="Breadcrumb"]`))); !strings.Contains(crumb, "Settings") || !strings.Contains(crumb, "Security") {
		t.Errorf("breadcrumb %q", crumb)
	}
	sessionsText := browser.Get(t, ctx, "sessions", chromedp.Text(id("sessions")))
	if !strings.Contains(sessionsText, "This session") || !strings.Contains(sessionsText, "Chrome (headless) on Linux") ||
		!strings.Contains(sessionsText, "Safari on iPhone") {
		t.Errorf("sessions list: %q", sessionsText)
	}
	// The script (a file, allowed by the strict CSP) shows times relative.
	browser.Do(t, ctx, "script ran", chromedp.Poll[chromedp.Void](`document.querySelector("#sessions time[data-relative]").textContent === "just now"`))

	// 3. Type an app name and create; the username and password show once.
	browser.Do(t, ctx, "create My iPhone",
		chromedp.SendKeys(id("app-name"), "My iPhone"),
		chromedp.Click(id("create-submit")),
		chromedp.WaitVisible(id("created-password")),
	)
	name := browser.Get(t, ctx, "created name", chromedp.Text(id("created-name")))
	login := browser.Get(t, ctx, "created login", chromedp.Text(id("created-login")))
	secret := browser.Get(t, ctx, "created password", chromedp.Text(id("created-password")))
	if name != "My iPhone" || login != "alice" || !strings.HasPrefix(secret, "aap-") {
		t.Fatalf("created %q for %q: %q", name, login, secret)
	}
	browser.Do(t, ctx, "copy",
		chromedp.Click(id("copy-password")),
		chromedp.Poll[chromedp.Void](`document.querySelector(".copied").textContent !== ""`),
	)
	screenshot(t, ctx, filepath.Join(shots, "created.png"), 1024)
	if os.Getenv(EnvUpdateScreenshot) == "1" {
		screenshot(t, ctx, filepath.Join("..", "..", "docs", "settings.png"), 1024)
		t.Logf("wrote docs/settings.png")
	}
	screenshot(t, ctx, filepath.Join(shots, "phone.png"), 390)
	if os.Getenv(EnvUpdateScreenshot) == "1" {
		screenshot(t, ctx, filepath.Join("..", "..", "docs", "settings-phone.png"), 390)
	}
	if w := browser.Get(t, ctx, "phone width", chromedp.Evaluate[int](`document.documentElement.scrollWidth`)); w > 390 {
		t.Errorf("at 390px the page is %dpx wide: it scrolls sideways on a phone", w)
	}
	browser.Do(t, ctx, "desktop width", chromedp.EmulateViewport(1024, 800))

	// 4. The device uses the username and password: 200 over Basic auth.
	if status, body := davGet(t, srv, login, secret); status != http.StatusOK || body != "hello alice via app_password" {
		t.Fatalf("DAV with the new app password: %d %q", status, body)
	}
	// 5. The account password is refused on DAV.
	if status, _ := davGet(t, srv, "alice", alicePassword); status != http.StatusUnauthorized {
		t.Errorf("DAV with the account password: %d, want 401", status)
	}

	// "Done" closes the result; the list shows the new device's use, not the secret.
	aps, err := e.m.ListAppPasswords(t.Context(), "u-alice")
	if err != nil || len(aps) != 3 {
		t.Fatalf("app passwords %v, %v", aps, err)
	}
	item := `li[data-id="` + aps[2].ID + `"]`
	browser.Do(t, ctx, "done",
		chromedp.Click(id("created-done")),
		chromedp.WaitNotPresent(id("created-password")),
		chromedp.WaitVisible(css(item)),
	)
	if html := browser.Get(t, ctx, "page", chromedp.OuterHTML(css("html"))); strings.Contains(html, secret) {
		t.Error("the password is still on the page after Done")
	}
	if text := browser.Get(t, ctx, "item", chromedp.Text(css(item))); !strings.Contains(text, "My iPhone") ||
		!strings.Contains(text, "127.0.0.1") || !strings.Contains(text, "DAVx⁵ on Android") {
		t.Errorf("list item after use: %q", text)
	}
	screenshot(t, ctx, filepath.Join(shots, "settings.png"), 1024)

	// 6. Lost phone: revoke it in the page; it stops working, others do not.
	browser.Do(t, ctx, "revoke My iPhone",
		chromedp.Click(css(item+` form.action button`)),
		chromedp.WaitVisible(css(".notice")),
		chromedp.WaitNotPresent(css(item)),
	)
	if notice := browser.Get(t, ctx, "notice", chromedp.Text(css(".notice"))); !strings.Contains(notice, "App password revoked") {
		t.Errorf("notice %q", notice)
	}
	if status, _ := davGet(t, srv, login, secret); status != http.StatusUnauthorized {
		t.Errorf("DAV with the revoked app password: %d, want 401", status)
	}
	if aps, _ := e.m.ListAppPasswords(t.Context(), "u-alice"); len(aps) != 2 {
		t.Errorf("%d app passwords left, want the other 2", len(aps))
	}

	// Sign out ends the session on the server.
	browser.Do(t, ctx, "sign out",
		chromedp.Click(css(`header form button`)),
		chromedp.WaitVisible(id("username")),
	)
	sessions, _ := e.m.ListSessions(t.Context(), "u-alice")
	if len(sessions) != 1 || strings.Contains(sessions[0].LastUsedClient, "HeadlessChrome") {
		t.Errorf("after sign-out want only the seeded iPhone session, got %+v", sessions)
	}
	if logs := e.logs.String(); strings.Contains(logs, secret) || strings.Contains(logs, alicePassword) {
		t.Error("the log holds a secret")
	}
}

// screenshot writes a full-page PNG of the current page at the given
// viewport width.
func screenshot(t *testing.T, ctx context.Context, path string, width int64) {
	t.Helper()
	browser.Do(t, ctx, "viewport for "+filepath.Base(path), chromedp.EmulateViewport(width, 800))
	png := browser.Get(t, ctx, "screenshot "+filepath.Base(path), chromedp.FullScreenshot(100))
	if len(png) < 1000 || string(png[1:4]) != "PNG" {
		t.Fatalf("screenshot %s: %d bytes, not a PNG", path, len(png))
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// The sign-in page with the real Throttle (package auth/throttle): guessing from one address
// is throttled, a good sign-in from another address works at once.
func TestSignInWithHTTPAuthThrottle(t *testing.T) {
	limiter, err := throttle.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(o *auth.Options) { o.Limiter = limiter }, nil)
	attacker := e.client()
	attacker.addr = "203.0.113.66:4000"
	var status int
	for i := range 50 {
		w := attacker.api("POST", "session", fmt.Sprintf(`{"username":"alice","password":"guess %d"}`, i))
		status = w.Code
		if status == http.StatusTooManyRequests {
			if w.Header().Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
			break
		}
		if status != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i, status)
		}
	}
	if status != http.StatusTooManyRequests {
		t.Fatal("50 wrong guesses from one address were not throttled")
	}
	// Even the right password is refused from there for now.
	if w := attacker.api("POST", "session", `{"username":"alice","password":"`+alicePassword+`"}`); w.Code != http.StatusTooManyRequests {
		t.Errorf("right password from the throttled address: %d, want 429", w.Code)
	}
	alice := e.client()
	alice.addr = "192.0.2.50:5000"
	alice.signIn("alice", alicePassword)
}
