package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/appauth/appauth/internal/testenv"
	"github.com/appauth/appauth/internal/testkit"
)

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
	return startServerWith(t, bin, dir, nil, []string{"APPAUTH_ADDR=127.0.0.1:0"})
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
// with real DAV clients: litmus, python3-caldav, vdirsyncer and curl.
func TestRealClients(t *testing.T) {
	curl := testenv.Program(t, "curl", "--version")
	litmus := testenv.Program(t, "litmus", "--version")
	vdirsyncer := testenv.Program(t, "vdirsyncer", "--version")
	// Debian's python3-caldav is for Debian's python3, not one from pyenv
	// or a virtualenv that may come first on PATH.
	python := testenv.Program(t, "/usr/bin/python3", "-c", "import caldav")

	bin := buildServer(t)
	dir := t.TempDir()
	// At Debug, every request has a line of its own: the checks below read
	// which client sent what.
	srv := startServerWith(t, bin, dir, nil, []string{"APPAUTH_ADDR=127.0.0.1:0", "APPAUTH_LOG_LEVEL=debug"})
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

	// litmus locks: every test passes (conditional PUTs with a stale entity
	// tag in the If header get 412) but lock_shared: x/net/webdav has
	// exclusive locks only and answers a shared LOCK with 501.
	t.Run("litmus locks", func(t *testing.T) {
		cmd := exec.Command(litmus, base+"dav/files/"+user+"/", user, full.Password)
		cmd.Dir = t.TempDir()
		cmd.Env = append(os.Environ(), "TESTS=locks")
		out, _ := cmd.CombinedOutput() // non-zero: lock_shared fails
		for l := range strings.SplitSeq(string(out), "\n") {
			if strings.Contains(l, "FAIL") && !(strings.Contains(l, "lock_shared") && strings.Contains(l, "501 Not Implemented")) {
				t.Errorf("litmus locks: %s", strings.TrimSpace(l))
			}
		}
		if !strings.Contains(string(out), "summary for `locks': of 34 tests run: 33 passed, 1 failed.") {
			t.Errorf("litmus locks, want 33 of 34 passed (all but lock_shared):\n%s", out)
		}
	})

	t.Run("python3-caldav", func(t *testing.T) {
		out, err := exec.Command(python, "testdata/caldav_client.py", base, user, full.Password).CombinedOutput()
		if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), "OK") {
			t.Fatalf("caldav_client.py: %v\n%s", err, out)
		}
		// Given the bare server URL, it discovered the principal there.
		if !logged(srv.stderr.String(), "method=PROPFIND path=/ status=207", "user_agent=Mozilla/5.0") {
			t.Error("no successful PROPFIND on / by python3-caldav in the server log")
		}
		if !logged(srv.stderr.String(), "method=REPORT path=/dav/calendars/demo/", "status=207") {
			t.Error("no REPORT by python3-caldav in the server log")
		}
	})

	t.Run("vdirsyncer", func(t *testing.T) {
		contacts := web.createAppPassword("vdirsyncer", "contacts")
		secrets = append(secrets, contacts.Password)
		testVdirsyncer(t, vdirsyncer, base, user, contacts.Password)
		// Given only the base URL, vdirsyncer found the principal with a
		// PROPFIND on / (it falls back to the well-known redirect when
		// that fails, as it did while / answered 405).
		if !logged(srv.stderr.String(), "method=PROPFIND path=/ status=207", "user_agent=vdirsyncer/") {
			t.Error("no successful PROPFIND on / by vdirsyncer in the server log")
		}
		if logged(srv.stderr.String(), "method=PROPFIND path=/.well-known/carddav", "user_agent=vdirsyncer/") {
			t.Error("vdirsyncer needed the well-known redirect: its PROPFIND on / failed")
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
	// Successful requests are coalesced into "requests" lines, written at
	// the latest on shutdown; refusals have a line each.
	if !strings.Contains(logs, "msg=requests user=demo count=") {
		t.Error("no coalesced request log line for the DAV requests")
	}
	if !strings.Contains(logs, "msg=request method=") || !strings.Contains(logs, "status=401") {
		t.Error("no request log line of its own for a refused request")
	}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("a secret (%s...) appears in the server's log", s[:6])
		}
	}
}

