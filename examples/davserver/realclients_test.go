package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/appauth/appauth/internal/testenv"
	"github.com/appauth/appauth/internal/testkit"
)

// needTool finds a client program: under `make test` (strict) a missing one
// fails the test, elsewhere it skips.
func needTool(t *testing.T, name string, check ...string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil && len(check) > 0 {
		err = exec.Command(path, check...).Run()
	}
	if err != nil {
		msg := fmt.Sprintf("%s is not usable (%v); internal/testenv/run.sh installs it (Debian packages litmus, python3-caldav, curl)", name, err)
		if testenv.Strict() {
			t.Fatal(msg)
		}
		t.Skip(msg + "; run `make test`")
	}
	return path
}

// serverProcess is the built davserver binary, running.
type serverProcess struct {
	cmd    *exec.Cmd
	base   string // http://127.0.0.1:PORT/
	banner string // stdout up to the "Listening on" line
	stderr *testkit.Buffer
	done   chan error
}

// buildServer compiles the example into a temporary folder.
func buildServer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "davserver")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startServer runs bin in dir with no flags; APPAUTH_ADDR picks a free
// loopback port. It returns once the banner has been printed.
func startServer(t *testing.T, bin, dir string) *serverProcess {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "APPAUTH_ADDR=127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &serverProcess{cmd: cmd, stderr: &testkit.Buffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-p.done
		}
	})
	banner := make(chan string, 1)
	go func() {
		var b strings.Builder
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			b.WriteString(sc.Text() + "\n")
			if !sent && strings.HasPrefix(sc.Text(), "Listening on ") {
				banner <- b.String()
				sent = true
			}
		}
		if !sent {
			banner <- b.String()
		}
		p.done <- cmd.Wait()
	}()
	p.banner = <-banner
	for line := range strings.SplitSeq(p.banner, "\n") {
		if u, ok := strings.CutPrefix(line, "Listening on "); ok {
			p.base = strings.TrimSpace(u)
		}
	}
	if p.base == "" {
		t.Fatalf("the server printed no address:\n%s\nstderr:\n%s", p.banner, p.stderr)
	}
	return p
}

// stop sends SIGTERM and waits for a clean exit.
func (p *serverProcess) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-p.done; err != nil {
		t.Fatalf("server exit after SIGTERM: %v\nstderr:\n%s", err, p.stderr)
	}
}

// bannerValue returns the value after "  key: " in the banner.
func bannerValue(banner, key string) string {
	for line := range strings.SplitSeq(banner, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), key+": "); ok {
			return v
		}
	}
	return ""
}

// webClient signs in through the JSON API and keeps the session.
type webClient struct {
	t    *testing.T
	base string
	hc   *http.Client
	csrf string
}

func signIn(t *testing.T, base, user, password string) *webClient {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &webClient{t: t, base: base, hc: &http.Client{Jar: jar}}
	var out struct {
		CSRFToken string `json:"csrfToken"`
	}
	c.call("POST", "api/v1/session", map[string]any{"username": user, "password": password}, http.StatusOK, &out)
	if out.CSRFToken == "" {
		t.Fatal("sign-in returned no CSRF token")
	}
	c.csrf = out.CSRFToken
	return c
}

func (c *webClient) call(method, path string, body any, want int, out any) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.base+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		c.t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
}

type appPassword struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	LoginName  string    `json:"loginName"`
	Password   string    `json:"password"`
	LastUsedAt time.Time `json:"lastUsedAt"`
}

func (c *webClient) createAppPassword(name string, scopes ...string) appPassword {
	c.t.Helper()
	var ap appPassword
	body := map[string]any{"name": name}
	if len(scopes) > 0 {
		body["scopes"] = scopes
	}
	c.call("POST", "api/v1/app-passwords", body, http.StatusCreated, &ap)
	if ap.Password == "" || ap.ID == "" {
		c.t.Fatalf("created app password without id or password: %+v", ap)
	}
	return ap
}

