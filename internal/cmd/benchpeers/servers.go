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
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/appauth/appauth/internal/testenv"
)

// The user every server serves, with the password of the LDAP fixture
// (internal/testenv's slapd), and the cost of the bcrypt peers' hashes:
// 10, the default of Go's bcrypt, passlib and most guides (Apache's
// htpasswd -B would pick 5).
const (
	benchUser     = "alice"
	benchPassword = "alice-Secret-1"
	bcryptCost    = 10
	files         = 10   // in the PROPFIND'd folder
	fileSize      = 1024 // each; the GET fetches the first
)

// server is one row of the comparison: a running server, where its two
// workloads go, and which processes are its own.
type server struct {
	name string
	// procs are the server's own processes (their trees are measured).
	procs []*process
	// targets[i] is where workloads[i] goes.
	targets [2]target
	client  *http.Client
}

func (s *server) pids() []int {
	var out []int
	for _, p := range s.procs {
		out = append(out, p.pid())
	}
	return out
}

func (s *server) stop() {
	for _, p := range s.procs {
		p.stop()
	}
}

// env is what the servers share: the work folder, the core they run on,
// the directory and database, and the programs built or found.
type env struct {
	dir       string
	serverCPU int
	ldap      *testenv.LDAPServer
	pg        *testenv.PostgresServer
	davserver string // built with -tags appauth_insecure_bench
	hacdias   string
	self      string // this program, which serves the bare x/net/webdav handler
}

// place makes a server's folder under the work folder and picks its
// loopback address.
func (e *env) place(name string) (dir, addr string, err error) {
	dir = filepath.Join(e.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	addr, err = freeAddr()
	return dir, addr, err
}

// bcryptUsers writes an htpasswd file in dir with the bench user's bcrypt
// hash (htpasswd -B at bcryptCost), with permissions perm.
func bcryptUsers(dir string, perm os.FileMode) (string, error) {
	out, err := exec.Command("htpasswd", "-nbB", "-C", strconv.Itoa(bcryptCost), benchUser, benchPassword).Output()
	if err != nil {
		return "", fmt.Errorf("htpasswd: %w", err)
	}
	users := filepath.Join(dir, "users.htpasswd")
	return users, os.WriteFile(users, bytes.TrimSpace(out), perm)
}

// davserverRow starts davserver with users from the LDAP fixture and its
// app passwords in SQLite (pg false) or PostgreSQL; noAuth runs it with
// -insecure-no-auth-as instead of asking for an app password.
func (e *env) davserverRow(name string, pg, noAuth bool) (*server, error) {
	dir, addr, err := e.place(strings.NewReplacer(", ", "-", " ", "-").Replace(name))
	if err != nil {
		return nil, err
	}
	passFile := filepath.Join(dir, "ldap-bind-password")
	if err := os.WriteFile(passFile, []byte(e.ldap.BindPassword+"\n"), 0o600); err != nil {
		return nil, err
	}
	args := []string{e.davserver, "-addr", addr, "-data", filepath.Join(dir, "data"),
		"-ldap-url", e.ldap.URL, "-ldap-base-dn", e.ldap.BaseDN,
		"-ldap-bind-dn", e.ldap.BindDN, "-ldap-bind-password-file", passFile}
	var vars []string
	if pg {
		vars = append(vars, "APPAUTH_POSTGRES="+e.pg.DSN())
	}
	if noAuth {
		args = append(args, "-insecure-no-auth-as", benchUser)
	}
	if cpuProfileDir != "" {
		f, err := filepath.Abs(filepath.Join(cpuProfileDir, filepath.Base(dir)+".pprof"))
		if err != nil {
			return nil, err
		}
		args = append(args, "-cpuprofile", f)
	}
	p, err := startProcess(name, dir, filepath.Join(dir, "server.log"), e.serverCPU, vars, args...)
	if err != nil {
		return nil, err
	}
	s := &server{name: name, procs: []*process{p}, client: client(conns)}
	if err := p.waitListening(addr); err != nil {
		s.stop()
		return nil, err
	}
	base := "http://" + addr + "/"
	password := "unused" // sent anyway: the same request as with authentication on
	if !noAuth {
		if password, err = appPassword(base); err != nil {
			s.stop()
			return nil, err
		}
	}
	folder := base + "dav/files/" + benchUser + "/bench/"
	if err := populateFiles(s.client, folder, benchUser, password); err != nil {
		s.stop()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	s.targets = filesTargets(folder, password)
	return s, nil
}

// appPassword signs in to davserver's JSON API with the LDAP password and
// makes an app password, as a person does on the settings page.
func appPassword(base string) (string, error) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	call := func(path, csrf string, body any, want int, out any) error {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", base+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		if csrf != "" {
			req.Header.Set("X-CSRF-Token", csrf)
		}
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		rb, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			return fmt.Errorf("davserver %s: %d %s", path, resp.StatusCode, rb)
		}
		return json.Unmarshal(rb, out)
	}
	var session struct {
		CSRFToken string `json:"csrfToken"`
	}
	if err := call("api/v1/session", "", map[string]string{"username": benchUser, "password": benchPassword}, http.StatusOK, &session); err != nil {
		return "", err
	}
	var ap struct {
		Password string `json:"password"`
	}
	if err := call("api/v1/app-passwords", session.CSRFToken, map[string]string{"name": "bench-peers"}, http.StatusCreated, &ap); err != nil {
		return "", err
	}
	return ap.Password, nil
}

