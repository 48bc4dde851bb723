package ldap_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/authtest"
	"github.com/appauth/appauth/backends/ldap"
	"github.com/appauth/appauth/internal/testenv"
)

// TestDirectory runs the conformance suite over StartTLS with the OpenLDAP
// preset (groups from memberOf, nested), and with groups from a search.
func TestDirectory(t *testing.T) {
	s := testenv.LDAP(t)
	t.Run("memberOf", func(t *testing.T) {
		authtest.RunDirectoryTests(t, func(t *testing.T) authtest.DirectoryFixture {
			c := config(s)
			c.StartTLS = true
			d := open(t, c)
			return authtest.DirectoryFixture{Directory: d, Verifier: d}
		})
	})
	t.Run("GroupSearch", func(t *testing.T) {
		authtest.RunDirectoryTests(t, func(t *testing.T) authtest.DirectoryFixture {
			c := config(s, s.TLSURL)
			c.GroupsAttribute = ""
			c.GroupFilter = ldap.GroupFilterMember
			c.GroupBaseDN = "ou=groups," + s.BaseDN
			c.GroupCacheTTL = -1
			c.Disabled = ldap.DisabledRule{Filter: "(pwdAccountLockedTime=*)"}
			d := open(t, c)
			return authtest.DirectoryFixture{Directory: d, Verifier: d}
		})
	})
}

func TestConfigValidation(t *testing.T) {
	good := ldap.OpenLDAP([]string{"ldap://127.0.0.1"}, "dc=example,dc=org")
	for name, edit := range map[string]func(*ldap.Config){
		"no URLs":             func(c *ldap.Config) { c.URLs = nil },
		"no BaseDN":           func(c *ldap.Config) { c.BaseDN = "" },
		"bad scheme":          func(c *ldap.Config) { c.URLs = []string{"http://x"} },
		"no host":             func(c *ldap.Config) { c.URLs = []string{"ldap://"} },
		"StartTLS with ldaps": func(c *ldap.Config) { c.URLs = []string{"ldaps://x"}; c.StartTLS = true },
		"DN, no password":     func(c *ldap.Config) { c.BindDN = "cn=x" },
		"password, no DN":     func(c *ldap.Config) { c.BindPassword = "x" },
		"filter w/o login":    func(c *ldap.Config) { c.UserFilter = "(uid=*)" },
		"missing CA file":     func(c *ldap.Config) { c.CAFile = "/nonexistent/ca.pem" },
		"negative pool":       func(c *ldap.Config) { c.PoolSize = -1 },
		// A filter that does not compile fails every search: an error at
		// New, not 503 for every request as if the directory were down.
		"malformed UserFilter":  func(c *ldap.Config) { c.UserFilter = "(&(objectClass=inetOrgPerson)(uid={login})" },
		"malformed GroupFilter": func(c *ldap.Config) { c.GroupsAttribute, c.GroupFilter = "", "(member={dn}" },
		"malformed Disabled":    func(c *ldap.Config) { c.Disabled = ldap.DisabledRule{Filter: "loginShell=/bin/false)"} },
	} {
		c := good
		edit(&c)
		if _, err := ldap.New(c, nil); err == nil || !strings.HasPrefix(err.Error(), "ldap: ") {
			t.Errorf("%s: New = %v, want an error prefixed \"ldap: \"", name, err)
		}
	}
	if _, err := ldap.New(good, nil); err != nil {
		t.Errorf("good config: %v", err)
	}
	// The bind password never reaches a log line.
	var buf strings.Builder
	c := good
	c.BindDN, c.BindPassword = "cn=svc", "hunter2-secret"
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "ldap", c)
	if strings.Contains(buf.String(), "hunter2") || !strings.Contains(buf.String(), "cn=svc") {
		t.Errorf("logged config: %s", buf.String())
	}
}

