package testenv

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
)

// fixture is the directory loaded into every throwaway slapd.
//
//go:embed testdata/slapd-fixture.ldif
var fixture []byte

// LDAPServer is a throwaway OpenLDAP server (slapd). Its directory holds the
// users and groups of authtest.FixtureUsers under ou=people and ou=groups,
// plus users whose logins hold filter and DN metacharacters ("star*user",
// "paren(user)", `back\slash`, "space user") (see
// testdata/slapd-fixture.ldif). dave is locked with the ppolicy attribute
// pwdAccountLockedTime; groups are groupOfNames with member, and the
// memberof overlay maintains memberOf. The server allows an unauthenticated
// bind (a DN with an empty password), as a careless server would.
type LDAPServer struct {
	URL, TLSURL            string // ldap://127.0.0.1:PORT (StartTLS available) and ldaps://127.0.0.1:PORT
	CAFile                 string // PEM of the CA of the server certificate (for 127.0.0.1 and localhost)
	BaseDN                 string // dc=example,dc=org
	BindDN, BindPassword   string // read-only service account
	AdminDN, AdminPassword string // root DN: writes anything
	LogFile                string // slapd's log (loglevel stats: connections, binds, search filters)

	server
}

var sharedLDAP = sync.OnceValues(func() (*LDAPServer, error) {
	s, err := startLDAP()
	if err != nil {
		return nil, err
	}
	s.shared = true
	onExit(s.close)
	return s, nil
})

// LDAP returns the test binary's shared slapd. Tests that change entries
// must use entries of their own (and remove them), since other tests use
// the server too; a test that stops or pauses it uses [NewLDAP] instead.
//
// If slapd is not installed, the test is skipped with a message naming
// `make test`, or fails when [Strict].
func LDAP(t testing.TB) *LDAPServer {
	t.Helper()
	requireMain(t)
	s, err := sharedLDAP()
	if err != nil {
		need(t, err)
	}
	return s
}

// NewLDAP starts a slapd for this test alone, which it may stop, pause and
// restart; it is removed when the test ends. If slapd is not installed, the
// test is skipped (or fails when [Strict]).
func NewLDAP(t testing.TB) *LDAPServer {
	t.Helper()
	s, err := startLDAP()
	if err != nil {
		need(t, err)
	}
	t.Cleanup(s.close)
	return s
}

func (s *LDAPServer) close() {
	if err := s.proc.stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.RemoveAll(s.dir)
}

// firstDirWith returns the first of dirs that holds file.
func firstDirWith(file string, dirs ...string) (string, bool) {
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, file)); err == nil {
			return d, true
		}
	}
	return "", false
}

// slapdConfig is cn=config, the LDIF that slapadd (slapd -Ta) loads:
// memberof and ppolicy overlays on an mdb database, TLS, anonymous binds
// with a DN allowed, loglevel stats. Its arguments: the server's directory,
// the module directory, the module loads, the schema includes, the admin
// password.
const slapdConfig = `dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: %[1]s/slapd.pid
olcArgsFile: %[1]s/slapd.args
olcTLSCACertificateFile: %[1]s/tls/ca.crt
olcTLSCertificateFile: %[1]s/tls/server.crt
olcTLSCertificateKeyFile: %[1]s/tls/server.key
olcAllows: bind_anon_cred bind_anon_dn
olcLogLevel: stats

dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: %[2]s
%[3]s
dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

%[4]s
dn: olcDatabase={-1}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {-1}frontend
olcSizeLimit: 1000

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcAccess: {0}to * by * none

dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcSuffix: dc=example,dc=org
olcRootDN: cn=admin,dc=example,dc=org
olcRootPW: %[5]s
olcDbDirectory: %[1]s/data
olcDbMaxSize: 268435456
olcDbNoSync: TRUE
olcDbIndex: objectClass eq
olcDbIndex: uid eq
olcDbIndex: mail eq
olcDbIndex: member eq
olcDbIndex: entryUUID eq
olcAccess: {0}to attrs=userPassword by anonymous auth by * none
olcAccess: {1}to * by * read

dn: olcOverlay={0}memberof,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcMemberOf
olcOverlay: {0}memberof
olcMemberOfRefInt: TRUE
olcMemberOfGroupOC: groupOfNames
olcMemberOfMemberAD: member
olcMemberOfMemberOfAD: memberOf

dn: olcOverlay={1}ppolicy,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcPPolicyConfig
olcOverlay: {1}ppolicy
olcPPolicyDefault: cn=default,ou=policies,dc=example,dc=org
`

