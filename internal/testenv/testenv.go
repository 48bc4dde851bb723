// Package testenv gives tests the real services that `make test` starts: a
// throwaway PostgreSQL server and a throwaway OpenLDAP server (see [LDAP]).
//
// The harness (internal/testenv/run.sh, run by `make test`, `make bench`,
// `make fuzz` and .ci/run) starts each service in a temporary directory on a
// free loopback port and describes it to the tests with environment
// variables:
//
//	APPAUTH_TEST_STRICT=1       a test whose service is missing fails instead of skipping
//	APPAUTH_TEST_POSTGRES       superuser DSN of the server, for example
//	                            postgres://appauth@127.0.0.1:PORT/postgres?sslmode=disable
//	APPAUTH_TEST_POSTGRES_CTL   script that takes "stop" or "start" and stops or
//	                            starts exactly that server
//	APPAUTH_TEST_POSTGRES_LOCK  lock file that keeps outages (StopPostgres) from
//	                            hitting tests of other packages running at the same time
//
// A plain `go test ./...` sets none of them: the helpers then skip the test
// with a message naming `make test`, so the tree passes on any machine. Under
// the harness a missing service is a failure (see [Strict]).
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
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lib/pq"
)

// Environment variables set by the harness (internal/testenv/run.sh).
const (
	// EnvStrict, when "1", turns a missing service into a test failure.
	EnvStrict = "APPAUTH_TEST_STRICT"
	// EnvPostgres holds the superuser DSN of the throwaway PostgreSQL server.
	EnvPostgres = "APPAUTH_TEST_POSTGRES"
	// EnvPostgresCtl holds the path of a script that takes "stop" or "start"
	// and stops or starts the throwaway PostgreSQL server (waiting until done).
	EnvPostgresCtl = "APPAUTH_TEST_POSTGRES_CTL"
	// EnvPostgresLock holds the path of a lock file shared by every test
	// process of one run: tests using the server hold it shared, a test that
	// stops the server holds it exclusively. Optional; without it no locking
	// is done.
	EnvPostgresLock = "APPAUTH_TEST_POSTGRES_LOCK"
)

// hint ends every skip message: the one command that provides the services.
const hint = "run `make test` to get throwaway services"

// Timeouts for talking to the server and for waiting on other tests.
const (
	connectTimeout = 30 * time.Second
	ctlTimeout     = 2 * time.Minute
	lockTimeout    = 5 * time.Minute
)

// Strict reports whether tests run under the harness (APPAUTH_TEST_STRICT=1),
// where a test whose service is missing must fail rather than skip.
func Strict() bool { return os.Getenv(EnvStrict) == "1" }

// unavailable ends the test because a service is missing: t.Skip normally,
// t.Fatal in strict mode. It does not return.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if Strict() {
		t.Fatalf("%s (%s=1, so a missing service is a failure)", msg, EnvStrict)
	}
	t.Skipf("%s; %s", msg, hint)
}

// Postgres returns the DSN of a new, empty PostgreSQL database created for
// this test alone, so tests never see each other's tables. The database is
// dropped (WITH (FORCE), closing leftover connections) when the test and its
// subtests finish; close your own *sql.DB in a t.Cleanup registered after
// this call, or earlier.
//
// The server is the one in APPAUTH_TEST_POSTGRES (PostgreSQL 13 or newer;
// the user must be allowed to create databases). If that is unset or the
// server does not answer, the test is skipped with a message naming
// `make test`, or fails when [Strict].
//
// The returned DSN has the same form as APPAUTH_TEST_POSTGRES (a URL, or
// key=value pairs) with the database name replaced; it is meant for lib/pq
// ("postgres" driver).
func Postgres(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(EnvPostgres)
	if admin == "" {
		unavailable(t, "testenv: PostgreSQL is not available: %s is not set", EnvPostgres)
		return ""
	}
	postgresLocks.acquireShared(t)

	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	db, err := sql.Open("postgres", admin)
	if err != nil {
		t.Fatalf("testenv: %s=%s: %v", EnvPostgres, redact(admin), err)
	}
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		unavailable(t, "testenv: PostgreSQL at %s does not answer: %v", redact(admin), err)
		return ""
	}

	name := "appauth_" + randomHex(8)
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(name)); err != nil {
		t.Fatalf("testenv: create database %s: %v", name, err)
	}
	t.Cleanup(func() { dropDatabase(t, admin, name) })

	dsn, err := withDatabase(admin, name)
	if err != nil {
		t.Fatalf("testenv: %s=%s: %v", EnvPostgres, redact(admin), err)
	}
	return dsn
}

