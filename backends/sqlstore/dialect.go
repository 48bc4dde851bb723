package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/appauth/appauth/auth"
)

// This file holds every difference between PostgreSQL and SQLite: driver
// names, placeholders, the time representation, how the migration
// transaction is locked, and which driver errors mean what. The rest of the
// package is dialect-free.

// dialect describes one SQL database flavour.
type dialect struct {
	name     string // "postgres" or "sqlite", also the driver name
	bindType int    // sqlx bind type for Rebind
	timeType string // SQL type of a time column
	// timeArg encodes a non-zero time as a query argument.
	timeArg func(t time.Time) any
}

var (
	postgresDialect = &dialect{
		name:     "postgres",
		bindType: sqlx.DOLLAR,
		timeType: "TIMESTAMPTZ",
		// TIMESTAMPTZ keeps microseconds; truncate here so both dialects
		// agree on what is stored.
		timeArg: func(t time.Time) any { return t.UTC().Truncate(time.Microsecond) },
	}
	sqliteDialect = &dialect{
		name:     "sqlite",
		bindType: sqlx.QUESTION,
		timeType: "INTEGER",
		// INTEGER microseconds since the epoch: sorts, compares and
		// round-trips exactly, with no text format to agree on.
		timeArg: func(t time.Time) any { return t.UnixMicro() },
	}
)

// dialectFor returns the dialect of a driver name.
func dialectFor(driverName string) (*dialect, error) {
	switch driverName {
	case "postgres":
		return postgresDialect, nil
	case "sqlite":
		return sqliteDialect, nil
	}
	return nil, fmt.Errorf("sqlstore: unsupported driver %q (want %q for github.com/lib/pq or %q for modernc.org/sqlite)",
		driverName, "postgres", "sqlite")
}

// nullTime encodes t for a nullable column: the zero time is NULL.
func (d *dialect) nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return d.timeArg(t)
}

// dbTime scans a time column of either dialect: NULL is the zero time,
// TIMESTAMPTZ (time.Time) and INTEGER microseconds are returned in UTC.
type dbTime struct{ t time.Time }

// Scan implements [sql.Scanner].
func (d *dbTime) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		d.t = time.Time{}
	case time.Time:
		d.t = v.UTC()
	case int64:
		d.t = time.UnixMicro(v).UTC()
	default:
		return fmt.Errorf("sqlstore: cannot scan %T into a time", v)
	}
	return nil
}

// queries are the statements of one Store, built once at open: table name
// and placeholders filled in.
type queries struct {
	insert, byHash, byID, list, listAll, count, update, del, delAll, delExpired, delUnused, usage, federated string
	// usageBatch (PostgreSQL only) records a whole batch of last uses in
	// one statement (see Store.RecordUsage).
	usageBatch string
}

// credentialColumns lists the columns in the order of [row].
const credentialColumns = "id, kind, user_id, login, name, scopes, hash, key_id, hint, " +
	"created_at, expires_at, authenticated_at, last_used_at, last_used_addr, last_used_client, " +
	"fed_issuer, fed_subject, fed_sid"

