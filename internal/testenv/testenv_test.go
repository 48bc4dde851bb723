package testenv

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/lib/pq"
)

// fakeTB records Skip and Fatal instead of acting on them, so the missing-
// service paths can be tested; everything else goes to the real test.
type fakeTB struct {
	testing.TB
	name     string
	mu       sync.Mutex
	skipped  string
	failed   string
	own      bool // keep cleanups for runCleanups instead of passing them on
	cleanups []func()
}

func (f *fakeTB) Cleanup(fn func()) {
	if !f.own {
		f.TB.Cleanup(fn)
		return
	}
	f.mu.Lock()
	f.cleanups = append(f.cleanups, fn)
	f.mu.Unlock()
}

// runCleanups runs the cleanups kept when own is set, last first.
func (f *fakeTB) runCleanups() {
	f.mu.Lock()
	fns := f.cleanups
	f.cleanups = nil
	f.mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
}

func (f *fakeTB) Name() string {
	if f.name != "" {
		return f.name
	}
	return f.TB.Name()
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

func TestMissingServiceSkipsOrFails(t *testing.T) {
	t.Setenv(EnvPostgres, "")
	t.Setenv(EnvPostgresCtl, "")
	t.Setenv(EnvLDAPURL, "")
	t.Setenv(EnvLDAPCtl, "")
	for _, strict := range []bool{false, true} {
		for name, fn := range map[string]func(testing.TB){
			"Postgres":      func(tb testing.TB) { Postgres(tb) },
			"StopPostgres":  StopPostgres,
			"StartPostgres": StartPostgres,
			"LDAP":          func(tb testing.TB) { LDAP(tb) },
			"StopLDAP":      StopLDAP,
			"StartLDAP":     StartLDAP,
		} {
			t.Run(fmt.Sprintf("%s/strict=%v", name, strict), func(t *testing.T) {
				if strict {
					t.Setenv(EnvStrict, "1")
				} else {
					t.Setenv(EnvStrict, "")
				}
				f := &fakeTB{TB: t}
				f.call(func() { fn(f) })
				switch {
				case strict && f.failed == "":
					t.Errorf("strict: want a failure, got skip %q", f.skipped)
				case !strict && f.skipped == "":
					t.Errorf("not strict: want a skip, got failure %q", f.failed)
				case !strict && !strings.Contains(f.skipped, "make test"):
					t.Errorf("skip message %q does not name `make test`", f.skipped)
				}
			})
		}
	}
}

func TestWithDatabase(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://appauth@127.0.0.1:5432/postgres?sslmode=disable", "postgres://appauth@127.0.0.1:5432/appauth_x?sslmode=disable"},
		{"postgresql://u:p@h/db", "postgresql://u:p@h/appauth_x"},
		{"host=h user=u dbname=postgres", "host=h user=u dbname=postgres dbname=appauth_x"},
	} {
		got, err := withDatabase(tc.in, "appauth_x")
		if err != nil || got != tc.want {
			t.Errorf("withDatabase(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
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
	admin := open(t, Postgres(t)) // skips without a server
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

// TestStopStartPostgres checks that StopPostgres makes the server unreachable,
// StartPostgres makes it reachable again, and that another test wanting the
// server meanwhile waits for the outage to end.
func TestStopStartPostgres(t *testing.T) {
	t.Parallel()
	// The other test below must get the server once this one is done with it.
	got := make(chan struct{})
	started := false
	t.Cleanup(func() {
		if !started {
			return
		}
		select {
		case <-got:
		case <-time.After(lockTimeout + time.Minute):
			t.Error("another test still waits for the server after this one ended")
		}
	})
	db := open(t, Postgres(t))
	if _, err := db.Exec("CREATE TABLE t (id int)"); err != nil {
		t.Fatal(err)
	}

	StopPostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err == nil {
		t.Fatal("ping succeeded with the server stopped")
	} else {
		t.Logf("during the outage: %v", err)
	}

	// Another test (in this or another package) asking for the server now
	// must wait until it is back. (It may also wait for outages of other
	// packages, so this test does not wait for it while holding the server.)
	if os.Getenv(EnvPostgresLock) != "" {
		started = true
		go func() {
			other := &fakeTB{TB: t, name: t.Name() + "-other", own: true}
			other.call(func() { postgresLocks.acquireShared(other) })
			close(got)
			other.runCleanups()
		}()
		select {
		case <-got:
			t.Fatal("another test got the server while it was stopped")
		case <-time.After(300 * time.Millisecond):
		}
	} else {
		close(got)
	}

	StartPostgres(t)
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		t.Fatalf("ping after StartPostgres: %v", err)
	}
	if _, err := db.Exec("INSERT INTO t VALUES (1)"); err != nil {
		t.Fatalf("the database did not survive the outage: %v", err)
	}
}

// TestStopPostgresRestartsAtCleanup checks that a test ending with the server
// stopped leaves it running for the others.
func TestStopPostgresRestartsAtCleanup(t *testing.T) {
	t.Parallel()
	t.Run("forget", func(t *testing.T) {
		Postgres(t)
		StopPostgres(t)
	})
	db := open(t, Postgres(t))
	if err := db.Ping(); err != nil {
		t.Fatalf("server not running after a test left it stopped: %v", err)
	}
}

// TestStopStartLDAP checks that StopLDAP makes slapd unreachable and
// StartLDAP brings it back with its data.
func TestStopStartLDAP(t *testing.T) {
	s := LDAP(t)
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	StopLDAP(t)
	if c, err := net.DialTimeout("tcp", u.Host, 5*time.Second); err == nil {
		c.Close()
		t.Fatal("slapd still accepts connections after StopLDAP")
	}
	StartLDAP(t)
	c, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatalf("slapd does not accept connections after StartLDAP: %v", err)
	}
	c.Close()
	for _, f := range []string{s.CAFile} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("CA file: %v", err)
		}
	}
}
