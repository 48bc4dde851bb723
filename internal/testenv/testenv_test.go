package testenv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	_ "github.com/lib/pq"
)

func TestMain(m *testing.M) { Main(m) }

// fakeTB records Skip and Fatal instead of acting on them; everything else
// goes to the real test.
type fakeTB struct {
	testing.TB
	mu      sync.Mutex
	skipped string
	failed  string
}

func (f *fakeTB) Skipf(format string, args ...any) {
	f.mu.Lock()
	f.skipped = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.failed = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *fakeTB) Fatal(args ...any) { f.Fatalf("%s", fmt.Sprint(args...)) }

// call runs fn in its own goroutine, as the testing package would, so that
// Skipf and Fatalf can end it.
func (f *fakeTB) call(fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	<-done
}

func TestStrict(t *testing.T) {
	t.Setenv(EnvStrict, "1")
	if !Strict() {
		t.Error("Strict() = false with APPAUTH_TEST_STRICT=1")
	}
	t.Setenv(EnvStrict, "")
	if Strict() {
		t.Error("Strict() = true with APPAUTH_TEST_STRICT empty")
	}
}

// helpers are what TestMissingPrograms calls in a child process whose PATH
// holds none of the programs.
var helpers = map[string]func(t *testing.T){
	"Postgres":    func(t *testing.T) { Postgres(t) },
	"NewPostgres": func(t *testing.T) { NewPostgres(t) },
	"LDAP":        func(t *testing.T) { LDAP(t) },
	"NewLDAP":     func(t *testing.T) { NewLDAP(t) },
	"Chromium":    func(t *testing.T) { Chromium(t) },
	"Program":     func(t *testing.T) { Program(t, "litmus") },
}

const envHelper = "APPAUTH_TESTENV_HELPER"

// TestHelper is the child process of TestMissingPrograms.
func TestHelper(t *testing.T) {
	fn := helpers[os.Getenv(envHelper)]
	if fn == nil {
		t.Skip("run by TestMissingPrograms")
	}
	fn(t)
	t.Log("helper returned")
}

// TestMissingPrograms runs each helper in a copy of this test binary with an
// empty PATH (and APPAUTH_TEST_PATH_ONLY=1): the test skips naming
// `make test`, or, with APPAUTH_TEST_STRICT=1, fails.
func TestMissingPrograms(t *testing.T) {
	t.Parallel()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	for name := range helpers {
		for _, strict := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/strict=%v", name, strict), func(t *testing.T) {
				t.Parallel()
				cmd := exec.Command(exe, "-test.run=^TestHelper$", "-test.v")
				cmd.Env = append(os.Environ(), "PATH="+empty, EnvPathOnly+"=1", envHelper+"="+name,
					fmt.Sprintf("%s=%v", EnvStrict, map[bool]string{true: "1", false: "0"}[strict]))
				out, err := cmd.CombinedOutput()
				switch {
				case strings.Contains(string(out), "helper returned"):
					t.Fatalf("the helper found its program with an empty PATH:\n%s", out)
				case strict && (err == nil || !strings.Contains(string(out), "--- FAIL: TestHelper") || !strings.Contains(string(out), "APPAUTH_TEST_STRICT=1")):
					t.Errorf("strict: want a failure naming APPAUTH_TEST_STRICT=1, got %v:\n%s", err, out)
				case !strict && (err != nil || !strings.Contains(string(out), "--- SKIP: TestHelper") || !strings.Contains(string(out), "make test")):
					t.Errorf("want a skip naming `make test`, got %v:\n%s", err, out)
				}
			})
		}
	}
}

func TestProgram(t *testing.T) {
	if p := Program(t, "sh", "-c", "exit 0"); p == "" {
		t.Fatal("Program(sh) = empty path")
	}
	for _, strict := range []string{"", "1"} {
		t.Setenv(EnvStrict, strict)
		f := &fakeTB{TB: t}
		f.call(func() { Program(f, "sh", "-c", "echo no such module >&2; exit 1") })
		if strict == "1" && !strings.Contains(f.failed, "no such module") {
			t.Errorf("strict, failing check: failure %q, skip %q", f.failed, f.skipped)
		}
		if strict == "" && (!strings.Contains(f.skipped, "no such module") || !strings.Contains(f.skipped, "make test")) {
			t.Errorf("failing check: skip %q, failure %q", f.skipped, f.failed)
		}
	}
}

