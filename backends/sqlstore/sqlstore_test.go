package sqlstore_test

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/backends/sqlstore"
	"github.com/appauth/appauth/internal/testenv"
)

type openFunc func(ctx context.Context, dsn string, opts *sqlstore.Options) (*sqlstore.Store, error)

// mustOpen opens a store and closes it when the test ends.
func mustOpen(t testing.TB, open openFunc, dsn string) *sqlstore.Store {
	t.Helper()
	s, err := open(t.Context(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// dialects runs fn for SQLite (a fresh file) and PostgreSQL (a fresh
// database), with the driver name and data source of each.
func dialects(t *testing.T, fn func(t *testing.T, open openFunc, driver, dsn string)) {
	t.Run("sqlite", func(t *testing.T) {
		fn(t, sqlstore.OpenSQLite, "sqlite", filepath.Join(t.TempDir(), "appauth.db"))
	})
	t.Run("postgres", func(t *testing.T) {
		fn(t, sqlstore.OpenPostgres, "postgres", testenv.Postgres(t))
	})
}

// rawDB opens a plain connection to the same database, closed at the end.
func rawDB(t testing.TB, driver, dsn string) *sqlx.DB {
	t.Helper()
	db, err := sqlx.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func newCredential(userID string) *auth.StoredCredential {
	hash := make([]byte, 32)
	rand.Read(hash)
	return &auth.StoredCredential{
		ID: rand.Text(), Kind: auth.KindAppPassword, UserID: userID, Login: userID,
		Name: "phone", Scopes: []string{"calendars"}, Hash: hash, KeyID: "k1", Hint: "abcd",
		CreatedAt: time.Now(),
	}
}

func TestConcurrentOpen(t *testing.T) {
	dialects(t, func(t *testing.T, open openFunc, driver, dsn string) {
		const n = 4
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				s, err := open(t.Context(), dsn, nil)
				if err == nil {
					err = s.Close()
				}
				errs[i] = err
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("open %d: %v", i, err)
			}
		}
		// Opened twice more in sequence: nothing left to apply.
		mustOpen(t, open, dsn)
		s := mustOpen(t, open, dsn)
		if err := s.CreateCredential(t.Context(), newCredential("alice")); err != nil {
			t.Fatal(err)
		}

		var versions []int
		if err := rawDB(t, driver, dsn).Select(&versions, "SELECT version FROM appauth_schema_migrations ORDER BY version"); err != nil {
			t.Fatal(err)
		}
		// Each version once: PostgreSQL has two more migrations (the
		// change-notification trigger, the shared limiter's counts) than
		// SQLite.
		want := map[string][]int{"postgres": {1, 2, 3, 4, 5, 6, 7, 8}, "sqlite": {1, 2, 3, 4, 5, 6}}[driver]
		if !slices.Equal(versions, want) {
			t.Errorf("schema_migrations holds versions %v, want %v", versions, want)
		}
	})
}

func TestTablePrefix(t *testing.T) {
	path := filepath.Join(t.TempDir(), "appauth.db")
	for _, prefix := range []string{"App_", "1x_", "a-b_", "a b", "x;drop table y;", strings.Repeat("a", 33)} {
		if s, err := sqlstore.OpenSQLite(t.Context(), path, &sqlstore.Options{TablePrefix: prefix}); err == nil {
			s.Close()
			t.Errorf("TablePrefix %q accepted", prefix)
		} else if !strings.HasPrefix(err.Error(), "sqlstore: ") {
			t.Errorf("TablePrefix %q: error %q lacks the package prefix", prefix, err)
		}
	}
	s, err := sqlstore.OpenSQLite(t.Context(), path, &sqlstore.Options{TablePrefix: "tenant_1_"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := newCredential("alice")
	if err := s.CreateCredential(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := rawDB(t, "sqlite", path).Get(&n, "SELECT COUNT(*) FROM tenant_1_credentials"); err != nil || n != 1 {
		t.Errorf("tenant_1_credentials holds %d rows (%v), want 1", n, err)
	}
}

func TestNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "appauth.db")
	db := rawDB(t, "sqlite", path+"?_busy_timeout=10000&_journal_mode=WAL&_txlock=immediate")

	if _, err := sqlstore.New(t.Context(), sqlx.NewDb(db.DB, "mysql"), nil); err == nil || !strings.Contains(err.Error(), `sqlstore: unsupported driver "mysql"`) {
		t.Errorf("New with driver mysql: %v, want an unsupported driver error", err)
	}
	if _, err := sqlstore.New(t.Context(), nil, nil); err == nil {
		t.Error("New(nil) succeeded")
	}

	s, err := sqlstore.New(t.Context(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := newCredential("alice")
	if err := s.CreateCredential(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(); err != nil {
		t.Errorf("Close closed a DB given to New: %v", err)
	}
}

func TestErrUnavailable(t *testing.T) {
	t.Run("ClosedStore", func(t *testing.T) {
		dialects(t, func(t *testing.T, open openFunc, driver, dsn string) {
			s, err := open(t.Context(), dsn, nil)
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			checkUnavailable(t, s)
		})
	})
	t.Run("ClosedDB", func(t *testing.T) {
		db := rawDB(t, "sqlite", filepath.Join(t.TempDir(), "appauth.db"))
		s, err := sqlstore.New(t.Context(), db, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		db.Close()
		checkUnavailable(t, s)
	})
	t.Run("SQLiteLocked", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "appauth.db")
		s := mustOpen(t, sqlstore.OpenSQLite, path)
		conn, err := rawDB(t, "sqlite", path).Conn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(t.Context(), "BEGIN EXCLUSIVE"); err != nil {
			t.Fatal(err)
		}
		defer conn.ExecContext(context.Background(), "ROLLBACK")
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		if err := s.CreateCredential(ctx, newCredential("alice")); !errors.Is(err, auth.ErrUnavailable) {
			t.Errorf("CreateCredential on a locked database: %v, want ErrUnavailable", err)
		}
	})
	t.Run("PostgresStopped", func(t *testing.T) {
		srv := testenv.NewPostgres(t) // stopped below: a server of its own
		s := mustOpen(t, sqlstore.OpenPostgres, srv.Database(t))
		c := newCredential("alice")
		if err := s.CreateCredential(t.Context(), c); err != nil {
			t.Fatal(err)
		}
		srv.Stop(t)
		checkUnavailable(t, s)
		srv.Start(t)

		// The same Store recovers: the pool replaces its broken
		// connections (an error on the way must still be ErrUnavailable).
		deadline := time.Now().Add(15 * time.Second)
		for {
			got, err := s.CredentialByHash(t.Context(), c.Hash)
			if err == nil {
				if got.ID != c.ID {
					t.Fatalf("got credential %s, want %s", got.ID, c.ID)
				}
				break
			}
			if !errors.Is(err, auth.ErrUnavailable) || time.Now().After(deadline) {
				t.Fatalf("after restart: %v", err)
			}
			t.Logf("after restart: %v", err)
			time.Sleep(100 * time.Millisecond)
		}
		if err := s.RecordUsage(t.Context(), []auth.Usage{{UserID: "alice", ID: c.ID, At: time.Now()}}); err != nil {
			t.Errorf("RecordUsage after restart: %v", err)
		}
	})
	t.Run("PostgresRefused", func(t *testing.T) {
		// Port 1 on loopback: nothing listens there.
		_, err := sqlstore.OpenPostgres(t.Context(), "postgres://u:s3cr3t-pw@127.0.0.1:1/db?sslmode=disable&connect_timeout=2", nil)
		if !errors.Is(err, auth.ErrUnavailable) {
			t.Errorf("OpenPostgres on a closed port: %v, want ErrUnavailable", err)
		}
		if err != nil && strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("error leaks the password: %v", err)
		}
	})
}

// checkUnavailable checks that every method of s fails with ErrUnavailable.
func checkUnavailable(t *testing.T, s *sqlstore.Store) {
	t.Helper()
	ctx := t.Context()
	c := newCredential("alice")
	_, errByHash := s.CredentialByHash(ctx, c.Hash)
	_, errGet := s.Credential(ctx, "alice", c.ID)
	_, errList := s.ListCredentials(ctx, "alice", auth.KindAppPassword)
	_, errDelAll := s.DeleteCredentials(ctx, "alice", auth.KindAppPassword, "")
	for name, err := range map[string]error{
		"CreateCredential":  s.CreateCredential(ctx, c),
		"CredentialByHash":  errByHash,
		"Credential":        errGet,
		"ListCredentials":   errList,
		"UpdateCredential":  s.UpdateCredential(ctx, c),
		"DeleteCredential":  s.DeleteCredential(ctx, "alice", c.ID),
		"DeleteCredentials": errDelAll,
		"RecordUsage":       s.RecordUsage(ctx, []auth.Usage{{UserID: "alice", ID: c.ID, At: time.Now()}}),
	} {
		if !errors.Is(err, auth.ErrUnavailable) {
			t.Errorf("%s: %v, want ErrUnavailable", name, err)
		} else if !strings.HasPrefix(err.Error(), "sqlstore: ") {
			t.Errorf("%s: error %q lacks the package prefix", name, err)
		}
	}
}

func TestOpenSQLitePath(t *testing.T) {
	for _, path := range []string{"", ":memory:", "file:x.db", "x.db?mode=ro"} {
		if s, err := sqlstore.OpenSQLite(t.Context(), path, nil); err == nil {
			s.Close()
			t.Errorf("OpenSQLite(%q) succeeded", path)
		}
	}
}

func TestRedactedDSN(t *testing.T) {
	for _, dsn := range []string{
		"postgres://u:s3cr3t-pw@[::1/db",
		"postgres://u:s3cr3t-pw@127.0.0.1:1/db?sslmode=bogus",
		"host=127.0.0.1 port=1 password='s3cr3t-pw' sslmode=bogus",
		"host=127.0.0.1 port=1 password=s3cr3t-pw bogus",
	} {
		_, err := sqlstore.OpenPostgres(t.Context(), dsn, nil)
		if err == nil {
			t.Errorf("OpenPostgres(%q) succeeded", dsn)
			continue
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("OpenPostgres error leaks the password: %v", err)
		}
	}
}

// TestIDsNotUTF8AreNotFound: an ID or owner that is not UTF-8, or holds a
// NUL, names no credential: ErrNotFound as in the memory store and on
// SQLite, not ErrUnavailable (PostgreSQL refuses such text, which made
// the lookup of an ID taken from a request a 503, an outage).
func TestIDsNotUTF8AreNotFound(t *testing.T) {
	dialects(t, func(t *testing.T, open openFunc, driver, dsn string) {
		s := mustOpen(t, open, dsn)
		ctx := t.Context()
		c := newCredential("alice")
		if err := s.CreateCredential(ctx, c); err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"\xff", "a\x00b", c.ID + "\x00"} {
			for _, who := range [][2]string{{c.UserID, bad}, {bad, c.ID}} {
				userID, id := who[0], who[1]
				if _, err := s.Credential(ctx, userID, id); !errors.Is(err, auth.ErrNotFound) {
					t.Errorf("Credential(%q, %q): %v, want ErrNotFound", userID, id, err)
				}
				u := *c
				u.UserID, u.ID = userID, id
				if err := s.UpdateCredential(ctx, &u); !errors.Is(err, auth.ErrNotFound) {
					t.Errorf("UpdateCredential(%q, %q): %v, want ErrNotFound", userID, id, err)
				}
				if err := s.DeleteCredential(ctx, userID, id); !errors.Is(err, auth.ErrNotFound) {
					t.Errorf("DeleteCredential(%q, %q): %v, want ErrNotFound", userID, id, err)
				}
			}
			if n, err := s.DeleteCredentials(ctx, bad, auth.KindAppPassword, ""); n != 0 || err != nil {
				t.Errorf("DeleteCredentials(%q): %d, %v; want 0, nil", bad, n, err)
			}
			if l, err := s.ListCredentials(ctx, bad, auth.KindAppPassword); len(l) != 0 || err != nil {
				t.Errorf("ListCredentials(%q): %d, %v; want none", bad, len(l), err)
			}
		}
		if _, err := s.Credential(ctx, c.UserID, c.ID); err != nil {
			t.Errorf("the credential after all that: %v", err)
		}
	})
}

// TestSQLiteStaysInWAL: a tool that takes the file out of WAL while the
// Store has no connection open does not leave it there: the Store's next
// connection puts it back (its lookups' promise, readers beside the
// writer, needs WAL).
func TestSQLiteStaysInWAL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "appauth.db")
	s, err := sqlstore.OpenSQLite(t.Context(), path, &sqlstore.Options{ConnMaxIdleTime: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tool := rawDB(t, "sqlite", path)
	// Once the Store's idle connections are closed, the switch succeeds.
	waitFor(t, "the tool to switch the file out of WAL", func() bool {
		var mode string
		tool.QueryRowContext(t.Context(), "PRAGMA journal_mode = DELETE").Scan(&mode)
		return mode == "delete"
	})
	if err := s.CreateCredential(t.Context(), newCredential("alice")); err != nil {
		t.Fatal(err)
	}
	// The header's file format versions (bytes 18 and 19): 2 in WAL mode, 1
	// out of it. (The tool's connection would answer its own idea.)
	header := make([]byte, 20)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.ReadFull(f, header); err != nil {
		t.Fatal(err)
	}
	if header[18] != 2 || header[19] != 2 {
		t.Errorf("file format versions after the Store's next call: %d, %d; want 2, 2 (WAL)", header[18], header[19])
	}
}