// startLDAP makes and starts a slapd in a new directory and loads the fixture.
func startLDAP() (*LDAPServer, error) {
	bin, ok := findProgram([]string{"slapd"}, "/usr/sbin", "/usr/local/sbin", "/usr/libexec", "/usr/local/libexec")
	if !ok {
		return nil, &missingError{"testenv: OpenLDAP is not installed: no slapd on PATH or in /usr/sbin (Debian package slapd)"}
	}
	moddir, ok1 := firstDirWith("memberof.so", "/usr/lib/ldap", "/usr/lib/x86_64-linux-gnu/ldap", "/usr/lib/aarch64-linux-gnu/ldap",
		"/usr/lib64/openldap", "/usr/lib/openldap", "/usr/libexec/openldap", "/usr/local/libexec/openldap")
	schemadir, ok2 := firstDirWith("inetorgperson.ldif", "/etc/ldap/schema", "/etc/openldap/schema", "/usr/local/etc/openldap/schema")
	if !ok1 || !ok2 {
		return nil, &missingError{"testenv: OpenLDAP is incomplete: found " + bin + " but not its modules (memberof.so in /usr/lib/ldap) or schema (/etc/ldap/schema)"}
	}
	dir, err := serverDir("ldap", nil)
	if err != nil {
		return nil, err
	}
	s := &LDAPServer{
		CAFile: filepath.Join(dir, "tls", "ca.crt"), BaseDN: "dc=example,dc=org",
		BindDN: "cn=appauth,ou=services,dc=example,dc=org", BindPassword: "service-Secret-0",
		AdminDN: "cn=admin,dc=example,dc=org", AdminPassword: randomHex(16),
		LogFile: filepath.Join(dir, "slapd.log"), server: server{kind: "LDAPServer", ctor: "NewLDAP", dir: dir},
	}
	if err := s.init(bin, moddir, schemadir); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *LDAPServer) init(bin, moddir, schemadir string) error {
	for _, d := range []string{"config", "data", "tls"} {
		if err := os.Mkdir(filepath.Join(s.dir, d), 0o700); err != nil {
			return fmt.Errorf("testenv: %w", err)
		}
	}
	if err := writePKI(filepath.Join(s.dir, "tls")); err != nil {
		return err
	}
	// Ubuntu confines /usr/sbin/slapd with AppArmor to its own paths; a copy
	// of the program is not confined.
	if _, err := os.Stat("/etc/apparmor.d/usr.sbin.slapd"); err == nil {
		b, err := os.ReadFile(bin)
		if err == nil {
			bin = filepath.Join(s.dir, "slapd")
			err = os.WriteFile(bin, b, 0o755)
		}
		if err != nil {
			return fmt.Errorf("testenv: copy slapd: %w", err)
		}
	}
	var modules, schema strings.Builder
	if _, err := os.Stat(filepath.Join(moddir, "back_mdb.so")); err == nil {
		modules.WriteString("olcModuleLoad: back_mdb\n")
	}
	modules.WriteString("olcModuleLoad: memberof\nolcModuleLoad: ppolicy\n")
	for _, f := range []string{"core", "cosine", "inetorgperson", "nis", "ppolicy"} {
		// OpenLDAP 2.4 ships the ppolicy schema as a file; 2.5+ builds it in.
		if p := filepath.Join(schemadir, f+".ldif"); f != "ppolicy" || fileExists(p) {
			fmt.Fprintf(&schema, "include: file://%s\n", p)
		}
	}
	conf := filepath.Join(s.dir, "config.ldif")
	text := fmt.Sprintf(slapdConfig, s.dir, moddir, modules.String(), schema.String(), s.AdminPassword)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return fmt.Errorf("testenv: %w", err)
	}
	confDir := filepath.Join(s.dir, "config")
	if err := runChild(exec.Command(bin, "-Ta", "-n0", "-F", confDir, "-l", conf), nil); err != nil {
		return fmt.Errorf("testenv: slapd configuration: %w", err)
	}

	s.proc = &proc{
		name: "slapd", path: bin, dir: s.dir, logPath: s.LogFile, stopSig: syscall.SIGTERM,
		ready: func(ctx context.Context) error { return rootDSE(ctx, s.URL) },
	}
	_, err := startOnFreePort(s.proc, 2, func(ports []int) []string {
		s.URL = "ldap://127.0.0.1:" + strconv.Itoa(ports[0])
		s.TLSURL = "ldaps://127.0.0.1:" + strconv.Itoa(ports[1])
		// -d keeps slapd in the foreground, logging to stderr.
		return []string{"-F", confDir, "-h", s.URL + "/ " + s.TLSURL + "/", "-d", "stats"}
	})
	if err != nil {
		return err
	}
	return s.load(fixture)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// rootDSE reads the root DSE anonymously: slapd answers LDAP.