func TestChromium(t *testing.T) {
	p := Chromium(t)
	if st, err := os.Stat(p); err != nil || st.Mode()&0o111 == 0 {
		t.Fatalf("Chromium = %q: %v", p, err)
	}
}

func open(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func currentDatabase(t *testing.T, db *sql.DB) string {
	t.Helper()
	var name string
	if err := db.QueryRow("SELECT current_database()").Scan(&name); err != nil {
		t.Fatal(err)
	}
	return name
}

func TestPostgres(t *testing.T) {
	t.Parallel()
	dsn1, dsn2 := Postgres(t), Postgres(t)
	if dsn1 == dsn2 {
		t.Fatalf("two calls gave the same DSN %q", dsn1)
	}
	if u, err := url.Parse(dsn1); err != nil || !strings.HasPrefix(u.Host, "127.0.0.1:") {
		t.Errorf("DSN %q: want a server on 127.0.0.1 (%v)", dsn1, err)
	}
	db1, db2 := open(t, dsn1), open(t, dsn2)
	name1, name2 := currentDatabase(t, db1), currentDatabase(t, db2)
	if name1 == name2 || !strings.HasPrefix(name1, "appauth_") {
		t.Fatalf("databases %q and %q: want two different appauth_* databases", name1, name2)
	}
	if _, err := db1.Exec("CREATE TABLE t (id int PRIMARY KEY, v text)"); err != nil {
		t.Fatal(err)
	}
	if _, err := db1.Exec("INSERT INTO t VALUES (1, 'one')"); err != nil {
		t.Fatal(err)
	}
	var v string
	if err := db1.QueryRow("SELECT v FROM t WHERE id = 1").Scan(&v); err != nil || v != "one" {
		t.Fatalf("read back: %q, %v", v, err)
	}
	var n int
	if err := db2.QueryRow("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("second database has %d tables, want an empty database", n)
	}
}

func TestPostgresDropsDatabase(t *testing.T) {
	t.Parallel()
	Postgres(t) // skips without a server
	s, _ := sharedPostgres()
	admin := open(t, s.DSN())
	var name string
	t.Run("use", func(t *testing.T) {
		db := open(t, Postgres(t))
		name = currentDatabase(t, db)
		// Left open on purpose: the drop must close it (WITH (FORCE)).
		if err := db.Ping(); err != nil {
			t.Fatal(err)
		}
	})
	if name == "" {
		t.Fatal("subtest did not get a database")
	}
	var n int
	if err := admin.QueryRow("SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("database %s still exists after its test ended", name)
	}
}

// pingWithin pings db, giving up after d.
func pingWithin(db *sql.DB, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return db.PingContext(ctx)
}

// TestNewPostgres stops, starts, pauses and resumes a private server: the
// database survives, and the server answers exactly when it should.
func TestNewPostgres(t *testing.T) {
	t.Parallel()
	s := NewPostgres(t)
	dsn := s.Database(t)
	db := open(t, dsn)
	if _, err := db.Exec("CREATE TABLE t (id int)"); err != nil {
		t.Fatal(err)
	}

	s.Stop(t)
	if err := pingWithin(db, 5*time.Second); err == nil {
		t.Fatal("ping succeeded with the server stopped")
	}
	s.Start(t)
	if err := pingWithin(db, 10*time.Second); err != nil {
		t.Fatalf("ping after Start: %v", err)
	}
	if _, err := db.Exec("INSERT INTO t VALUES (1)"); err != nil {
		t.Fatalf("the database did not survive the restart: %v", err)
	}

	s.Pause(t)
	// A new connection: a query on an open one would hang, since lib/pq
	// waits for its cancel request, which the paused server never answers.
	paused := open(t, dsn+"&connect_timeout=1")
	if err := pingWithin(paused, 3*time.Second); err == nil {
		t.Error("a paused server accepted a connection")
	}
	s.Resume(t)
	if err := pingWithin(db, 10*time.Second); err != nil {
		t.Fatalf("ping after Resume: %v", err)
	}
}

// TestSharedNeverStops: the shared servers refuse Stop and Pause.
func TestSharedNeverStops(t *testing.T) {
	t.Parallel()
	pg := func(t *testing.T) *PostgresServer { Postgres(t); s, _ := sharedPostgres(); return s }
	for name, fn := range map[string]func(t *testing.T) func(testing.TB){
		"PostgresServer.Stop":  func(t *testing.T) func(testing.TB) { return pg(t).Stop },
		"PostgresServer.Pause": func(t *testing.T) func(testing.TB) { return pg(t).Pause },
		"LDAPServer.Stop":      func(t *testing.T) func(testing.TB) { return LDAP(t).Stop },
		"LDAPServer.Pause":     func(t *testing.T) func(testing.TB) { return LDAP(t).Pause },
	} {
		t.Run(name, func(t *testing.T) {
			stop := fn(t) // skips without the server
			f := &fakeTB{TB: t}
			f.call(func() { stop(f) })
			if !strings.Contains(f.failed, "shared server") {
				t.Errorf("%s on a shared server: failure %q", name, f.failed)
			}
		})
	}
}

// bind connects to url (StartTLS if asked, trusting only s's CA) and binds.
func bind(s *LDAPServer, url string, startTLS bool, dn, password string) (*goldap.Conn, error) {
	pem, err := os.ReadFile(s.CAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	cfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	c, err := goldap.DialURL(url, goldap.DialWithTLSConfig(cfg), goldap.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}))
	if err != nil {
		return nil, err
	}
	c.SetTimeout(2 * time.Second)
	if startTLS {
		if err := c.StartTLS(cfg); err != nil {
			c.Close()
			return nil, err
		}
	}
	if err := c.Bind(dn, password); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// TestLDAP checks the shared slapd: binds over ldap://, StartTLS and
// ldaps:// with the CA, the fixture with the overlays' attributes.
func TestLDAP(t *testing.T) {
	t.Parallel()
	s := LDAP(t)
	alice := "uid=alice,ou=people," + s.BaseDN
	for _, tc := range []struct {
		url      string
		startTLS bool
	}{{s.URL, false}, {s.URL, true}, {s.TLSURL, false}} {
		c, err := bind(s, tc.url, tc.startTLS, alice, "alice-Secret-1")
		if err != nil {
			t.Fatalf("%s (StartTLS %v): %v", tc.url, tc.startTLS, err)
		}
		c.Close()
	}
	c, err := bind(s, s.URL, false, s.AdminDN, s.AdminPassword)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.Search(goldap.NewSearchRequest(s.BaseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false,
		"(|(uid=alice)(uid=dave))", []string{"uid", "memberOf", "pwdAccountLockedTime"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*goldap.Entry{}
	for _, e := range res.Entries {
		got[e.GetAttributeValue("uid")] = e
	}
	if a := got["alice"]; a == nil || len(a.GetAttributeValues("memberOf")) == 0 {
		t.Errorf("alice has no memberOf (memberof overlay): %+v", a)
	}
	if d := got["dave"]; d == nil || d.GetAttributeValue("pwdAccountLockedTime") == "" {
		t.Errorf("dave is not locked (ppolicy, relax control): %+v", d)
	}
	if _, err := os.Stat(s.LogFile); err != nil {
		t.Errorf("log file: %v", err)
	}
}

// TestNewLDAP stops, starts, pauses and resumes a private slapd.
func TestNewLDAP(t *testing.T) {
	t.Parallel()
	s := NewLDAP(t)
	if s.URL == LDAP(t).URL {
		t.Fatal("NewLDAP gave the shared server")
	}
	alice := "uid=alice,ou=people," + s.BaseDN
	s.Stop(t)
	if _, err := bind(s, s.URL, false, alice, "alice-Secret-1"); err == nil {
		t.Fatal("bind succeeded with slapd stopped")
	}
	s.Start(t)
	c, err := bind(s, s.TLSURL, false, alice, "alice-Secret-1")
	if err != nil {
		t.Fatalf("bind after Start: %v", err)
	}
	s.Pause(t)
	if err := c.Bind(alice, "alice-Secret-1"); err == nil {
		t.Error("bind succeeded with slapd paused")
	}
	c.Close()
	s.Resume(t)
	c, err = bind(s, s.URL, true, alice, "alice-Secret-1")
	if err != nil {
		t.Fatalf("bind after Resume: %v", err)
	}
	c.Close()
}

func TestParseLDIF(t *testing.T) {
	entries, err := parseLDIF([]byte("# comment\ndn: cn=a,dc=x\ncn: a\ndescription: long\n  line\n\ndn:: Y249w6ksZGM9eA==\ncn:: w6k=\ncn: e\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || entries[0].DN != "cn=a,dc=x" || entries[0].GetAttributeValue("description") != "long line" ||
		entries[1].DN != "cn=é,dc=x" || strings.Join(entries[1].GetAttributeValues("cn"), ",") != "é,e" {
		for _, e := range entries {
			e.PrettyPrint(2)
		}
		t.Fatal("wrong entries")
	}
	if _, err := parseLDIF([]byte("cn: a\n")); err == nil {
		t.Error("a record without dn parsed")
	}
	if entries, err := parseLDIF(fixture); err != nil || len(entries) < 10 {
		t.Errorf("fixture: %d entries, %v", len(entries), err)
	}
}

// TestOIDC: the provider starts on loopback and serves discovery for its
// own issuer with the endpoints the SSO tests use.
func TestOIDC(t *testing.T) {
	p := OIDC(t, OIDCClient{ID: "rp", Secret: "s3cret-for-tests-only-0123456789", RedirectURIs: []string{"http://127.0.0.1:1/cb"}})
	if !strings.HasPrefix(p.Issuer, "http://127.0.0.1:") {
		t.Fatalf("Issuer = %q, want a loopback URL", p.Issuer)
	}
	resp, err := http.Get(p.Issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d struct {
		Issuer             string   `json:"issuer"`
		EndSession         string   `json:"end_session_endpoint"`
		BackchannelLogout  bool     `json:"backchannel_logout_supported"`
		CodeChallengeAlgos []string `json:"code_challenge_methods_supported"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	if d.Issuer != p.Issuer || d.EndSession == "" || !d.BackchannelLogout || !slices.Contains(d.CodeChallengeAlgos, "S256") {
		t.Fatalf("discovery = %+v, want issuer %s with end_session, back-channel logout and S256", d, p.Issuer)
	}
}

// TestStartOutsideATest: a program that is not a test (make bench-peers)
// starts its own servers, learns their process IDs, and Close stops them
// and removes their folders.
func TestStartOutsideATest(t *testing.T) {
	if _, ok := findProgram([]string{"slapd"}, "/usr/sbin"); !ok {
		unavailable(t, "slapd is not installed")
	}
	s, err := StartLDAP()
	if err != nil {
		t.Fatal(err)
	}
	pid, dir := s.PID(), s.dir
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		t.Fatalf("PID %d: not a running process", pid)
	}
	if err := rootDSE(t.Context(), s.URL); err != nil {
		t.Fatalf("the started slapd does not answer: %v", err)
	}
	s.Close()
	if err := rootDSE(t.Context(), s.URL); err == nil {
		t.Error("slapd still answers after Close")
	}
	if s.PID() != 0 {
		t.Errorf("PID after Close: %d, want 0", s.PID())
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("folder %s after Close: %v, want it removed", dir, err)
	}
}

// TestStartChild: a child started for a program that is not a test (make
// bench-peers) leads a process group of its own, so that stopping it
// reaches every process it forks.
func TestStartChild(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := StartChild(cmd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if pgid, err := syscall.Getpgid(cmd.Process.Pid); err != nil || pgid != cmd.Process.Pid {
		t.Errorf("process group of %d: %d (%v), want its own", cmd.Process.Pid, pgid, err)
	}
}

// TestNPMCITimesOut: an `npm ci` that hangs (a registry that accepts the
// connection and never answers) is stopped at its timeout, with its
// children, and the error says that it timed out.
func TestNPMCITimesOut(t *testing.T) {
	npm := filepath.Join(t.TempDir(), "npm")
	// A child holding the output pipe, as npm's own would.
	if err := os.WriteFile(npm, []byte("#!/bin/sh\nsleep 30\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- npmCI(npm, t.TempDir(), 300*time.Millisecond) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "timed out after 300ms") {
			t.Fatalf("npm ci that hangs: %v, want an error saying it timed out after 300ms", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("npm ci that hangs did not return within 10s of its 300ms timeout")
	}
}
