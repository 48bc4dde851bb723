package testenv

import (
	"net"
	"net/url"
	"os"
	"testing"
)

// Environment variables describing the throwaway OpenLDAP server (slapd)
// that the harness starts, loaded with internal/testenv/testdata/slapd-fixture.ldif.
const (
	// EnvLDAPURL is the plain listener, ldap://127.0.0.1:PORT (StartTLS available).
	EnvLDAPURL = "APPAUTH_TEST_LDAP_URL"
	// EnvLDAPSURL is the TLS listener, ldaps://127.0.0.1:PORT.
	EnvLDAPSURL = "APPAUTH_TEST_LDAPS_URL"
	// EnvLDAPCA is the PEM file of the CA that signed the server's
	// certificate (for 127.0.0.1 and localhost).
	EnvLDAPCA = "APPAUTH_TEST_LDAP_CA"
	// EnvLDAPBaseDN is the suffix of the directory, dc=example,dc=org.
	EnvLDAPBaseDN = "APPAUTH_TEST_LDAP_BASE_DN"
	// EnvLDAPBindDN and EnvLDAPBindPassword are a read-only service account.
	EnvLDAPBindDN       = "APPAUTH_TEST_LDAP_BIND_DN"
	EnvLDAPBindPassword = "APPAUTH_TEST_LDAP_BIND_PASSWORD"
	// EnvLDAPAdminDN and EnvLDAPAdminPassword are the root DN, which may
	// write (add, modify and delete entries).
	EnvLDAPAdminDN       = "APPAUTH_TEST_LDAP_ADMIN_DN"
	EnvLDAPAdminPassword = "APPAUTH_TEST_LDAP_ADMIN_PASSWORD"
	// EnvLDAPCtl is a script that takes "stop" or "start" and stops or
	// starts exactly that slapd (waiting until done).
	EnvLDAPCtl = "APPAUTH_TEST_LDAP_CTL"
	// EnvLDAPLock is the lock file that keeps outages (StopLDAP) from hitting
	// tests of other packages; see EnvPostgresLock.
	EnvLDAPLock = "APPAUTH_TEST_LDAP_LOCK"
	// EnvLDAPLog is slapd's log (loglevel stats: connections, binds, search
	// filters), for debugging.
	EnvLDAPLog = "APPAUTH_TEST_LDAP_LOG"
)

var ldapLocks = newLockSet("slapd", "StopLDAP", EnvLDAPLock)

// LDAPServer describes the throwaway slapd. Its directory holds the users
// and groups of authtest.FixtureUsers under ou=people and ou=groups, plus
// users whose logins hold filter and DN metacharacters ("star*user",
// "paren(user)", `back\slash`, "space user"). dave is locked with the
// ppolicy attribute pwdAccountLockedTime; groups are groupOfNames with
// member, and the memberof overlay maintains memberOf. The server allows
// an unauthenticated bind (a DN with an empty password), as a careless
// server would.
type LDAPServer struct {
	URL, TLSURL            string // ldap://127.0.0.1:PORT and ldaps://127.0.0.1:PORT
	CAFile                 string // the CA of the server certificate
	BaseDN                 string
	BindDN, BindPassword   string // read-only service account
	AdminDN, AdminPassword string // root DN: writes anything
	LogFile                string // slapd's log, may be empty
}

// LDAP returns the throwaway slapd, holding it (shared) until the test ends
// so that no other test stops it meanwhile. Tests that change entries must
// use entries of their own (and remove them), since the server is shared.
//
// Without APPAUTH_TEST_LDAP_URL, or if the server does not answer, the test
// is skipped with a message naming `make test`, or fails when [Strict].
func LDAP(t testing.TB) *LDAPServer {
	t.Helper()
	s := &LDAPServer{
		URL: os.Getenv(EnvLDAPURL), TLSURL: os.Getenv(EnvLDAPSURL), CAFile: os.Getenv(EnvLDAPCA),
		BaseDN: os.Getenv(EnvLDAPBaseDN), BindDN: os.Getenv(EnvLDAPBindDN), BindPassword: os.Getenv(EnvLDAPBindPassword),
		AdminDN: os.Getenv(EnvLDAPAdminDN), AdminPassword: os.Getenv(EnvLDAPAdminPassword), LogFile: os.Getenv(EnvLDAPLog),
	}
	if s.URL == "" {
		unavailable(t, "testenv: OpenLDAP is not available: %s is not set", EnvLDAPURL)
		return nil
	}
	if s.TLSURL == "" || s.CAFile == "" || s.BaseDN == "" || s.AdminDN == "" {
		t.Fatalf("testenv: %s is set but %s, %s, %s or %s is not", EnvLDAPURL, EnvLDAPSURL, EnvLDAPCA, EnvLDAPBaseDN, EnvLDAPAdminDN)
	}
	ldapLocks.acquireShared(t)
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatalf("testenv: %s=%s: %v", EnvLDAPURL, s.URL, err)
	}
	c, err := net.DialTimeout("tcp", u.Host, connectTimeout)
	if err != nil {
		unavailable(t, "testenv: OpenLDAP at %s does not answer: %v", s.URL, err)
		return nil
	}
	c.Close()
	return s
}

// StopLDAP stops the throwaway slapd and returns when it is down; open
// connections are closed and new ones refused. Call [StartLDAP] to bring it
// back; if the test ends with it stopped, it is started again. Like
// [StopPostgres], it first waits until no other test uses the server.
//
// If APPAUTH_TEST_LDAP_CTL is unset, the test is skipped (naming
// `make test`), or fails when [Strict].
func StopLDAP(t testing.TB) {
	t.Helper()
	ctl := ldapCtl(t)
	if ldapLocks.beginOutage(t) {
		t.Cleanup(func() {
			if ldapLocks.outageActive(t) {
				if err := runCtl(ctl, "start"); err != nil {
					t.Errorf("testenv: restarting slapd after the test: %v", err)
				}
				ldapLocks.endOutage(t)
			}
		})
	}
	if err := runCtl(ctl, "stop"); err != nil {
		t.Fatalf("testenv: stop slapd: %v", err)
	}
}

// StartLDAP starts the throwaway slapd again after [StopLDAP] and returns
// when it answers. Calling it while the server runs does nothing.
func StartLDAP(t testing.TB) {
	t.Helper()
	ctl := ldapCtl(t)
	if err := runCtl(ctl, "start"); err != nil {
		t.Fatalf("testenv: start slapd: %v", err)
	}
	ldapLocks.endOutage(t)
}

func ldapCtl(t testing.TB) string {
	t.Helper()
	ctl := os.Getenv(EnvLDAPCtl)
	if ctl == "" {
		unavailable(t, "testenv: cannot stop or start slapd: %s is not set", EnvLDAPCtl)
		return ""
	}
	if st, err := os.Stat(ctl); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		unavailable(t, "testenv: cannot stop or start slapd: %s=%s is not an executable file", EnvLDAPCtl, ctl)
		return ""
	}
	return ctl
}