// curlStatus runs curl and returns the HTTP status of the last response.
func curlStatus(t *testing.T, curl string, args ...string) string {
	t.Helper()
	out, err := exec.Command(curl, append([]string{"-s", "-o", "/dev/null", "-w", "%{http_code}"}, args...)...).Output()
	if err != nil {
		t.Fatalf("curl %v: %v", args, err)
	}
	return string(out)
}

// TestRealClients starts the built server as a person would (no flags, an
// empty folder), signs in with the printed demo password, and checks it
// with real DAV clients: litmus, python3-caldav and curl.
func TestRealClients(t *testing.T) {
	curl := needTool(t, "curl", "--version")
	litmus := needTool(t, "litmus", "--version")
	python := "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		python = "python3"
	}
	python = needTool(t, python, "-c", "import caldav")

	bin := buildServer(t)
	dir := t.TempDir()
	srv := startServer(t, bin, dir)
	base := srv.base
	user, password := bannerValue(srv.banner, "username"), bannerValue(srv.banner, "password")
	if user != "demo" || len(password) < 16 {
		t.Fatalf("banner without demo credentials:\n%s", srv.banner)
	}
	for _, f := range []string{"data/pepper", "data/users.htpasswd"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, mode %v, want 0600", f, err, st.Mode())
		}
	}

	web := signIn(t, base, user, password)
	full := web.createAppPassword("Everything")
	secrets := []string{password, full.Password}

	// The first request a device makes: PROPFIND with the app password.
	if got := curlStatus(t, curl, "-u", user+":"+full.Password, "-X", "PROPFIND", "-H", "Depth: 0", base+"dav/"); got != "207" {
		t.Fatalf("PROPFIND with an app password: %s, want 207", got)
	}

	t.Run("litmus", func(t *testing.T) {
		cmd := exec.Command(litmus, base+"dav/files/"+user+"/", user, full.Password)
		cmd.Dir = t.TempDir() // litmus writes debug.log here
		cmd.Env = append(os.Environ(), "TESTS=basic copymove props")
		out, err := cmd.CombinedOutput()
		if err != nil || strings.Contains(string(out), "FAIL") {
			t.Fatalf("litmus: %v\n%s", err, out)
		}
		for _, suite := range []string{"basic", "copymove", "props"} {
			if !strings.Contains(string(out), "summary for `"+suite+"'") {
				t.Errorf("litmus did not run %s:\n%s", suite, out)
			}
		}
	})

	t.Run("python3-caldav", func(t *testing.T) {
		out, err := exec.Command(python, "testdata/caldav_client.py", base, user, full.Password).CombinedOutput()
		if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), "OK") {
			t.Fatalf("caldav_client.py: %v\n%s", err, out)
		}
	})

	t.Run("curl", func(t *testing.T) {
		routes := []string{"dav/", "dav/principals/demo/", "dav/calendars/demo/", "dav/contacts/demo/", "dav/files/demo/"}
		// The account password is refused on every DAV route.
		for _, r := range append(routes, ".well-known/caldav", ".well-known/carddav") {
			if got := curlStatus(t, curl, "-L", "-u", user+":"+password, "-X", "PROPFIND", "-H", "Depth: 0", base+r); got != "401" {
				t.Errorf("account password on %s: %s, want 401", r, got)
			}
		}
		// A revoked app password: 401.
		gone := web.createAppPassword("Lost phone")
		if got := curlStatus(t, curl, "-u", user+":"+gone.Password, "-X", "PROPFIND", "-H", "Depth: 0", base+"dav/files/demo/"); got != "207" {
			t.Fatalf("before revoking: %s, want 207", got)
		}
		web.call("DELETE", "api/v1/app-passwords/"+gone.ID, nil, http.StatusNoContent, nil)
		for _, r := range routes {
			if got := curlStatus(t, curl, "-u", user+":"+gone.Password, "-X", "PROPFIND", "-H", "Depth: 0", base+r); got != "401" {
				t.Errorf("revoked app password on %s: %s, want 401", r, got)
			}
		}
		// A calendars-only app password: calendars yes, files and contacts 403.
		cal := web.createAppPassword("Calendar app", "calendars")
		secrets = append(secrets, gone.Password, cal.Password)
		for r, want := range map[string]string{
			"dav/calendars/demo/": "207", "dav/principals/demo/": "207", "dav/": "207",
			"dav/files/demo/": "403", "dav/contacts/demo/": "403",
		} {
			if got := curlStatus(t, curl, "-u", user+":"+cal.Password, "-X", "PROPFIND", "-H", "Depth: 0", base+r); got != want {
				t.Errorf("calendars-only app password, PROPFIND %s: %s, want %s", r, got, want)
			}
		}
		if got := curlStatus(t, curl, "-u", user+":"+cal.Password, "-T", "-", base+"dav/files/demo/x.txt"); got != "403" {
			t.Errorf("calendars-only app password, PUT file: %s, want 403", got)
		}
		// A read-only files password reads but cannot write.
		ro := web.createAppPassword("Backup reader", "files", "read-only")
		secrets = append(secrets, ro.Password)
		if got := curlStatus(t, curl, "-u", user+":"+ro.Password, "-X", "PROPFIND", "-H", "Depth: 1", base+"dav/files/demo/"); got != "207" {
			t.Errorf("read-only PROPFIND: %s, want 207", got)
		}
		if got := curlStatus(t, curl, "-u", user+":"+ro.Password, "-X", "MKCOL", base+"dav/files/demo/ro/"); got != "403" {
			t.Errorf("read-only MKCOL: %s, want 403", got)
		}
		// Another user's files, with a valid app password: 403.
		if got := curlStatus(t, curl, "-u", user+":"+full.Password, "-X", "PROPFIND", "-H", "Depth: 0", base+"dav/files/someone-else/"); got != "403" {
			t.Errorf("another user's folder: %s, want 403", got)
		}
	})

	// Graceful shutdown writes the pending last-used time of a credential
	// used just before it (writes are otherwise coalesced for a minute).
	last := web.createAppPassword("Used right before shutdown")
	secrets = append(secrets, last.Password)
	if got := curlStatus(t, curl, "-u", user+":"+last.Password, "-X", "PROPFIND", "-H", "Depth: 0", base+"dav/"); got != "207" {
		t.Fatalf("PROPFIND: %s", got)
	}
	srv.stop(t)
	logs := srv.stderr.String()

	srv2 := startServer(t, bin, dir)
	if strings.Contains(srv2.banner, "password:") || bannerValue(srv2.banner, "username") != "" {
		t.Errorf("second start printed credentials again:\n%s", srv2.banner)
	}
	web2 := signIn(t, srv2.base, user, password)
	var list struct {
		AppPasswords []appPassword `json:"appPasswords"`
	}
	web2.call("GET", "api/v1/app-passwords", nil, http.StatusOK, &list)
	found := false
	for _, ap := range list.AppPasswords {
		if ap.ID == last.ID {
			found = true
			if ap.LastUsedAt.IsZero() {
				t.Errorf("after SIGTERM and a restart, %q shows no last use: the pending write was lost", ap.Name)
			}
		}
		if ap.Password != "" {
			t.Errorf("the list shows a secret for %q", ap.Name)
		}
	}
	if !found {
		t.Fatalf("app password %s missing after restart: %+v", last.ID, list.AppPasswords)
	}
	srv2.stop(t)

	logs += srv2.stderr.String()
	if !strings.Contains(logs, "msg=request method=PROPFIND path=/dav/") {
		t.Error("no request log line for a PROPFIND")
	}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("a secret (%s...) appears in the server's log", s[:6])
		}
	}
}