// logged reports whether one line of the server's log holds all of parts.
func logged(log string, parts ...string) bool {
	for l := range strings.SplitSeq(log, "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(l, p)
		}
		if all {
			return true
		}
	}
	return false
}

// vdirsyncerRun is one vdirsyncer configuration: a pair of a local folder of
// .vcf files (one subfolder per address book) and the server's CardDAV,
// found from the base URL through /.well-known/carddav.
type vdirsyncerRun struct {
	t     *testing.T
	bin   string
	home  string // HOME and XDG folders, so nothing reaches the real home
	conf  string
	local string
}

func newVdirsyncer(t *testing.T, bin, base, user, password string, collections ...string) *vdirsyncerRun {
	t.Helper()
	dir := t.TempDir()
	v := &vdirsyncerRun{t: t, bin: bin, home: filepath.Join(dir, "home"),
		conf: filepath.Join(dir, "config"), local: filepath.Join(dir, "contacts")}
	for _, d := range []string{v.home, v.local} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	cols := make([]string, len(collections))
	for i, c := range collections {
		cols[i] = q(c)
	}
	conf := fmt.Sprintf(`[general]
status_path = %s

[pair contacts]
a = "contacts_local"
b = "contacts_server"
collections = [%s]

[storage contacts_local]
type = "filesystem"
path = %s
fileext = ".vcf"

[storage contacts_server]
type = "carddav"
url = %s
username = %s
password = %s
`, q(filepath.Join(dir, "status")+"/"), strings.Join(cols, ", "), q(v.local+"/"), q(base), q(user), q(password))
	if err := os.WriteFile(v.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return v
}

// yes answers every "Should vdirsyncer attempt to create it?" of a discover
// (one per collection missing on a side).
var yes = strings.Repeat("y\n", 20)

// run runs `vdirsyncer -c CONFIG args...`, answering its prompts with
// stdin (empty: none, so a prompt fails the run), and returns the output.
func (v *vdirsyncerRun) run(stdin string, args ...string) string {
	v.t.Helper()
	cmd := exec.Command(v.bin, append([]string{"-c", v.conf}, args...)...)
	cmd.Dir = v.home
	cmd.Env = append(os.Environ(), "HOME="+v.home,
		"XDG_CONFIG_HOME="+filepath.Join(v.home, ".config"),
		"XDG_DATA_HOME="+filepath.Join(v.home, ".local/share"),
		"XDG_CACHE_HOME="+filepath.Join(v.home, ".cache"))
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		v.t.Fatalf("vdirsyncer %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	if strings.Contains(string(out), "error:") || strings.Contains(string(out), "critical:") {
		v.t.Fatalf("vdirsyncer %s reported an error:\n%s", strings.Join(args, " "), out)
	}
	return string(out)
}

// vcardProps returns the properties of a vCard, name to values.
func vcardProps(card string) map[string][]string {
	props := map[string][]string{}
	for line := range strings.SplitSeq(strings.ReplaceAll(card, "\r\n", "\n"), "\n") {
		if name, value, ok := strings.Cut(line, ":"); ok {
			props[name] = append(props[name], value)
		}
	}
	return props
}

// checkCard fails unless card is the vCard uid with exactly that FN and EMAIL.
func checkCard(t *testing.T, where, card, uid, fn, email string) {
	t.Helper()
	p := vcardProps(card)
	if !slices.Equal(p["UID"], []string{uid}) || !slices.Equal(p["FN"], []string{fn}) || !slices.Equal(p["EMAIL"], []string{email}) {
		t.Fatalf("%s: want UID %s, FN %q, EMAIL %q; got:\n%s", where, uid, fn, email, card)
	}
}

// testVdirsyncer syncs contacts with vdirsyncer: a vCard in a local folder
// goes to an address book that vdirsyncer creates on the server, a second
// vdirsyncer setup with an empty folder pulls it back, a local edit reaches
// the server, and a local deletion removes it there.
func testVdirsyncer(t *testing.T, bin, base, user, password string) {
	const book = "vdirsyncer-friends"
	stamp := strconv.FormatInt(time.Now().UnixNano(), 36)
	uid, uid2 := "ada-"+stamp, "charles-"+stamp
	card := func(uid, fn, email string) string {
		first, last, _ := strings.Cut(fn, " ")
		return strings.Join([]string{"BEGIN:VCARD", "VERSION:3.0", "UID:" + uid, "FN:" + fn,
			"N:" + last + ";" + first + ";;;", "EMAIL:" + email, "END:VCARD", ""}, "\r\n")
	}
	get := func(path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+path, nil)
		req.SetBasicAuth(user, password)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	onServer := func(uid, fn, email string) {
		t.Helper()
		path := "dav/contacts/" + user + "/" + book + "/" + uid + ".vcf"
		code, body := get(path)
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d\n%s", path, code, body)
		}
		checkCard(t, "GET "+path, body, uid, fn, email)
	}

	// The first device: one vCard in a local address book, which does not
	// exist on the server yet; discover asks to create it there. (Address
	// books made by other subtests are pulled too; only this one is checked.)
	a := newVdirsyncer(t, bin, base, user, password, "from a", "from b")
	localBook := filepath.Join(a.local, book)
	if err := os.Mkdir(localBook, 0o700); err != nil {
		t.Fatal(err)
	}
	write := func(uid, fn, email string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(localBook, uid+".vcf"), []byte(card(uid, fn, email)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(uid, "Ada Lovelace", "ada@example.org")
	out := a.run(yes, "discover")
	if !strings.Contains(out, "Should vdirsyncer attempt to create it?") || !strings.Contains(out, `No collection "`+book+`" found for storage contacts_server`) {
		t.Fatalf("discover did not offer to create the address book on the server:\n%s", out)
	}
	out = a.run("", "sync")
	if !strings.Contains(out, "Copying (uploading) item "+uid+" to contacts_server/"+book) {
		t.Fatalf("sync did not upload the vCard:\n%s", out)
	}
	onServer(uid, "Ada Lovelace", "ada@example.org")

	// A second device with an empty folder finds the address book on the
	// server and pulls the vCard.
	b := newVdirsyncer(t, bin, base, user, password, "from b")
	out = b.run(yes, "discover")
	if !strings.Contains(out, `"`+book+`"`) {
		t.Fatalf("the second discover did not find %s on the server:\n%s", book, out)
	}
	pulled := func(uid, fn, email string) {
		t.Helper()
		b.run("", "sync")
		files, _ := filepath.Glob(filepath.Join(b.local, book, "*.vcf"))
		if len(files) != 1 {
			t.Fatalf("the second device has %d vCards in %s, want 1: %v", len(files), book, files)
		}
		got, err := os.ReadFile(files[0])
		if err != nil {
			t.Fatal(err)
		}
		checkCard(t, "pulled by the second device", string(got), uid, fn, email)
	}
	pulled(uid, "Ada Lovelace", "ada@example.org")

	// An edit on the first device reaches the server and the second device.
	write(uid, "Ada Lovelace", "ada@analytical-engine.example")
	out = a.run("", "sync")
	if !strings.Contains(out, "Copying (updating) item "+uid+" to contacts_server/"+book) {
		t.Fatalf("sync did not upload the edit:\n%s", out)
	}
	onServer(uid, "Ada Lovelace", "ada@analytical-engine.example")
	pulled(uid, "Ada Lovelace", "ada@analytical-engine.example")

	// A deletion on the first device removes the vCard from the server
	// (with another card added, since vdirsyncer refuses to empty a side).
	write(uid2, "Charles Babbage", "charles@example.org")
	if err := os.Remove(filepath.Join(localBook, uid+".vcf")); err != nil {
		t.Fatal(err)
	}
	out = a.run("", "sync")
	if !strings.Contains(out, "Deleting item "+uid+" from contacts_server/"+book) {
		t.Fatalf("sync did not delete the vCard on the server:\n%s", out)
	}
	path := "dav/contacts/" + user + "/" + book + "/" + uid + ".vcf"
	if code, _ := get(path); code != http.StatusNotFound {
		t.Fatalf("GET %s after the deletion: %d, want 404", path, code)
	}
	onServer(uid2, "Charles Babbage", "charles@example.org")
	pulled(uid2, "Charles Babbage", "charles@example.org")
}