// bareRow starts this program as a bare x/net/webdav handler on a folder,
// with no authentication and no log: the ceiling for the same DAV work.
func (e *env) bareRow(name string) (*server, error) {
	dir, addr, err := e.place("bare")
	if err != nil {
		return nil, err
	}
	p, err := startProcess(name, dir, filepath.Join(dir, "server.log"), e.serverCPU, nil, e.self, "-serve-bare", filepath.Join(dir, "data"), "-addr", addr)
	if err != nil {
		return nil, err
	}
	return e.finishWebDAV(name, p, addr, "http://"+addr+"/bench/", benchPassword)
}

// finishWebDAV waits for a WebDAV server, makes its folder and files and
// returns its row.
func (e *env) finishWebDAV(name string, p *process, addr, folder, password string) (*server, error) {
	s := &server{name: name, procs: []*process{p}, client: client(conns)}
	if err := p.waitListening(addr); err != nil {
		s.stop()
		return nil, err
	}
	if err := populateFiles(s.client, folder, benchUser, password); err != nil {
		s.stop()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	s.targets = filesTargets(folder, password)
	return s, nil
}

func filesTargets(folder, password string) [2]target {
	return [2]target{
		{url: folder, user: benchUser, password: password},
		{url: folder + "f00.txt", user: benchUser, password: password, size: fileSize},
	}
}

// populateFiles makes folder with MKCOL and puts the files in it.
func populateFiles(c *http.Client, folder, user, password string) error {
	if err := send(c, "MKCOL", folder, user, password, "", nil, http.StatusCreated); err != nil {
		return err
	}
	for i := range files {
		body := bytes.Repeat([]byte{'a' + byte(i)}, fileSize)
		if err := send(c, "PUT", fmt.Sprintf("%sf%02d.txt", folder, i), user, password, "text/plain", body, http.StatusCreated); err != nil {
			return err
		}
	}
	return nil
}

func send(c *http.Client, method, url, user, password, ctype string, body []byte, want int) error {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.SetBasicAuth(user, password)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	rb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want && !(want == http.StatusCreated && resp.StatusCode == http.StatusNoContent) {
		return fmt.Errorf("%s %s: %d %s, want %d", method, url, resp.StatusCode, bytes.TrimSpace(rb), want)
	}
	return nil
}

// apacheAuth is how an Apache row checks the password.
type apacheAuth int

const (
	apacheLDAPCache apacheAuth = iota
	apacheLDAPNoCache
	apacheBcrypt
)

// apacheRow starts Apache httpd (Debian's apache2, event MPM, its
// packaged defaults otherwise) with mod_dav on a folder, behind Basic
// authentication by mod_authnz_ldap against the fixture's slapd (with
// mod_ldap's caches at their defaults, or off) or by a bcrypt htpasswd
// file. It logs each request to an access log, as Debian's default site
// does.
func (e *env) apacheRow(name string, how apacheAuth) (*server, error) {
	dir, addr, err := e.place("apache-" + strconv.Itoa(int(how)))
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	for _, d := range []string{data, filepath.Join(dir, "lock"), filepath.Join(dir, "run")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	// Apache serves as www-data when started as root.
	if u, err := user.Lookup("www-data"); err == nil && os.Geteuid() == 0 {
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for _, d := range []string{data, filepath.Join(dir, "lock")} {
			if err := os.Chown(d, uid, gid); err != nil {
				return nil, err
			}
		}
	}
	var authConf string
	switch how {
	case apacheLDAPCache, apacheLDAPNoCache:
		authConf = fmt.Sprintf(`AuthBasicProvider ldap
    AuthLDAPURL "%s/ou=people,%s?uid?one"
    AuthLDAPBindDN "%s"
    AuthLDAPBindPassword "%s"`, e.ldap.URL, e.ldap.BaseDN, e.ldap.BindDN, e.ldap.BindPassword)
	case apacheBcrypt:
		users, err := bcryptUsers(dir, 0o644) // read by www-data
		if err != nil {
			return nil, err
		}
		authConf = "AuthBasicProvider file\n    AuthUserFile " + users
	}
	cache := ""
	if how == apacheLDAPNoCache {
		cache = "LDAPCacheEntries 0\nLDAPOpCacheEntries 0\n"
	}
	mods := "/usr/lib/apache2/modules"
	conf := fmt.Sprintf(`ServerRoot %[1]s
ServerName 127.0.0.1
Listen %[2]s
PidFile %[1]s/run/httpd.pid
DefaultRuntimeDir %[1]s/run
ErrorLog %[1]s/error.log
LogLevel warn
LoadModule mpm_event_module %[3]s/mod_mpm_event.so
LoadModule authz_core_module %[3]s/mod_authz_core.so
LoadModule authz_user_module %[3]s/mod_authz_user.so
LoadModule authn_core_module %[3]s/mod_authn_core.so
LoadModule authn_file_module %[3]s/mod_authn_file.so
LoadModule auth_basic_module %[3]s/mod_auth_basic.so
LoadModule ldap_module %[3]s/mod_ldap.so
LoadModule authnz_ldap_module %[3]s/mod_authnz_ldap.so
LoadModule dav_module %[3]s/mod_dav.so
LoadModule dav_fs_module %[3]s/mod_dav_fs.so
User www-data
Group www-data
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 300
LogFormat "%%h %%l %%u %%t \"%%r\" %%>s %%O \"%%{User-Agent}i\"" combined
CustomLog %[1]s/access.log combined
DavLockDB %[1]s/lock/DavLock
%[6]sDocumentRoot %[4]s
<Directory %[4]s>
    Dav On
    AuthType Basic
    AuthName bench
    %[5]s
    Require valid-user
</Directory>
`, dir, addr, mods, data, authConf, cache)
	confFile := filepath.Join(dir, "httpd.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	p, err := startProcess(name, dir, filepath.Join(dir, "stderr.log"), e.serverCPU, nil, apache2(), "-f", confFile, "-DFOREGROUND")
	if err != nil {
		return nil, err
	}
	s, err := e.finishWebDAV(name, p, addr, "http://"+addr+"/bench/", benchPassword)
	if err != nil {
		return nil, fmt.Errorf("%w\nend of %s/error.log:\n%s", err, dir, tail(filepath.Join(dir, "error.log")))
	}
	return s, nil
}

func apache2() string {
	if p, err := exec.LookPath("apache2"); err == nil {
		return p
	}
	return "/usr/sbin/apache2"
}

// radicaleRow starts Radicale (Debian's package, its defaults otherwise)
// with a bcrypt htpasswd file. Radicale is a CalDAV/CardDAV server: the
// folder is a calendar of files events of about fileSize bytes each.
func (e *env) radicaleRow(name string) (*server, error) {
	dir, addr, err := e.place("radicale")
	if err != nil {
		return nil, err
	}
	users, err := bcryptUsers(dir, 0o600)
	if err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`[server]
hosts = %s
[auth]
type = htpasswd
htpasswd_filename = %s
htpasswd_encryption = bcrypt
[storage]
filesystem_folder = %s
`, addr, users, filepath.Join(dir, "collections"))
	confFile := filepath.Join(dir, "config")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	p, err := startProcess(name, dir, filepath.Join(dir, "server.log"), e.serverCPU, nil, radicale(), "--config", confFile)
	if err != nil {
		return nil, err
	}
	s := &server{name: name, procs: []*process{p}, client: client(conns)}
	if err := p.waitListening(addr); err != nil {
		s.stop()
		return nil, err
	}
	folder := "http://" + addr + "/" + benchUser + "/bench/"
	if err := send(s.client, "MKCALENDAR", folder, benchUser, benchPassword, "", nil, http.StatusCreated); err != nil {
		s.stop()
		return nil, err
	}
	for i := range files {
		if err := send(s.client, "PUT", fmt.Sprintf("%se%02d.ics", folder, i), benchUser, benchPassword, "text/calendar", event(i), http.StatusCreated); err != nil {
			s.stop()
			return nil, err
		}
	}
	s.targets = [2]target{
		{url: folder, user: benchUser, password: benchPassword},
		{url: folder + "e00.ics", user: benchUser, password: benchPassword},
	}
	return s, nil
}

func radicale() string {
	if p, err := exec.LookPath("/usr/bin/radicale"); err == nil {
		return p // Debian's, with its python3 (and passlib)
	}
	return "radicale"
}

// event is an iCalendar event of about fileSize bytes.
func event(i int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//appauth//bench-peers//EN\r\nBEGIN:VEVENT\r\nUID:bench-%02d@appauth\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20260101T%02d0000Z\r\nDURATION:PT1H\r\nSUMMARY:bench %02d\r\n", i, i, i)
	desc := "DESCRIPTION:" + strings.Repeat("x", fileSize-b.Len()-60)
	for len(desc) > 74 { // folded at 75 octets (RFC 5545)
		b.WriteString(desc[:74] + "\r\n")
		desc = " " + desc[74:]
	}
	b.WriteString(desc + "\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
	return []byte(b.String())
}

// hacdiasRow starts hacdias/webdav (built from the module proxy at
// hacdiasVersion) with one user whose password is in plain text or a
// bcrypt hash, and its default logging (two lines per request at info).
func (e *env) hacdiasRow(name string, useBcrypt bool) (*server, error) {
	dir, addr, err := e.place("hacdias-" + strconv.FormatBool(useBcrypt))
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	password := benchPassword
	if useBcrypt {
		h, err := bcrypt.GenerateFromPassword([]byte(benchPassword), bcryptCost)
		if err != nil {
			return nil, err
		}
		password = "{bcrypt}" + string(h)
	}
	_, port, _ := strings.Cut(addr, ":")
	conf := fmt.Sprintf("address: 127.0.0.1\nport: %s\nauth: true\ntls: false\nprefix: /\nscope: %s\nmodify: true\nusers:\n  - username: %s\n    password: %q\n", port, data, benchUser, password)
	confFile := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	p, err := startProcess(name, dir, filepath.Join(dir, "server.log"), e.serverCPU, nil, e.hacdias, "--config", confFile)
	if err != nil {
		return nil, err
	}
	return e.finishWebDAV(name, p, addr, "http://"+addr+"/bench/", benchPassword)
}