func (d *dialect) queries(table string) queries {
	q := func(s string) string { return sqlx.Rebind(d.bindType, strings.ReplaceAll(s, "{t}", table)) }
	delAll := "DELETE FROM {t} WHERE user_id = ? AND kind = ? AND id <> ?"
	if d == postgresDialect {
		// The rows are locked in id order first, as a last-used flush
		// locks them (usageBatch): in the order the DELETE met them, each
		// could hold a row the other waited for, and PostgreSQL failed
		// one of them (TestRevokeAllRacingFlush).
		delAll = "WITH locked AS MATERIALIZED (SELECT id FROM {t} WHERE user_id = ? AND kind = ? AND id <> ? ORDER BY id FOR UPDATE) " +
			"DELETE FROM {t} WHERE id IN (SELECT id FROM locked)"
	}
	return queries{
		insert:  q("INSERT INTO {t} (" + credentialColumns + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
		byHash:  q("SELECT " + credentialColumns + " FROM {t} WHERE hash = ?"),
		byID:    q("SELECT " + credentialColumns + " FROM {t} WHERE id = ? AND user_id = ?"),
		list:    q("SELECT " + credentialColumns + " FROM {t} WHERE user_id = ? AND kind = ? ORDER BY created_at, id"),
		listAll: q("SELECT " + credentialColumns + " FROM {t} WHERE kind = ?"),
		count:   q("SELECT COUNT(*) FROM {t}"),
		// Each of subject and sid is compared only when the argument is not
		// empty (back-channel logout may name either or both).
		federated: q("SELECT " + credentialColumns + " FROM {t} WHERE kind = ? AND fed_issuer = ? " +
			"AND (? = '' OR fed_subject = ?) AND (? = '' OR fed_sid = ?) ORDER BY created_at, id"),
		update:     q("UPDATE {t} SET name = ?, scopes = ?, expires_at = ?, authenticated_at = ? WHERE id = ? AND user_id = ?"),
		del:        q("DELETE FROM {t} WHERE id = ? AND user_id = ?"),
		delAll:     q(delAll),
		delExpired: q("DELETE FROM {t} WHERE expires_at IS NOT NULL AND expires_at <= ?"),
		delUnused:  q("DELETE FROM {t} WHERE kind = ? AND COALESCE(last_used_at, created_at) <= ?"),
		usage: q("UPDATE {t} SET last_used_at = ?, last_used_addr = ?, last_used_client = ? " +
			"WHERE id = ? AND user_id = ? AND (last_used_at IS NULL OR last_used_at < ?)"),
		usageBatch: d.usageBatch(table),
	}
}

// usageBatch is PostgreSQL's statement for a batch of last uses: the
// batch comes as five arrays (ids, user IDs, times, addresses, clients),
// so one prepared statement serves every batch size. The rows to change
// are locked first, in id order (a locking SELECT's rows are locked after
// its ORDER BY), so two servers flushing overlapping batches wait for each
// other instead of deadlocking; the UPDATE's join order alone would not
// promise that. A row that another flush moved past the batch's time is
// left out of the lock (READ COMMITTED re-checks the condition after the
// wait) and of the update.
func (d *dialect) usageBatch(table string) string {
	if d != postgresDialect {
		return ""
	}
	return strings.ReplaceAll(`WITH v AS (
	SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[]) AS v(id, user_id, at, addr, client)
), locked AS MATERIALIZED (
	SELECT c.id, v.at, v.addr, v.client FROM {t} c JOIN v ON c.id = v.id AND c.user_id = v.user_id
	WHERE c.last_used_at IS NULL OR c.last_used_at < v.at
	ORDER BY c.id FOR UPDATE OF c
)
UPDATE {t} c SET last_used_at = l.at, last_used_addr = l.addr, last_used_client = l.client
FROM locked l WHERE c.id = l.id AND (c.last_used_at IS NULL OR c.last_used_at < l.at)`, "{t}", table)
}

// byHashes is the query for up to maxBatch distinct hashes at once (see
// coalescer), and args its arguments. PostgreSQL takes them as one bytea
// array, so one statement serves every batch size; SQLite has no arrays,
// so it has one statement per power of two, the last hash repeated to
// fill it.
//
// On PostgreSQL, the plain "WHERE hash = ANY($1)" is planned as a
// sequential scan of a table of a few thousand rows (EXPLAIN ANALYZE on
// 1,000 rows and 8 hashes: 0.18 ms, against 0.02 ms for one index
// lookup), which costs the table's size per query. The LATERAL subquery
// with LIMIT 1 (hash is unique) cannot be flattened into a join, so every
// hash is one index lookup whatever the table's size or statistics.
func (d *dialect) byHashes(table string, n int) string {
	if d == postgresDialect {
		return "SELECT c.* FROM unnest($1::bytea[]) AS h(want) CROSS JOIN LATERAL (SELECT " + credentialColumns +
			" FROM " + table + " WHERE hash = h.want LIMIT 1) AS c"
	}
	return "SELECT " + credentialColumns + " FROM " + table + " WHERE hash IN (?" + strings.Repeat(", ?", n-1) + ")"
}

// batchSizes are the sizes the byHashes statements are prepared for.
func (d *dialect) batchSizes() []int {
	if d == postgresDialect {
		return []int{maxBatch}
	}
	var sizes []int
	for n := 2; n <= maxBatch; n *= 2 {
		sizes = append(sizes, n)
	}
	return sizes
}

// byHashesArgs returns the arguments of the byHashes statement of size n
// for hashes (at most n of them).
func (d *dialect) byHashesArgs(hashes [][]byte, n int) []any {
	if d == postgresDialect {
		return []any{pq.ByteaArray(hashes)}
	}
	args := make([]any, n)
	for i := range args {
		args[i] = hashes[min(i, len(hashes)-1)]
	}
	return args
}

// execQuerier is what a migration runs on: a *sql.Tx or a *sql.Conn.
type execQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// beginMigration starts the migration transaction and takes the lock that
// keeps two processes from migrating at once. The caller must call end
// exactly once, with commit true to commit.
func (d *dialect) beginMigration(ctx context.Context, db *sqlx.DB, prefix string) (tx execQuerier, end func(commit bool) error, err error) {
	if d == postgresDialect {
		// A transaction-scoped advisory lock, taken before the version is
		// read: a second process waits here and then finds the schema
		// current. It is released by COMMIT or ROLLBACK.
		t, err := db.BeginTxx(ctx, nil)
		if err != nil {
			return nil, nil, err
		}
		h := fnv.New64a()
		h.Write([]byte("github.com/appauth/appauth/backends/sqlstore:" + prefix))
		if _, err := t.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", int64(h.Sum64())); err != nil {
			t.Rollback()
			return nil, nil, err
		}
		return t, func(commit bool) error {
			if commit {
				return t.Commit()
			}
			return t.Rollback()
		}, nil
	}

	// SQLite: BEGIN IMMEDIATE takes the database's write lock before the
	// version is read, so a second process waits (busy_timeout) and then
	// finds the schema current. It is issued by hand on one connection so
	// this holds whatever _txlock a DB given to New was opened with.
	conn, err := beginImmediate(ctx, db)
	if err != nil {
		return nil, nil, err
	}
	return conn, func(commit bool) error {
		defer conn.Close()
		if !commit {
			rollback(conn)
			return nil
		}
		_, err := conn.ExecContext(ctx, "COMMIT")
		if err != nil {
			rollback(conn)
		}
		return err
	}, nil
}

