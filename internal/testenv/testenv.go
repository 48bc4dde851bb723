// Package testenv starts the real services that tests need, from Go, once
// per test binary: a throwaway PostgreSQL server ([Postgres]), a throwaway
// OpenLDAP server ([LDAP]), and it finds headless Chromium ([Chromium]) and
// client programs ([Program]). Some services are made per test, with a
// configuration of the test's: a mail server ([SMTP]), FreeRADIUS
// ([RADIUS]) and an OpenID provider ([OIDC]: oidc-provider on Node.js).
//
// A service starts on first use, in a temporary directory under /tmp, on a
// free loopback port, as a child process of the test binary in its own
// process group that is killed if the binary dies. Every package that uses a
// service runs its tests through [Main]:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// which stops the binary's shared servers and removes their directories once
// the tests are done. Shared servers are never stopped by a test: a test that
// stops, pauses or restarts a server makes its own with [NewPostgres] or
// [NewLDAP], removed when the test ends.
//
// When a program a service needs is not installed (initdb and postgres on
// PATH or in the newest /usr/lib/postgresql/*/bin; slapd on PATH or in
// /usr/sbin; chromium), the test is skipped with a message naming
// `make test`, which installs it; so `go test ./...` passes on any machine.
// Under `make test` (APPAUTH_TEST_STRICT=1, see [Strict]) it fails instead.
// A service that is installed but fails to start always fails the test,
// with the end of its log.
//
// Environment read:
//
//	APPAUTH_TEST_STRICT=1     a missing program fails the test instead of skipping it
//	APPAUTH_TEST_PATH_ONLY=1  look for programs on PATH only, not in the fixed
//	                          directories above; with a PATH that lacks them,
//	                          this shows what a machine without them does
//
// Typical use:
//
//	func TestStore(t *testing.T) {
//		dsn := testenv.Postgres(t) // a fresh, empty database for this test
//		db, err := sql.Open("postgres", dsn)
//		...
//	}
package testenv

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

// Environment variables read by the package.
const (
	// EnvStrict, when "1", turns a missing program into a test failure.
	EnvStrict = "APPAUTH_TEST_STRICT"
	// EnvPathOnly, when "1", makes the package look for programs on PATH
	// only, not in the fixed directories where Debian installs them.
	EnvPathOnly = "APPAUTH_TEST_PATH_ONLY"
)

// hint ends every skip message: the one command that provides the services.
const hint = "run `make test`, which installs what is missing"

// Strict reports whether tests run under `make test` (APPAUTH_TEST_STRICT=1),
// where a test whose service is missing must fail rather than skip.
func Strict() bool { return os.Getenv(EnvStrict) == "1" }

// unavailable ends the test because a program is missing: t.Skip normally,
// t.Fatal in strict mode. It does not return.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if Strict() {
		t.Fatalf("%s (%s=1, so a missing service is a failure)", msg, EnvStrict)
	}
	t.Skipf("%s; %s", msg, hint)
}

// missingError is a program that is not installed (as opposed to one that
// fails): the test skips, or fails when [Strict].
type missingError struct{ msg string }

func (e *missingError) Error() string { return e.msg }

// need ends the test for err from starting a service: a skip (or strict
// failure) for a missing program, a failure for anything else.
func need(t testing.TB, err error) {
	t.Helper()
	if m := (*missingError)(nil); errors.As(err, &m) {
		unavailable(t, "%s", m.msg)
	}
	t.Fatal(err)
}

// findProgram returns the path of the first of names found on PATH or, unless
// APPAUTH_TEST_PATH_ONLY=1, in one of dirs.
func findProgram(names []string, dirs ...string) (string, bool) {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, true
		}
	}
	if os.Getenv(EnvPathOnly) == "1" {
		return "", false
	}
	for _, d := range dirs {
		for _, n := range names {
			p := filepath.Join(d, n)
			if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
				return p, true
			}
		}
	}
	return "", false
}

// newestDirs returns the directories matching pattern, newest version first
// (for /usr/lib/postgresql/*/bin).
func newestDirs(pattern string) []string {
	dirs, _ := filepath.Glob(pattern)
	slices.SortFunc(dirs, func(a, b string) int {
		// Longer first ("15" before "9"), then in reverse order.
		return cmp.Or(cmp.Compare(len(b), len(a)), cmp.Compare(b, a))
	})
	return dirs
}

// shared holds what [Main] stops when the tests of the binary are done.
var shared struct {
	sync.Mutex
	main  bool     // Main is running the tests
	stops []func() // last first
}

// onExit registers fn to run when [Main] ends.
func onExit(fn func()) {
	shared.Lock()
	defer shared.Unlock()
	shared.stops = append(shared.stops, fn)
}

// Main runs the tests of m, then stops the shared servers that the tests
// started and removes their directories, and exits with the tests' status.
// Call it from TestMain in every package whose tests use a service:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
func Main(m *testing.M) {
	shared.Lock()
	shared.main = true
	shared.Unlock()
	code := m.Run()
	shared.Lock()
	stops := shared.stops
	shared.stops = nil
	shared.Unlock()
	for i := len(stops) - 1; i >= 0; i-- {
		stops[i]()
	}
	os.Exit(code)
}

// requireMain fails the test when a shared server is wanted by a package
// without [Main] in its TestMain: the server would outlive the tests only to
// be killed with the binary, leaving its directory behind.
func requireMain(t testing.TB) {
	t.Helper()
	shared.Lock()
	ok := shared.main
	shared.Unlock()
	if !ok {
		t.Fatal("testenv: this package uses a shared test server but has no `func TestMain(m *testing.M) { testenv.Main(m) }`, which stops it")
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}
