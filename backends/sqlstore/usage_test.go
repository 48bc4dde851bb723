package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/internal/testenv"
)

// countingConnector opens connections of a real driver and counts what the
// Store sends through them.
type countingConnector struct {
	drv              driver.Driver
	dsn              string
	execs, txs, prep atomic.Int64 // statements executed, transactions begun, statements prepared
	match            string       // only statements containing match are counted
}

func (c *countingConnector) Connect(context.Context) (driver.Conn, error) {
	cn, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: cn, c: c}, nil
}
func (c *countingConnector) Driver() driver.Driver { return c.drv }

type countingConn struct {
	driver.Conn
	c *countingConnector
}

func (cn *countingConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	st, err := cn.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if strings.Contains(q, cn.c.match) {
		cn.c.prep.Add(1)
		return &countingStmt{Stmt: st, c: cn.c}, nil
	}
	return st, nil
}

func (cn *countingConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	e, ok := cn.Conn.(driver.ExecerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	if strings.Contains(q, cn.c.match) {
		cn.c.execs.Add(1)
	}
	return e.ExecContext(ctx, q, args)
}

func (cn *countingConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	if qc, ok := cn.Conn.(driver.QueryerContext); ok {
		return qc.QueryContext(ctx, q, args)
	}
	return nil, driver.ErrSkip
}

func (cn *countingConn) BeginTx(ctx context.Context, o driver.TxOptions) (driver.Tx, error) {
	cn.c.txs.Add(1)
	return cn.Conn.(driver.ConnBeginTx).BeginTx(ctx, o)
}

type countingStmt struct {
	driver.Stmt
	c *countingConnector
}

func (s *countingStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	s.c.execs.Add(1)
	return s.Stmt.(driver.StmtExecContext).ExecContext(ctx, args)
}

func (s *countingStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	return s.Stmt.(driver.StmtQueryContext).QueryContext(ctx, args)
}

// TestRecordUsageBatches: a flush is written in batches of at most
// usageBatch (here 3), each one statement on PostgreSQL and one
// transaction on SQLite, and the result is what one conditional UPDATE
// per usage gives: the latest use of each credential wins, whatever the
// order; an older use, another owner's or a missing credential changes
// nothing.
func TestRecordUsageBatches(t *testing.T) {
	for _, d := range []struct {
		name, driver, match string
		dsn                 func(t *testing.T) string
	}{
		{"sqlite", "sqlite", "SET last_used_at", func(t *testing.T) string {
			return filepath.Join(t.TempDir(), "appauth.db") + "?_busy_timeout=10000&_journal_mode=WAL&_txlock=immediate"
		}},
		{"postgres", "postgres", "SET last_used_at", func(t *testing.T) string { return testenv.Postgres(t) }},
	} {
		t.Run(d.name, func(t *testing.T) {
			drv, err := sql.Open(d.driver, "")
			if err != nil {
				t.Fatal(err)
			}
			cc := &countingConnector{drv: drv.Driver(), dsn: d.dsn(t), match: d.match}
			drv.Close()
			db := sqlx.NewDb(sql.OpenDB(cc), d.driver)
			t.Cleanup(func() { db.Close() })
			s, err := New(t.Context(), db, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			s.usageBatch = 3
			ctx := t.Context()
			base := time.Date(2026, 3, 4, 5, 6, 7, 8000, time.UTC)
			const n = 8
			createAlices(t, s, n, "id-%02d", base)
			// id-03 was used at base+1h already: an older use must not win.
			if err := s.RecordUsage(ctx, []auth.Usage{{UserID: "u-alice", ID: "id-03", At: base.Add(time.Hour), Addr: "192.0.2.3", Client: "first"}}); err != nil {
				t.Fatal(err)
			}
			at := func(m int) time.Time { return base.Add(time.Duration(m) * time.Minute) }
			var usage []auth.Usage
			for i := n - 1; i >= 0; i-- { // reverse id order
				usage = append(usage, auth.Usage{UserID: "u-alice", ID: fmt.Sprintf("id-%02d", i), At: at(10 + i), Addr: fmt.Sprint("192.0.2.", i), Client: fmt.Sprint("client ", i)})
			}
			usage = append(usage,
				auth.Usage{UserID: "u-alice", ID: "id-05", At: at(5), Addr: "older", Client: "older"}, // older than the id-05 above
				// Newer than the id-06 above, from a client whose name
				// is made to break an array literal.
				auth.Usage{UserID: "u-alice", ID: "id-06", At: at(99), Addr: "newer", Client: hostileClient},
				auth.Usage{UserID: "u-bob", ID: "id-07", At: at(200), Addr: "bob", Client: "bob"}, // not bob's
				auth.Usage{UserID: "u-alice", ID: "id-missing", At: at(200), Addr: "x", Client: "x"},
				auth.Usage{UserID: "u-alice", ID: "", At: at(200)}, // dropped before any statement
			)
			execs, txs := cc.execs.Load(), cc.txs.Load()
			if err := s.RecordUsage(ctx, usage); err != nil {
				t.Fatal(err)
			}
			// 8 credentials of alice, bob's and the missing one: 10
			// usages, 4 batches.
			gotExecs, gotTxs := cc.execs.Load()-execs, cc.txs.Load()-txs
			switch d.name {
			case "postgres":
				if gotExecs != 4 || gotTxs != 0 {
					t.Errorf("PostgreSQL: %d statements in %d transactions for 10 usages in batches of 3, want 4 statements, no transaction", gotExecs, gotTxs)
				}
			case "sqlite":
				if gotExecs != 10 || gotTxs != 4 {
					t.Errorf("SQLite: %d statements in %d transactions for 10 usages in batches of 3, want 10 in 4", gotExecs, gotTxs)
				}
			}
			for i := range n {
				id := fmt.Sprintf("id-%02d", i)
				wantAt, wantAddr, wantClient := at(10+i), fmt.Sprint("192.0.2.", i), fmt.Sprint("client ", i)
				switch id {
				case "id-03":
					wantAt, wantAddr, wantClient = base.Add(time.Hour), "192.0.2.3", "first"
				case "id-06":
					wantAt, wantAddr, wantClient = at(99), "newer", hostileClient
				}
				c, err := s.Credential(ctx, "u-alice", id)
				if err != nil {
					t.Fatal(err)
				}
				if !c.LastUsedAt.Equal(wantAt) || c.LastUsedAddr != wantAddr || c.LastUsedClient != wantClient {
					t.Errorf("%s: last used %s from %q by %q, want %s from %q by %q", id, c.LastUsedAt, c.LastUsedAddr, c.LastUsedClient, wantAt, wantAddr, wantClient)
				}
			}
		})
	}
}

// createAlices stores n app passwords of alice, created at base, the i-th
// with ID fmt.Sprintf(idFormat, i) and hash fakeHash(i).
func createAlices(tb testing.TB, s *Store, n int, idFormat string, base time.Time) {
	tb.Helper()
	for i := range n {
		c := &auth.StoredCredential{ID: fmt.Sprintf(idFormat, i), Kind: auth.KindAppPassword, UserID: "u-alice", Login: "alice",
			Name: fmt.Sprint("device ", i), Hash: fakeHash(i), KeyID: "1", Hint: "ABCD", CreatedAt: base}
		if err := s.CreateCredential(tb.Context(), c); err != nil {
			tb.Fatal(err)
		}
	}
}

// hostileClient is a User-Agent made of what quotes, separates and ends
// an array literal or a string.
const hostileClient = `DAVx5 "}, {'x'} \" NULL ,\\ é` + "\t\n"

// TestConcurrentFlushesDoNotDeadlock: two servers flushing the same
// credentials at once, given in opposite orders, both succeed on
// PostgreSQL (a deadlock would fail one of them with SQLSTATE 40P01), and
// the later time wins.
func TestConcurrentFlushesDoNotDeadlock(t *testing.T) {
	dsn := testenv.Postgres(t)
	var stores [2]*Store
	for i := range stores {
		s, err := OpenPostgres(t.Context(), dsn, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores[i] = s
	}
	ctx := t.Context()
	base := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	const n = 200
	createAlices(t, stores[0], n, "id-%03d", base)
	const rounds = 20
	for round := range rounds {
		var wg sync.WaitGroup
		var errs [2]error
		for w, s := range stores {
			usage := make([]auth.Usage, n)
			for i := range usage {
				j := i
				if w == 1 {
					j = n - 1 - i
				}
				usage[i] = auth.Usage{UserID: "u-alice", ID: fmt.Sprintf("id-%03d", j), At: base.Add(time.Duration(2*round+w) * time.Second), Addr: fmt.Sprint("server ", w)}
			}
			wg.Go(func() { errs[w] = s.RecordUsage(ctx, usage) })
		}
		wg.Wait()
		if err := errors.Join(errs[:]...); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
	want := base.Add(time.Duration(2*(rounds-1)+1) * time.Second)
	for _, i := range []int{0, n / 2, n - 1} {
		c, err := stores[0].Credential(ctx, "u-alice", fmt.Sprintf("id-%03d", i))
		if err != nil {
			t.Fatal(err)
		}
		if !c.LastUsedAt.Equal(want) || c.LastUsedAddr != "server 1" {
			t.Errorf("id-%03d: last used %s by %q, want %s by server 1", i, c.LastUsedAt, c.LastUsedAddr, want)
		}
	}
}

// BenchmarkRecordUsage writes the last uses of 500 credentials, as one
// flush of a Manager, against its baseline in the same run: the way the
// Store wrote them before, one UPDATE per credential in one transaction.
// The ratio is baseline time / RecordUsage time.
func BenchmarkRecordUsage(b *testing.B) {
	for _, d := range []struct {
		name string
		open func(b *testing.B) (*Store, error)
	}{
		{"sqlite", func(b *testing.B) (*Store, error) {
			return OpenSQLite(b.Context(), filepath.Join(b.TempDir(), "appauth.db"), nil)
		}},
		{"postgres", func(b *testing.B) (*Store, error) { return OpenPostgres(b.Context(), testenv.Postgres(b), nil) }},
	} {
		b.Run(d.name, func(b *testing.B) {
			s, err := d.open(b)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			ctx := b.Context()
			base := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
			const n = 500
			createAlices(b, s, n, "id-%03d", base)
			var tick atomic.Int64
			usage := func() []auth.Usage {
				at := base.Add(time.Duration(tick.Add(1)) * time.Second)
				us := make([]auth.Usage, n)
				for i := range us {
					us[i] = auth.Usage{UserID: "u-alice", ID: fmt.Sprintf("id-%03d", i), At: at, Addr: "192.0.2.1", Client: "bench"}
				}
				return us
			}
			perRow := func(us []auth.Usage) error {
				tx, err := s.db.BeginTxx(ctx, nil)
				if err != nil {
					return err
				}
				defer tx.Rollback()
				for _, u := range us {
					at := s.dialect.timeArg(u.At)
					if _, err := tx.ExecContext(ctx, s.q.usage, at, u.Addr, u.Client, u.ID, u.UserID, at); err != nil {
						return err
					}
				}
				return tx.Commit()
			}
			// One writer, as a Manager has: alternate the two.
			var baseT, subjT time.Duration
			for b.Loop() {
				t0 := time.Now()
				if err := perRow(usage()); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if err := s.RecordUsage(ctx, usage()); err != nil {
					b.Fatal(err)
				}
				baseT, subjT = baseT+t1.Sub(t0), subjT+time.Since(t1)
			}
			b.ReportMetric(float64(baseT)/float64(b.N), "baseline-ns")
			b.ReportMetric(float64(subjT)/float64(b.N), "subject-ns")
			b.ReportMetric(float64(baseT)/float64(subjT), "ratio")
		})
	}
}

// TestRecordUsageClientNotUTF8: a User-Agent or address that is not UTF-8
// (net/http passes bytes 0x80-0xFF in a header), or that holds a NUL, is
// what any client with a valid app password can send. PostgreSQL refuses
// such text, and a batch is one statement: the whole flush failed, was put
// back by the Manager and failed again with every flush, so no credential
// in it (every other user's) had its last use written again. Each usage
// must be written, the client's text made valid.
func TestRecordUsageClientNotUTF8(t *testing.T) {
	for _, d := range []struct {
		name string
		open func(t *testing.T) (*Store, error)
	}{
		{"sqlite", func(t *testing.T) (*Store, error) {
			return OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "appauth.db"), nil)
		}},
		{"postgres", func(t *testing.T) (*Store, error) { return OpenPostgres(t.Context(), testenv.Postgres(t), nil) }},
	} {
		t.Run(d.name, func(t *testing.T) {
			s, err := d.open(t)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			ctx := t.Context()
			base := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
			createAlices(t, s, 3, "id-%02d", base)
			at := base.Add(time.Hour)
			usage := []auth.Usage{
				{UserID: "u-alice", ID: "id-00", At: at, Addr: "192.0.2.1", Client: "DAVx5"},
				{UserID: "u-alice", ID: "id-01", At: at, Addr: "192.0.2.2", Client: "bad \xff\xfe client"},
				{UserID: "u-alice", ID: "id-02", At: at, Addr: "192.0.2.3\x00", Client: "nul \x00 client"},
			}
			if err := s.RecordUsage(ctx, usage); err != nil {
				t.Fatalf("RecordUsage with a client that is not UTF-8: %v", err)
			}
			// A sign-in stores its session with the client's address and
			// User-Agent (also its name): the same text must not fail it.
			session := &auth.StoredCredential{ID: "session", Kind: auth.KindSession, UserID: "u-alice", Login: "alice", Name: "bad \xff client",
				Hash: fakeHash(99), KeyID: "1", CreatedAt: base, LastUsedAt: at, LastUsedAddr: "192.0.2.4\x00", LastUsedClient: "bad \xff client"}
			if err := s.CreateCredential(ctx, session); err != nil {
				t.Fatalf("CreateCredential with a client that is not UTF-8: %v", err)
			}
			usage = append(usage, auth.Usage{UserID: "u-alice", ID: "session"})
			for _, u := range usage {
				c, err := s.Credential(ctx, "u-alice", u.ID)
				if err != nil {
					t.Fatal(err)
				}
				if !c.LastUsedAt.Equal(at) || !utf8.ValidString(c.LastUsedClient+c.LastUsedAddr+c.Name) ||
					strings.ContainsRune(c.LastUsedClient+c.LastUsedAddr+c.Name, 0) {
					t.Errorf("%s: last used %s from %q by %q, want %s and valid UTF-8 without NUL", u.ID, c.LastUsedAt, c.LastUsedAddr, c.LastUsedClient, at)
				}
			}
		})
	}
}

// TestRevokeAllRacingFlush: revoking all of a user's app passwords while a
// flush writes the last uses of some of them (on another server, or this
// one) both succeed on PostgreSQL. The flush locks its rows in ID order;
// the DELETE locked the user's rows in the order it found them (by
// creation), so each could hold a row the other waited for, and
// PostgreSQL failed one of them after a second: a "sign out everywhere"
// answered 503. A third transaction holding a row of bob's, between
// alice's two in ID order, lines the two up: the flush takes alice's first
// row and waits for bob's, the DELETE takes alice's other row and waits.
func TestRevokeAllRacingFlush(t *testing.T) {
	dsn := testenv.Postgres(t)
	s, err := OpenPostgres(t.Context(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	base := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	// Created (and stored) in the order id-b, id-a: the DELETE meets id-b first.
	for i, c := range []struct{ id, user string }{{"id-b", "u-alice"}, {"id-a", "u-alice"}, {"id-ab", "u-bob"}} {
		if err := s.CreateCredential(ctx, &auth.StoredCredential{ID: c.id, Kind: auth.KindAppPassword, UserID: c.user, Login: c.user,
			Name: "device", Hash: fakeHash(i), KeyID: "1", Hint: "ABCD", CreatedAt: base.Add(time.Duration(i) * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	db, err := sqlx.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	tx, waiting := HoldRowLock(t, db, "SELECT 1 FROM appauth_credentials WHERE id = 'id-ab' FOR UPDATE")
	var wg sync.WaitGroup
	var flushErr, revokeErr error
	at := base.Add(time.Hour)
	wg.Go(func() {
		flushErr = s.RecordUsage(ctx, []auth.Usage{
			{UserID: "u-alice", ID: "id-a", At: at}, {UserID: "u-bob", ID: "id-ab", At: at}, {UserID: "u-alice", ID: "id-b", At: at}})
	})
	waitForCond(t, "the flush to wait for bob's row", waiting(1))
	wg.Go(func() { _, revokeErr = s.DeleteCredentials(ctx, "u-alice", auth.KindAppPassword, "") })
	waitForCond(t, "the revoke to wait too", waiting(2))
	tx.Rollback()
	wg.Wait()
	if flushErr != nil {
		t.Errorf("flush beside a revoke of all: %v", flushErr)
	}
	if revokeErr != nil {
		t.Errorf("revoke of all beside a flush: %v", revokeErr)
	}
	if l, err := s.ListCredentials(ctx, "u-alice", auth.KindAppPassword); err != nil || len(l) != 0 {
		t.Errorf("alice's app passwords after the revoke: %d, %v; want none", len(l), err)
	}
}

// HoldRowLock runs lockQuery (a SELECT ... FOR UPDATE) on db in a
// transaction that holds its rows until rolled back (at the latest when the
// test ends), and returns it with waiting(n), true once n sessions of db's
// database wait for a lock: the PostgreSQL race tests line two calls up
// behind the held row with it. Exported for the sqlstore_test tests too.
func HoldRowLock(t *testing.T, db *sqlx.DB, lockQuery string) (tx *sql.Tx, waiting func(n int) func() bool) {
	t.Helper()
	ctx := t.Context()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback() })
	if _, err := tx.ExecContext(ctx, lockQuery); err != nil {
		t.Fatal(err)
	}
	return tx, func(n int) func() bool {
		return func() bool {
			var got int
			err := db.QueryRowContext(ctx, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'").Scan(&got)
			return err == nil && got == n
		}
	}
}

// waitForCond polls cond for up to 10 s, a safety net, not a timing assertion.
func waitForCond(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10s for %s", what)
		}
	}
}