// rollback ends a hand-made SQLite transaction; if that fails, the
// connection is discarded rather than returned to the pool mid-transaction.
func rollback(conn *sql.Conn) {
	if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		conn.Raw(func(any) error { return driver.ErrBadConn })
	}
}

// errDBClosed and errStmtClosed are the texts of database/sql's unexported
// errors for a closed *sql.DB or *sql.Stmt: the store cannot answer.
const (
	errDBClosed   = "sql: database is closed"
	errStmtClosed = "sql: statement is closed"
)

// beginImmediate takes a connection of db and runs BEGIN IMMEDIATE on it.
// While another process is creating the database file or switching it to
// WAL, SQLite can answer SQLITE_BUSY at once, without calling the busy
// handler: it does not wait where waiting could deadlock. So a busy answer
// is retried for up to 10 s.
func beginImmediate(ctx context.Context, db *sqlx.DB) (*sql.Conn, error) {
	var conn *sql.Conn
	err := retryBusy(ctx, 10*time.Second, func() error {
		c, err := db.Conn(ctx)
		if err != nil {
			return err
		}
		if _, err := c.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
			c.Close()
			return err
		}
		conn = c
		return nil
	})
	return conn, err
}

// retryBusy calls f until it returns anything but SQLITE_BUSY, waiting a
// little longer each time (1 ms, doubling up to 25 ms: about the schedule
// of SQLite's own busy handler), and gives up, returning f's last error,
// once ctx is done or limit has passed since the first busy answer.
func retryBusy(ctx context.Context, limit time.Duration, f func() error) error {
	err := f()
	if !isBusy(err) {
		return err
	}
	by := time.Now().Add(limit)
	wait := time.Millisecond
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return err
		case <-timer.C:
		}
		if err = f(); !isBusy(err) || time.Now().After(by) {
			return err
		}
		wait = min(2*wait, 25*time.Millisecond)
		timer.Reset(wait)
	}
}

func isBusy(err error) bool {
	e, ok := errors.AsType[*sqlite.Error](err)
	return ok && e.Code()&0xff == sqlite3.SQLITE_BUSY
}

// translate maps a driver error to the auth sentinels, wrapped with the
// package prefix and op: sql.ErrNoRows is auth.ErrNotFound, a unique
// violation auth.ErrAlreadyExists, and anything that means "cannot answer
// now" auth.ErrUnavailable. Other errors are wrapped as they are.
func translate(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("sqlstore: %s: %w", op, auth.ErrNotFound)
	case isUniqueViolation(err):
		return fmt.Errorf("sqlstore: %s: %w (%w)", op, auth.ErrAlreadyExists, err)
	case isUnavailable(err):
		return fmt.Errorf("sqlstore: %s: %w: %w", op, auth.ErrUnavailable, err)
	}
	// Not an answer about the data (a full disk, a read-only file, a
	// driver failure): the store cannot serve, which is a 503, never a 500.
	return fmt.Errorf("sqlstore: %s: %w: %w", op, auth.ErrUnavailable, err)
}

func isUniqueViolation(err error) bool {
	if e := pq.As(err); e != nil {
		return e.Code == "23505" // unique_violation
	}
	if e, ok := errors.AsType[*sqlite.Error](err); ok {
		code := e.Code()
		return code == sqlite3.SQLITE_CONSTRAINT_UNIQUE || code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

func isUnavailable(err error) bool {
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed) {
		return true
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return true
	}
	if e := pq.As(err); e != nil {
		switch code := string(e.Code); {
		case strings.HasPrefix(code, "08"), // connection exception
			strings.HasPrefix(code, "40"),  // transaction rollback (serialization failure, deadlock): retry
			strings.HasPrefix(code, "53"),  // insufficient resources (too many connections, ...)
			strings.HasPrefix(code, "57P"), // admin/crash shutdown, cannot connect now
			code == "57014":                // query canceled (statement_timeout, cancel)
			return true
		}
		return false
	}
	if e, ok := errors.AsType[*sqlite.Error](err); ok {
		switch e.Code() & 0xff { // primary result code
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN,
			sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_PROTOCOL:
			return true
		}
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, errDBClosed) || strings.Contains(msg, errStmtClosed)
}