func rootDSE(_ context.Context, url string) error {
	c, err := goldap.DialURL(url, goldap.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}))
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetTimeout(2 * time.Second)
	_, err = c.Search(goldap.NewSearchRequest("", goldap.ScopeBaseObject, goldap.NeverDerefAliases,
		0, 2, false, "(objectClass=*)", []string{"namingContexts"}, nil))
	return err
}

// relaxControl lets the root DN write operational attributes such as
// pwdAccountLockedTime (draft-zeilenga-ldap-relax).
var relaxControl = goldap.NewControlString("1.3.6.1.4.1.4203.666.5.12", true, "")

// load adds the entries of an LDIF (records of "attr: value" and base64
// "attr:: value" lines, # comments) through the running server, so that the
// overlays see them.
func (s *LDAPServer) load(ldif []byte) error {
	entries, err := parseLDIF(ldif)
	if err != nil {
		return err
	}
	c, err := goldap.DialURL(s.URL)
	if err != nil {
		return fmt.Errorf("testenv: load fixture: %w", err)
	}
	defer c.Close()
	if err := c.Bind(s.AdminDN, s.AdminPassword); err != nil {
		return fmt.Errorf("testenv: load fixture: %w", err)
	}
	for _, e := range entries {
		req := goldap.NewAddRequest(e.DN, []goldap.Control{relaxControl})
		for _, a := range e.Attributes {
			req.Attribute(a.Name, a.Values)
		}
		if err := c.Add(req); err != nil {
			return fmt.Errorf("testenv: load fixture: add %s: %w", e.DN, err)
		}
	}
	return nil
}

// parseLDIF parses the content records of an LDIF file.
func parseLDIF(b []byte) ([]*goldap.Entry, error) {
	var entries []*goldap.Entry
	var cur *goldap.Entry
	var lines []string
	// Unfold: a line starting with a space continues the one before.
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		l := strings.TrimSuffix(sc.Text(), "\r")
		if strings.HasPrefix(l, " ") && len(lines) > 0 && lines[len(lines)-1] != "" {
			lines[len(lines)-1] += l[1:]
			continue
		}
		lines = append(lines, l)
	}
	for i, l := range append(lines, "") {
		switch {
		case strings.HasPrefix(l, "#"):
			continue
		case l == "":
			if cur != nil {
				entries = append(entries, cur)
				cur = nil
			}
			continue
		}
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			return nil, fmt.Errorf("testenv: LDIF line %d: no colon", i+1)
		}
		if v, ok := strings.CutPrefix(value, ":"); ok {
			d, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
			if err != nil {
				return nil, fmt.Errorf("testenv: LDIF line %d: %w", i+1, err)
			}
			value = string(d)
		} else {
			value = strings.TrimLeft(value, " ")
		}
		switch {
		case cur == nil && strings.EqualFold(name, "dn"):
			cur = &goldap.Entry{DN: value}
		case cur == nil:
			return nil, fmt.Errorf("testenv: LDIF line %d: want dn, got %s", i+1, name)
		default:
			addValue(cur, name, value)
		}
	}
	return entries, nil
}

func addValue(e *goldap.Entry, name, value string) {
	for _, a := range e.Attributes {
		if strings.EqualFold(a.Name, name) {
			a.Values = append(a.Values, value)
			return
		}
	}
	e.Attributes = append(e.Attributes, &goldap.EntryAttribute{Name: name, Values: []string{value}})
}
