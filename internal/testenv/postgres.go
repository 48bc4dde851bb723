package testenv

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lib/pq"
)

// connectTimeout bounds each setup query to a server.
const connectTimeout = 30 * time.Second

// PostgresServer is a throwaway PostgreSQL server (13 or newer) listening on
// 127.0.0.1 only, with trust authentication and fsync off: fast, and gone
// when its test (or, for the shared one, its test binary) ends.
type PostgresServer struct {
	dsn     string // superuser DSN of the database postgres
	LogFile string // the server's log
	server
}

var sharedPostgres = sync.OnceValues(func() (*PostgresServer, error) {
	s, err := startPostgres()
	if err != nil {
		return nil, err
	}
	s.shared = true
	onExit(s.close)
	return s, nil
})

// Postgres returns the DSN of a new, empty database created for this test
// alone on the binary's shared server, so tests never see each other's
// tables. The database is dropped (WITH (FORCE), closing leftover
// connections) when the test and its subtests finish. The DSN is a URL for
// lib/pq ("postgres" driver): postgres://appauth@127.0.0.1:PORT/NAME?sslmode=disable.
//
// If PostgreSQL is not installed, the test is skipped with a message naming
// `make test`, or fails when [Strict]. A test that stops or pauses the
// server uses [NewPostgres] instead.
func Postgres(t testing.TB) string {
	t.Helper()
	requireMain(t)
	s, err := sharedPostgres()
	if err != nil {
		need(t, err)
	}
	return s.Database(t)
}

// NewPostgres starts a PostgreSQL server for this test alone, which it may
// stop, pause and restart; it is removed when the test ends. If PostgreSQL
// is not installed, the test is skipped (or fails when [Strict]).
func NewPostgres(t testing.TB) *PostgresServer {
	t.Helper()
	s, err := startPostgres()
	if err != nil {
		need(t, err)
	}
	t.Cleanup(s.close)
	return s
}

// DSN returns the superuser DSN of the server's database postgres.
func (s *PostgresServer) DSN() string { return s.dsn }

// Database returns the DSN of a new, empty database on s. On the shared
// server it is dropped when the test ends; a private server goes whole.
func (s *PostgresServer) Database(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	db, err := sql.Open("postgres", s.dsn)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	defer db.Close()
	name := "appauth_" + randomHex(8)
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(name)); err != nil {
		t.Fatalf("testenv: create database %s: %v", name, err)
	}
	if s.shared {
		t.Cleanup(func() { s.drop(t, name) })
	}
	return withDatabase(s.dsn, name)
}

func (s *PostgresServer) drop(t testing.TB, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	db, err := sql.Open("postgres", s.dsn)
	if err == nil {
		defer db.Close()
		_, err = db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+pq.QuoteIdentifier(name)+" WITH (FORCE)")
	}
	if err != nil {
		t.Errorf("testenv: drop database %s: %v", name, err)
	}
}

func (s *PostgresServer) close() {
	if err := s.proc.stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.RemoveAll(s.dir)
}

// postgresBin finds initdb and the postgres next to it.
func postgresBin() (initdb, postgres string, err error) {
	initdb, ok := findProgram([]string{"initdb"}, newestDirs("/usr/lib/postgresql/*/bin")...)
	if !ok {
		return "", "", &missingError{"testenv: PostgreSQL is not installed: no initdb on PATH or in /usr/lib/postgresql/*/bin (Debian package postgresql)"}
	}
	if real, err := filepath.EvalSymlinks(initdb); err == nil {
		initdb = real
	}
	postgres = filepath.Join(filepath.Dir(initdb), "postgres")
	if _, err := os.Stat(postgres); err != nil {
		if postgres, ok = findProgram([]string{"postgres"}); !ok {
			return "", "", &missingError{"testenv: PostgreSQL is not installed: found " + initdb + " but no postgres beside it or on PATH"}
		}
	}
	return initdb, postgres, nil
}

// postgresConf is appended to the postgresql.conf that initdb wrote.
const postgresConf = `
# Written by internal/testenv: a throwaway server for tests.
listen_addresses = '127.0.0.1'
unix_socket_directories = '%s'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
log_line_prefix = '%%m [%%p] %%q%%u@%%d '
`

// startPostgres makes and starts a server in a new directory.
func startPostgres() (*PostgresServer, error) {
	initdb, postgres, err := postgresBin()
	if err != nil {
		return nil, err
	}
	cred, err := serviceUser()
	if err != nil {
		return nil, err
	}
	dir, err := serverDir("pg", cred)
	if err != nil {
		return nil, err
	}
	s := &PostgresServer{server: server{kind: "PostgresServer", ctor: "NewPostgres", dir: dir}, LogFile: filepath.Join(dir, "postgres.log")}
	err = s.init(initdb, postgres, cred)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

func (s *PostgresServer) init(initdb, postgres string, cred *syscall.Credential) error {
	data := filepath.Join(s.dir, "data")
	cmd := exec.Command(initdb, "-D", data, "-U", "appauth", "-A", "trust", "-N", "--no-locale", "-E", "UTF8")
	cmd.Dir = s.dir
	if err := runChild(cmd, cred); err != nil {
		return fmt.Errorf("testenv: PostgreSQL initdb: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(data, "postgresql.conf"), os.O_WRONLY|os.O_APPEND, 0)
	if err == nil {
		_, err = fmt.Fprintf(f, postgresConf, s.dir)
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		return fmt.Errorf("testenv: PostgreSQL config: %w", err)
	}
	s.proc = &proc{
		name: "PostgreSQL", path: postgres, dir: s.dir, logPath: s.LogFile, cred: cred,
		stopSig: syscall.SIGINT, // fast shutdown
		ready:   func(ctx context.Context) error { return pingPostgres(ctx, s.dsn) },
	}
	_, err = startOnFreePort(s.proc, 1, func(ports []int) []string {
		s.dsn = "postgres://appauth@127.0.0.1:" + strconv.Itoa(ports[0]) + "/postgres?sslmode=disable"
		return []string{"-D", data, "-p", strconv.Itoa(ports[0])}
	})
	return err
}

func pingPostgres(ctx context.Context, dsn string) error {
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return db.PingContext(ctx)
}

// withDatabase returns the URL dsn with its database name replaced by name.
func withDatabase(dsn, name string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		panic(err) // made by this package
	}
	u.Path = "/" + name
	return u.String()
}