// dropDatabase drops a database made by Postgres, retrying for a while in
// case the server is just starting again after an outage.
func dropDatabase(t testing.TB, admin, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	db, err := sql.Open("postgres", admin)
	if err != nil {
		t.Errorf("testenv: drop database %s: %v", name, err)
		return
	}
	defer db.Close()
	query := "DROP DATABASE IF EXISTS " + pq.QuoteIdentifier(name) + " WITH (FORCE)"
	for {
		_, err = db.ExecContext(ctx, query)
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Errorf("testenv: drop database %s: %v (is the server down? a test that calls StopPostgres should call StartPostgres)", name, err)
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// withDatabase returns dsn with its database name replaced by name.
func withDatabase(dsn, name string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", err
		}
		u.Path = "/" + name
		u.RawPath = ""
		return u.String(), nil
	}
	// key=value form: lib/pq lets a later key override an earlier one.
	return strings.TrimSpace(dsn) + " dbname=" + name, nil
}

// redact hides a password in a URL DSN, for messages.
func redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
		return u.Redacted()
	}
	if strings.Contains(dsn, "password") {
		return "(DSN with password)"
	}
	return dsn
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// StopPostgres stops the throwaway PostgreSQL server (fast shutdown: open
// connections are closed, new ones are refused) and returns when it is down.
// Use it to test behaviour during an outage; call [StartPostgres] to bring the
// server back. If the test ends with the server still stopped, it is started
// again before the test's databases are dropped.
//
// The server is shared by every test of the run, so StopPostgres first waits
// until no test in another package (or in this one) is using it, and tests
// calling [Postgres] wait while it is down. A test that stops the server must
// not wait for another test that uses it (other than its own parent tests).
//
// If APPAUTH_TEST_POSTGRES_CTL is unset, the test is skipped (naming
// `make test`), or fails when [Strict].
func StopPostgres(t testing.TB) {
	t.Helper()
	ctl := postgresCtl(t)
	if postgresLocks.beginOutage(t) {
		t.Cleanup(func() {
			if postgresLocks.outageActive(t) {
				if err := runCtl(ctl, "start"); err != nil {
					t.Errorf("testenv: restarting PostgreSQL after the test: %v", err)
				}
				postgresLocks.endOutage(t)
			}
		})
	}
	if err := runCtl(ctl, "stop"); err != nil {
		t.Fatalf("testenv: stop PostgreSQL: %v", err)
	}
}

// StartPostgres starts the throwaway PostgreSQL server again after
// [StopPostgres] and returns when it accepts connections. Existing *sql.DB
// pools reconnect by themselves; connections they held before the outage
// are broken. Calling it while the server runs does nothing.
//
// If APPAUTH_TEST_POSTGRES_CTL is unset, the test is skipped (naming
// `make test`), or fails when [Strict].
func StartPostgres(t testing.TB) {
	t.Helper()
	ctl := postgresCtl(t)
	if err := runCtl(ctl, "start"); err != nil {
		t.Fatalf("testenv: start PostgreSQL: %v", err)
	}
	postgresLocks.endOutage(t)
}

// postgresCtl returns the control script, or ends the test if there is none.
func postgresCtl(t testing.TB) string {
	t.Helper()
	ctl := os.Getenv(EnvPostgresCtl)
	if ctl == "" {
		unavailable(t, "testenv: cannot stop or start PostgreSQL: %s is not set", EnvPostgresCtl)
		return ""
	}
	if st, err := os.Stat(ctl); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		unavailable(t, "testenv: cannot stop or start PostgreSQL: %s=%s is not an executable file", EnvPostgresCtl, ctl)
		return ""
	}
	return ctl
}

// ctlMu serializes control-script runs within this process.
var ctlMu sync.Mutex

func runCtl(ctl, action string) error {
	ctlMu.Lock()
	defer ctlMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), ctlTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, ctl, action).CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			err = errors.Join(err, ctx.Err())
		}
		return fmt.Errorf("%s %s: %w\n%s", ctl, action, err, out)
	}
	return nil
}