// TestInjection checks SECURITY.md's hostile logins: each is escaped into
// the filter actually sent (read off the wire), matches nobody, and the
// users whose logins hold metacharacters are found exactly.
func TestInjection(t *testing.T) {
	s := testenv.LDAP(t)
	p := newProxy(t, hostOf(t, s.URL), false)
	d := open(t, config(s, p.URL()))
	ctx := t.Context()
	for login, wantFilter := range map[string]string{
		"*":               `(&(objectClass=inetOrgPerson)(uid=\2a))`,
		"a*":              `(&(objectClass=inetOrgPerson)(uid=a\2a))`,
		"*)(uid=*":        `(&(objectClass=inetOrgPerson)(uid=\2a\29\28uid=\2a))`,
		"admin)(|(uid=*":  `(&(objectClass=inetOrgPerson)(uid=admin\29\28|\28uid=\2a))`,
		`\`:               `(&(objectClass=inetOrgPerson)(uid=\5c))`,
		`alice\2a`:        `(&(objectClass=inetOrgPerson)(uid=alice\5c2a))`,
		"zoë*":            `(&(objectClass=inetOrgPerson)(uid=zo\c3\ab\2a))`,
		"star*":           `(&(objectClass=inetOrgPerson)(uid=star\2a))`,
		"paren(":          `(&(objectClass=inetOrgPerson)(uid=paren\28))`,
		"alice)(uid=bob)": `(&(objectClass=inetOrgPerson)(uid=alice\29\28uid=bob\29))`,
	} {
		_, _, before := p.counts()
		u, err := d.LookupUser(ctx, login)
		if !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("LookupUser(%q) = %+v, %v; want ErrNotFound", login, u, err)
		}
		if _, err := d.VerifyPassword(ctx, login, "alice-Secret-1"); !errors.Is(err, auth.ErrInvalidCredentials) {
			t.Errorf("VerifyPassword(%q) = %v; want ErrInvalidCredentials", login, err)
		}
		_, _, after := p.counts()
		sent := after[len(before):]
		if len(sent) == 0 || !strings.EqualFold(sent[0], wantFilter) {
			t.Errorf("login %q: filters sent %q, want %q first", login, sent, wantFilter)
		}
		for _, f := range sent {
			if !strings.EqualFold(f, wantFilter) {
				t.Errorf("login %q: unexpected filter %q", login, f)
			}
		}
	}
	// Refused before any request: NUL, control characters, surrounding
	// or double spaces, empty, too long, no valid login (auth.CanonicalLogin).
	_, _, before := p.counts()
	for _, login := range []string{"alice\x00", "alice\n", " alice", "alice ", "space  user", "ſam", "", strings.Repeat("a", 300)} {
		if _, err := d.LookupUser(ctx, login); !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("LookupUser(%q) = %v; want ErrNotFound", login, err)
		}
	}
	if _, _, after := p.counts(); len(after) != len(before) {
		t.Errorf("malformed logins were sent: %q", after[len(before):])
	}
	// Users whose logins hold metacharacters are found, exactly.
	for login, password := range map[string]string{
		"star*user": "star-Secret-6", "paren(user)": "paren-Secret-7", `back\slash`: "back-Secret-8", "space user": "space-Secret-9",
		"STAR*USER": "star-Secret-6",
	} {
		u, err := d.VerifyPassword(ctx, login, password)
		if err != nil || !strings.EqualFold(u.Login, login) {
			t.Errorf("VerifyPassword(%q) = %+v, %v", login, u, err)
		}
	}
}

func hostOf(t testing.TB, rawURL string) string {
	t.Helper()
	h, ok := strings.CutPrefix(rawURL, "ldap://")
	if !ok {
		t.Fatalf("not an ldap:// URL: %s", rawURL)
	}
	return h
}

// TestEmptyPasswordNoBind: the server accepts a bind with a DN and an
// empty password (as anonymous); the library must never send one.
func TestEmptyPasswordNoBind(t *testing.T) {
	s := testenv.LDAP(t)
	raw, err := goldap.DialURL(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if err := raw.UnauthenticatedBind("uid=alice,ou=people," + s.BaseDN); err != nil {
		t.Fatalf("the test server should accept an unauthenticated bind (olcAllows: bind_anon_dn): %v", err)
	}

	p := newProxy(t, hostOf(t, s.URL), false)
	d := open(t, config(s, p.URL()))
	// Only spaces, or a NUL (a C server may read "\x00..." as ""): no bind either.
	for _, c := range [][2]string{{"alice", ""}, {"", ""}, {"*", ""}, {"bob", ""}, {"alice", " "}, {"alice", "\t \r\n"}, {"alice", "\x00"}, {"alice", "\x00alice-Secret-1"}} {
		if u, err := d.VerifyPassword(t.Context(), c[0], c[1]); !errors.Is(err, auth.ErrInvalidCredentials) {
			t.Errorf("VerifyPassword(%q, %q) = %+v, %v; want ErrInvalidCredentials", c[0], c[1], u, err)
		}
	}
	if conns, binds, filters := p.counts(); conns != 0 || binds != 0 || len(filters) != 0 {
		t.Errorf("empty passwords reached the server: %d connections, %d binds, searches %q", conns, binds, filters)
	}
}

// TestTLS: a good certificate works over ldaps:// and StartTLS; a wrong
// host name, an untrusted CA and a refused StartTLS fail with a clear error
// and no bind.
func TestTLS(t *testing.T) {
	s := testenv.LDAP(t)
	ctx := t.Context()
	verify := func(c ldap.Config) error {
		d := open(t, c)
		_, err := d.VerifyPassword(ctx, "alice", "alice-Secret-1")
		return err
	}
	t.Run("ldaps", func(t *testing.T) {
		if err := verify(config(s, s.TLSURL)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("StartTLS", func(t *testing.T) {
		p := newProxy(t, hostOf(t, s.URL), false)
		c := config(s, p.URL())
		c.StartTLS = true
		if err := verify(c); err != nil {
			t.Fatal(err)
		}
		if _, binds, filters := p.counts(); p.startTLS == 0 || binds != 0 || len(filters) != 0 {
			t.Errorf("StartTLS %d times, then %d binds and %d searches in the clear", p.startTLS, binds, len(filters))
		}
	})

	otherCA := writeOtherCA(t)
	for name, tc := range map[string]struct {
		edit func(*ldap.Config)
		want func(error) bool
	}{
		"wrong host name": {func(c *ldap.Config) { c.ServerName = "ldap.wrong.example" }, func(err error) bool {
			var h x509.HostnameError
			return errors.As(err, &h)
		}},
		"untrusted CA": {func(c *ldap.Config) { c.CAFile = otherCA }, func(err error) bool {
			var u x509.UnknownAuthorityError
			return errors.As(err, &u) || strings.Contains(err.Error(), "certificate signed by unknown authority")
		}},
	} {
		t.Run(name+"/ldaps", func(t *testing.T) {
			c := config(s, s.TLSURL)
			tc.edit(&c)
			err := verify(c)
			if !errors.Is(err, auth.ErrUnavailable) || !tc.want(err) {
				t.Fatalf("VerifyPassword = %v; want ErrUnavailable naming the certificate problem", err)
			}
		})
		t.Run(name+"/StartTLS", func(t *testing.T) {
			p := newProxy(t, hostOf(t, s.URL), false)
			c := config(s, p.URL())
			c.StartTLS = true
			tc.edit(&c)
			err := verify(c)
			if !errors.Is(err, auth.ErrUnavailable) || !strings.Contains(err.Error(), "StartTLS") {
				t.Fatalf("VerifyPassword = %v; want ErrUnavailable naming StartTLS", err)
			}
			if _, binds, _ := p.counts(); binds != 0 || p.plaintext != 0 {
				t.Errorf("after the failed handshake: %d binds, %d messages in the clear", binds, p.plaintext)
			}
		})
	}
	t.Run("StartTLS refused", func(t *testing.T) {
		p := newProxy(t, hostOf(t, s.URL), true)
		c := config(s, p.URL())
		c.StartTLS = true
		err := verify(c)
		if !errors.Is(err, auth.ErrUnavailable) || !strings.Contains(err.Error(), "StartTLS") {
			t.Fatalf("VerifyPassword = %v; want ErrUnavailable naming StartTLS", err)
		}
		if _, binds, filters := p.counts(); p.startTLS == 0 || binds != 0 || len(filters) != 0 {
			t.Errorf("StartTLS tried %d times, then %d binds and searches %q in the clear", p.startTLS, binds, filters)
		}
	})
	t.Run("InsecureSkipVerify", func(t *testing.T) {
		c := config(s, s.TLSURL)
		c.CAFile, c.InsecureSkipVerify = otherCA, true
		if err := verify(c); err != nil {
			t.Fatalf("with verification skipped explicitly: %v", err)
		}
	})
}

// writeOtherCA writes a CA certificate that signed nothing of the server's.
func writeOtherCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "some other CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "other-ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// blackHole accepts connections and never answers; it counts them.
func blackHole(t *testing.T) (url string, accepted *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted = &atomic.Int64{}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				for _, c := range conns {
					c.Close()
				}
				return
			}
			accepted.Add(1)
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() { l.Close(); <-done })
	return "ldap://" + l.Addr().String(), accepted
}

// closedPort returns an ldap:// URL where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "ldap://" + addr
}

// TestFailover: the first server is dead (a closed port, or a listener
// that never answers); the second serves, and the dead one is skipped on
// the next connections.
func TestFailover(t *testing.T) {
	s := testenv.LDAP(t)
	ctx := t.Context()
	t.Run("closed port", func(t *testing.T) {
		c := config(s, closedPort(t), s.URL)
		d := open(t, c)
		if u, err := d.VerifyPassword(ctx, "alice", "alice-Secret-1"); err != nil || u.Login != "alice" {
			t.Fatalf("VerifyPassword = %+v, %v", u, err)
		}
	})
	t.Run("never answers", func(t *testing.T) {
		hole, accepted := blackHole(t)
		c := config(s, hole, s.URL)
		c.DialTimeout = 300 * time.Millisecond // the bound on the dead server's cost
		d := open(t, c)
		if u, err := d.VerifyPassword(ctx, "alice", "alice-Secret-1"); err != nil || u.Login != "alice" {
			t.Fatalf("VerifyPassword = %+v, %v", u, err)
		}
		if accepted.Load() == 0 {
			t.Fatal("the first server was never tried")
		}
		n := accepted.Load()
		// Once known dead, it is skipped: new connections go to the second.
		var wg = make(chan error, 8)
		for range 8 {
			go func() {
				_, err := d.VerifyPassword(ctx, "bob", "bob-Secret-2")
				wg <- err
			}()
		}
		for range 8 {
			if err := <-wg; err != nil {
				t.Error(err)
			}
		}
		if accepted.Load() != n {
			t.Errorf("the dead server was tried again %d times within DeadServerBackoff", accepted.Load()-n)
		}
	})
	t.Run("all dead, ctx deadline", func(t *testing.T) {
		hole, _ := blackHole(t)
		c := config(s, hole)
		c.DialTimeout = time.Minute
		d := open(t, c)
		cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		_, err := d.LookupUser(cctx, "alice")
		if !errors.Is(err, auth.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("LookupUser with a context deadline = %v; want ErrUnavailable and DeadlineExceeded", err)
		}
	})
}

// TestExpiredContextDoesNotMarkServerDead: a caller whose deadline has
// passed fails, but the server it would have used is not skipped for the
// others (which would send every connection to the replica).
func TestExpiredContextDoesNotMarkServerDead(t *testing.T) {
	s := testenv.LDAP(t)
	first, second := newProxy(t, hostOf(t, s.URL), false), newProxy(t, hostOf(t, s.URL), false)
	d := open(t, config(s, first.URL(), second.URL()))
	if _, err := d.LookupUser(t.Context(), "alice"); err != nil {
		t.Fatal(err)
	}
	expired, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel()
	if _, err := d.LookupUser(expired, "alice"); !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("LookupUser with an expired context = %v; want ErrUnavailable", err)
	}
	for range 3 {
		if _, err := d.VerifyPassword(t.Context(), "alice", "alice-Secret-1"); err != nil {
			t.Fatal(err)
		}
	}
	if conns, _, _ := second.counts(); conns != 0 {
		t.Errorf("the second server got %d connections: an expired context marked the first dead", conns)
	}
}

// TestOutage stops slapd under a Directory: every answer is ErrUnavailable
// (a wrong password too: it cannot be told), and after slapd is back the
// same Directory works again.
func TestOutage(t *testing.T) {
	s := testenv.NewLDAP(t) // stopped below: a server of its own
	c := config(s)
	c.DialTimeout = 2 * time.Second
	d := open(t, c)
	ctx := t.Context()
	if _, err := d.VerifyPassword(ctx, "alice", "alice-Secret-1"); err != nil {
		t.Fatal(err)
	}
	s.Stop(t)
	for name, call := range map[string]func() error{
		"good password":  func() error { _, err := d.VerifyPassword(ctx, "alice", "alice-Secret-1"); return err },
		"wrong password": func() error { _, err := d.VerifyPassword(ctx, "alice", "wrong"); return err },
		"lookup":         func() error { _, err := d.LookupUser(ctx, "alice"); return err },
	} {
		err := call()
		if !errors.Is(err, auth.ErrUnavailable) || errors.Is(err, auth.ErrInvalidCredentials) || errors.Is(err, auth.ErrNotFound) {
			t.Errorf("%s during the outage: %v; want ErrUnavailable only", name, err)
		}
	}
	s.Start(t)
	if u, err := d.VerifyPassword(ctx, "alice", "alice-Secret-1"); err != nil || u.Login != "alice" {
		t.Fatalf("after slapd is back: %+v, %v", u, err)
	}
	if _, err := d.VerifyPassword(ctx, "alice", "wrong"); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Fatalf("wrong password after slapd is back: %v", err)
	}
}

// TestGroupsAndDisabled checks groups (direct and nested) and the disabled
// rule directly, and a user locked while the Directory runs.
func TestGroupsAndDisabled(t *testing.T) {
	s := testenv.LDAP(t)
	d := open(t, config(s))
	ctx := t.Context()
	u, err := d.LookupUser(ctx, "alice")
	if err != nil || !slices.Equal(u.Groups, []string{"everyone", "staff"}) {
		t.Fatalf("alice: %+v, %v; want groups everyone (nested) and staff", u, err)
	}
	c := config(s)
	c.NestedGroups = false
	if u, err := open(t, c).LookupUser(ctx, "alice"); err != nil || !slices.Equal(u.Groups, []string{"staff"}) {
		t.Fatalf("alice without nesting: %+v, %v; want staff only", u, err)
	}
	login, dn := addUser(t, s, "tmp-Secret-1")
	if _, err := d.VerifyPassword(ctx, login, "tmp-Secret-1"); err != nil {
		t.Fatal(err)
	}
	lock(t, s, dn)
	if u, err := d.LookupUser(ctx, login); err != nil || !u.Disabled {
		t.Fatalf("locked user: %+v, %v; want Disabled", u, err)
	}
	if _, err := d.VerifyPassword(ctx, login, "tmp-Secret-1"); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Fatalf("locked user signed in: %v", err)
	}
}

// TestDeadServersDialledOncePerCall: with every server hung, one call
// dials each server once (not once more in a "try the dead ones" pass),
// and while one call is trying servers that all failed recently, another
// fails at once with ErrUnavailable instead of waiting on them too.
func TestDeadServersDialledOncePerCall(t *testing.T) {
	s := testenv.LDAP(t)
	hole1, accepted1 := blackHole(t)
	hole2, accepted2 := blackHole(t)
	c := config(s, hole1, hole2)
	c.DialTimeout = 5 * time.Second // long enough that the second caller always starts while the probe dials
	d := open(t, c)
	ctx := t.Context()
	if _, err := d.LookupUser(ctx, "alice"); !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("LookupUser with every server hung = %v; want ErrUnavailable", err)
	}
	if a, b := accepted1.Load(), accepted2.Load(); a != 1 || b != 1 {
		t.Fatalf("one call dialled the servers %d and %d times; want once each", a, b)
	}
	// Both are now marked dead. One call tries them again...
	probe := make(chan error, 1)
	go func() { _, err := d.LookupUser(ctx, "alice"); probe <- err }()
	for accepted1.Load() < 2 {
		runtime.Gosched()
	}
	// ...and meanwhile another does not wait on them.
	_, err := d.LookupUser(ctx, "bob")
	if !errors.Is(err, auth.ErrUnavailable) || !strings.Contains(err.Error(), "another request is trying them") {
		t.Fatalf("LookupUser while another call tries the dead servers = %v; want ErrUnavailable at once", err)
	}
	if err := <-probe; !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("the probing call = %v; want ErrUnavailable", err)
	}
	if a, b := accepted1.Load(), accepted2.Load(); a != 2 || b != 2 {
		t.Fatalf("two calls (one probing, one refused) dialled the servers %d and %d times; want twice each", a, b)
	}
}

// TestCheck runs Directory.Check against slapd with each setting wrong in
// turn: every misconfiguration is an error naming the setting (and is not
// ErrUnavailable, so a server does not start with it); an unreachable
// directory is ErrUnavailable only (a server starts and serves 503).
func TestCheck(t *testing.T) {
	s := testenv.LDAP(t)
	otherCA := writeOtherCA(t)
	for name, tc := range map[string]struct {
		edit func(*ldap.Config)
		want []string // in the error; nil: no error
	}{
		"good":                   {func(*ldap.Config) {}, nil},
		"good, ldaps":            {func(c *ldap.Config) { c.URLs = []string{s.TLSURL} }, nil},
		"wrong bind password":    {func(c *ldap.Config) { c.BindPassword = "not-the-Password-7x" }, []string{"BindPassword", "result 49"}},
		"wrong bind DN":          {func(c *ldap.Config) { c.BindDN = "cn=nobody," + s.BaseDN }, []string{"BindDN", "result 49"}},
		"missing base DN":        {func(c *ldap.Config) { c.BaseDN = "ou=nowhere," + s.BaseDN }, []string{"BaseDN", "ou=nowhere", "result 32"}},
		"filter matches nobody":  {func(c *ldap.Config) { c.UserFilter = "(&(objectClass=device)(cn={login}))" }, []string{"UserFilter", "objectClass=device", "matches no entry"}},
		"untrusted CA, ldaps":    {func(c *ldap.Config) { c.URLs, c.CAFile = []string{s.TLSURL}, otherCA }, []string{"CAFile", otherCA}},
		"untrusted CA, StartTLS": {func(c *ldap.Config) { c.StartTLS, c.CAFile = true, otherCA }, []string{"CAFile", otherCA}},
	} {
		t.Run(name, func(t *testing.T) {
			c := config(s)
			tc.edit(&c)
			err := open(t, c).Check(t.Context())
			t.Logf("Check: %v", err)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Check = %v, want nil", err)
				}
				return
			}
			if err == nil || errors.Is(err, auth.ErrUnavailable) {
				t.Fatalf("Check = %v; want a configuration error, not ErrUnavailable", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Check = %q; want it to name %q", err, w)
				}
			}
			if c.BindPassword != "" && strings.Contains(err.Error(), c.BindPassword) {
				t.Errorf("Check error %q holds the bind password", err)
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		err := open(t, config(s, closedPort(t))).Check(t.Context())
		if !errors.Is(err, auth.ErrUnavailable) {
			t.Fatalf("Check with no server listening = %v; want ErrUnavailable", err)
		}
	})
}
