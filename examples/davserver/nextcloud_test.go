package main

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/appauth/appauth/internal/browser"
	"github.com/appauth/appauth/internal/testenv"
	"github.com/appauth/appauth/internal/testkit"
)

const (
	uaDAVx5   = "DAVx5/4.4.2-ose (2024/10/01; dav4jvm; okhttp/4.12.0) Android/15"
	uaDesktop = "Mozilla/5.0 (Linux) mirall/3.7.3 (Nextcloud, debian-6.1.0 ClientArchitecture: x86_64 OsArchitecture: x86_64)"
)

// dav makes a DAV request with Basic auth and returns status and body.
func dav(t *testing.T, method, url, user, password, depth, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(user, password)
	if depth != "" {
		req.Header.Set("Depth", depth)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/xml; charset=utf-8")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const (
	propfindPrincipal = `<?xml version="1.0" encoding="utf-8"?><d:propfind xmlns:d="DAV:"><d:prop><d:current-user-principal/></d:prop></d:propfind>`
	propfindHomes     = `<?xml version="1.0" encoding="utf-8"?><d:propfind xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav" xmlns:a="urn:ietf:params:xml:ns:carddav"><d:prop><c:calendar-home-set/><a:addressbook-home-set/></d:prop></d:propfind>`
)

// TestNextcloudClients runs the built server against what Nextcloud
// clients do: DAVx⁵'s Login Flow (one poll, after the browser) and the
// desktop client's (polls until granted), both through the grant page in
// Chromium; DAVx⁵'s discovery at /remote.php/dav with the delivered
// password; a denied flow; nextcloudcmd syncing files both ways with the
// desktop's password; a scoped password refused the files; and the client
// removing its own password.
func TestNextcloudClients(t *testing.T) {
	nextcloudcmd := testenv.Program(t, "nextcloudcmd", "--version")
	tab := browser.New(t)
	bin := buildServer(t)
	// At debug level every request has its own log line, which the test
	// reads (at info, successful ones are coalesced).
	srv := startServerWith(t, bin, t.TempDir(), nil, []string{"APPAUTH_ADDR=127.0.0.1:0", "APPAUTH_LOG_LEVEL=debug"})
	user, password := bannerValue(srv.banner, "username"), bannerValue(srv.banner, "password")
	base := strings.TrimSuffix(srv.base, "/") // what a person types into the app

	// DAVx⁵: start, sign in and grant in the browser, one poll.
	davx5 := &testkit.LoginFlowClient{UserAgent: uaDAVx5}
	if err := davx5.Initiate(base); err != nil {
		t.Fatal(err)
	}
	err := chromedp.Do(tab,
		chromedp.Navigate(davx5.Login),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), user),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("signin-submit")),
		chromedp.WaitVisible(chromedp.ID("grant-submit")),
	)
	if err != nil {
		t.Fatalf("browser: sign in: %v\nstderr:\n%s", err, srv.stderr)
	}
	if client, err := chromedp.Run(tab, chromedp.Text(chromedp.ID("grant-client"))); err != nil || client != "DAVx⁵ on Android" {
		t.Errorf("grant page names the client %q (%v), want DAVx⁵ on Android", client, err)
	}
	if err := chromedp.Do(tab, chromedp.Click(chromedp.ID("access-dav")), chromedp.Click(chromedp.ID("grant-submit")),
		chromedp.WaitVisible(chromedp.ID("grant-done"))); err != nil {
		t.Fatalf("browser: grant: %v", err)
	}
	status, got, err := davx5.Poll()
	if status != http.StatusOK || err != nil {
		t.Fatalf("DAVx⁵'s poll after the grant: %d %v", status, err)
	}
	if got.Server != base || got.LoginName != user {
		t.Errorf("poll: server %q login %q, want %q %q", got.Server, got.LoginName, base, user)
	}
	if status, _, _ := davx5.Poll(); status != http.StatusNotFound {
		t.Errorf("replayed poll: %d, want 404", status)
	}

	// DAVx⁵'s discovery: server + "remote.php/dav", then the principal.
	st, body := dav(t, "PROPFIND", got.Server+"/remote.php/dav", got.LoginName, got.AppPassword, "0", propfindPrincipal)
	principal := "/remote.php/dav/principals/" + user + "/"
	if st != http.StatusMultiStatus || !strings.Contains(body, principal) {
		t.Fatalf("PROPFIND /remote.php/dav: %d %s, want 207 naming %s", st, body, principal)
	}
	st, body = dav(t, "PROPFIND", got.Server+principal, got.LoginName, got.AppPassword, "0", propfindHomes)
	for _, home := range []string{"/remote.php/dav/calendars/" + user + "/", "/remote.php/dav/contacts/" + user + "/"} {
		if st != http.StatusMultiStatus || !strings.Contains(body, home) {
			t.Errorf("PROPFIND %s: %d, want 207 naming %s\n%s", principal, st, home, body)
		}
	}
	if st, _ := dav(t, "PROPFIND", got.Server+"/remote.php/dav/calendars/"+user+"/", got.LoginName, got.AppPassword, "1", ""); st != http.StatusMultiStatus {
		t.Errorf("PROPFIND of the calendar home: %d, want 207", st)
	}
	// "Calendars and contacts" reach no files, under any of the paths.
	for _, p := range []string{"/remote.php/dav/files/" + user + "/", "/remote.php/webdav/", "/dav/files/" + user + "/"} {
		if st, _ := dav(t, "PROPFIND", got.Server+p, got.LoginName, got.AppPassword, "1", ""); st != http.StatusForbidden {
			t.Errorf("PROPFIND %s with a calendars-and-contacts password: %d, want 403", p, st)
		}
	}

	// A denied flow: nothing to collect.
	denied := &testkit.LoginFlowClient{UserAgent: "Nextcloud-android/3.30.0"}
	if err := denied.Initiate(base); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(tab, chromedp.Navigate(denied.Login), chromedp.WaitVisible(chromedp.ID("deny-submit")),
		chromedp.Click(chromedp.ID("deny-submit")), chromedp.WaitVisible(chromedp.ID("grant-denied"))); err != nil {
		t.Fatalf("deny in the browser: %v", err)
	}
	if status, _, _ := denied.Poll(); status != http.StatusNotFound {
		t.Errorf("poll of a denied flow: %d, want 404", status)
	}

	// The desktop client polls before the grant (404), then gets it.
	desktop := &testkit.LoginFlowClient{UserAgent: uaDesktop}
	if err := desktop.Initiate(base); err != nil {
		t.Fatal(err)
	}
	if status, _, _ := desktop.Poll(); status != http.StatusNotFound {
		t.Fatalf("desktop poll before the grant: %d, want 404", status)
	}
	if err := chromedp.Do(tab, chromedp.Navigate(desktop.Login), chromedp.WaitVisible(chromedp.ID("grant-submit")),
		chromedp.Click(chromedp.ID("grant-submit")), chromedp.WaitVisible(chromedp.ID("grant-done"))); err != nil {
		t.Fatalf("desktop grant in the browser: %v", err)
	}
	status, desk, err := desktop.Poll()
	if status != http.StatusOK || err != nil {
		t.Fatalf("desktop poll after the grant: %d %v", status, err)
	}

	// nextcloudcmd syncs with the desktop's app password: up, then down.
	home, local := t.TempDir(), t.TempDir()
	sync := func(password string) (string, error) {
		cmd := exec.Command(nextcloudcmd, "--non-interactive", "-u", desk.LoginName, "-p", password, local, desk.Server)
		cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"))
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if err := os.WriteFile(filepath.Join(local, "up.txt"), []byte("from the desktop\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := sync(desk.AppPassword); err != nil {
		t.Fatalf("nextcloudcmd: %v\n%s", err, lastLines(out, 30))
	}
	if st, body := dav(t, "GET", base+"/dav/files/"+user+"/up.txt", user, desk.AppPassword, "", ""); st != http.StatusOK || body != "from the desktop\n" {
		t.Errorf("the uploaded file on the server: %d %q", st, body)
	}
	if st, _ := dav(t, "PUT", base+"/remote.php/webdav/down.txt", user, desk.AppPassword, "", "from the server\n"); st != http.StatusCreated {
		t.Fatalf("PUT through /remote.php/webdav/: %d", st)
	}
	if out, err := sync(desk.AppPassword); err != nil {
		t.Fatalf("nextcloudcmd, second sync: %v\n%s", err, lastLines(out, 30))
	}
	if b, err := os.ReadFile(filepath.Join(local, "down.txt")); err != nil || string(b) != "from the server\n" {
		t.Errorf("the server's file after the sync: %q, %v", b, err)
	}
	if !logged(srv.stderr.String(), "method=GET path=/ocs/v1.php/cloud/user status=200", "mirall") {
		t.Error("nextcloudcmd's cloud/user request is not in the log")
	}
	// With DAVx⁵'s calendars-and-contacts password it cannot sync.
	if out, err := sync(got.AppPassword); err == nil {
		t.Errorf("nextcloudcmd synced with a password without the files scope:\n%s", lastLines(out, 10))
	}

	// The desktop removes its own password; DAVx⁵'s keeps working.
	if st, body := dav(t, "DELETE", base+"/ocs/v2.php/core/apppassword", user, desk.AppPassword, "", ""); st != http.StatusOK {
		t.Fatalf("DELETE /ocs/v2.php/core/apppassword: %d %s", st, body)
	}
	if st, _ := dav(t, "PROPFIND", base+"/remote.php/dav/files/"+user+"/", user, desk.AppPassword, "0", ""); st != http.StatusUnauthorized {
		t.Errorf("the removed password: %d, want 401", st)
	}
	if st, _ := dav(t, "PROPFIND", base+"/remote.php/dav", user, got.AppPassword, "0", propfindPrincipal); st != http.StatusMultiStatus {
		t.Errorf("DAVx⁵'s password after the desktop's removal: %d, want 207", st)
	}
	// The flow links' tokens never reach the log.
	for _, c := range []*testkit.LoginFlowClient{davx5, denied, desktop} {
		tok := c.Login[strings.LastIndex(c.Login, "/")+1:]
		if strings.Contains(srv.stderr.String(), tok) || strings.Contains(srv.stderr.String(), c.Token) {
			t.Error("a Login Flow token is in the server log")
		}
	}
	for _, s := range []string{got.AppPassword, desk.AppPassword} {
		if strings.Contains(srv.stderr.String(), s) {
			t.Error("a delivered app password is in the server log")
		}
	}
	srv.stop(t)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
