package sqlstore

import (
	"context"
	"database/sql/driver"
	"fmt"
	"net"
	"time"

	"github.com/lib/pq"
)

// PostgreSQL connections bounded by the deadline of each call.
//
// lib/pq ends a call whose context is done by sending the server a cancel
// request and waiting for its answer while the call keeps reading the
// socket: on a hung server neither ever returns. It also starts a
// goroutine per call to watch the context. So [OpenPostgres] opens its
// pool through pgConnector instead: each call first puts its context's
// deadline on the connection's socket, and a call whose context has one
// runs in lib/pq under a context that is never done (no watcher, no cancel
// request). On a hung server a read or write fails at the deadline, lib/pq
// marks the connection bad, and database/sql discards it. The deadline
// stays on the socket after the call returns, so rows are read under it;
// the next call sets its own, and the socket is only touched when the
// deadline changes. A context cancelled before its deadline ends the call
// at the deadline, not before (the Manager's calls always have one,
// Options.StoreTimeout); a statement still running on the server then is
// abandoned with its connection, not cancelled. A context without a
// deadline goes to lib/pq as it is, cancel request included.

// pgConnector opens lib/pq connections whose sockets take each call's
// deadline (see above).
type pgConnector struct{ pq *pq.Connector }

func newPGConnector(dsn string) (*pgConnector, error) {
	c, err := pq.NewConnector(dsn)
	if err != nil {
		return nil, err
	}
	c.Dialer(dialFunc(dialDeadline))
	return &pgConnector{pq: c}, nil
}

// dialedKey's value in a Connect context is where dialDeadline leaves the
// socket it dialed (a **deadlineConn): one per Connect, no shared state.
type dialedKey struct{}

// Connect implements [driver.Connector]. Connecting, too, ends at ctx's
// deadline (see dialDeadline).
func (c *pgConnector) Connect(ctx context.Context) (driver.Conn, error) {
	var nc *deadlineConn
	cn, err := c.pq.Connect(context.WithValue(ctx, dialedKey{}, &nc))
	if err != nil {
		return nil, err
	}
	pc, ok := cn.(pqConn)
	if nc == nil || !ok {
		cn.Close()
		return nil, fmt.Errorf("sqlstore: lib/pq connection %T lacks a method this package needs, or was not dialed by it", cn)
	}
	nc.connectBy = time.Time{}
	return &pgConn{pqConn: pc, nc: nc}, nil
}

// Driver implements [driver.Connector].
func (c *pgConnector) Driver() driver.Driver { return c.pq.Driver() }

// dialFunc is a [pq.DialerContext] made of its DialContext, which lib/pq
// prefers to the other two methods.
type dialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// DialContext implements [pq.DialerContext].
func (f dialFunc) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return f(ctx, network, address)
}

// Dial implements [pq.Dialer]; lib/pq calls DialContext instead.
func (f dialFunc) Dial(network, address string) (net.Conn, error) {
	return f(context.Background(), network, address)
}

// DialTimeout implements [pq.Dialer]; lib/pq calls DialContext instead.
func (f dialFunc) DialTimeout(network, address string, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return f(ctx, network, address)
}

// dialDeadline dials the sockets of pgConnector's connections. ctx is the
// Connect context, bounded by connect_timeout: its deadline bounds the
// handshake too, whatever deadline lib/pq sets.
func dialDeadline(ctx context.Context, network, address string) (net.Conn, error) {
	var d net.Dialer
	raw, err := d.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	nc := &deadlineConn{Conn: raw}
	if by, ok := ctx.Deadline(); ok {
		nc.connectBy = by
		if err := nc.SetDeadline(by); err != nil {
			raw.Close()
			return nil, err
		}
	}
	if p, ok := ctx.Value(dialedKey{}).(**deadlineConn); ok {
		*p = nc
	}
	return nc, nil
}

// deadlineConn is a connection's socket. database/sql uses a connection
// from one goroutine at a time, so its fields need no lock.
type deadlineConn struct {
	net.Conn
	// connectBy, while lib/pq connects, is the latest deadline it may set.
	connectBy time.Time
	deadline  time.Time // the socket's; zero: none
}

// SetDeadline is called by lib/pq while it connects (and by TLS under it).
func (c *deadlineConn) SetDeadline(t time.Time) error {
	if !c.connectBy.IsZero() && (t.IsZero() || t.After(c.connectBy)) {
		t = c.connectBy
	}
	c.deadline = t
	return c.Conn.SetDeadline(t)
}

// bound gives the socket ctx's deadline, or none if ctx has none, and
// returns the context to call lib/pq with: one that is never done when ctx
// has a deadline (the socket's ends the call), else ctx itself, so that a
// context that can only be cancelled still gets lib/pq's cancel request.
func (c *deadlineConn) bound(ctx context.Context) (context.Context, error) {
	d, ok := ctx.Deadline()
	if !d.Equal(c.deadline) {
		c.deadline = d
		if err := c.Conn.SetDeadline(d); err != nil {
			return nil, err
		}
	}
	if ok {
		return context.Background(), nil
	}
	return ctx, nil
}

// pqConn is what database/sql uses of a lib/pq connection.
type pqConn interface {
	driver.Conn
	driver.ConnPrepareContext
	driver.ConnBeginTx
	driver.QueryerContext
	driver.ExecerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
	driver.NamedValueChecker
}

// pgConn is a lib/pq connection whose calls take their context's deadline
// on the socket. Its other methods (ResetSession, IsValid,
// CheckNamedValue) are lib/pq's.
type pgConn struct {
	pqConn
	nc *deadlineConn
}

var (
	_ pqConn           = (*pgConn)(nil)
	_ pqStmt           = (*pgStmt)(nil)
	_ driver.Connector = (*pgConnector)(nil)
	_ pq.DialerContext = dialFunc(nil)
)

// closeTimeout bounds the goodbye lib/pq writes when a connection closes.
const closeTimeout = time.Second

// Close gives lib/pq's goodbye (Terminate) a deadline of its own: the last
// call's may have passed while the connection sat idle, and the write
// would fail and make sql.DB.Close, and so Store.Close, report it.
func (c *pgConn) Close() error {
	c.nc.Conn.SetDeadline(time.Now().Add(closeTimeout))
	return c.pqConn.Close()
}

// The driver methods below put ctx's deadline on the socket first (see
// deadlineConn.bound).

func (c *pgConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *pgConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	pctx, err := c.nc.bound(ctx)
	if err != nil {
		return nil, err
	}
	st, err := c.pqConn.PrepareContext(pctx, query)
	if err != nil {
		return nil, err
	}
	ps, ok := st.(pqStmt)
	if !ok { // COPY, which this package does not use
		st.Close()
		return nil, fmt.Errorf("sqlstore: lib/pq statement %T has no context methods", st)
	}
	return &pgStmt{pqStmt: ps, nc: c.nc}, nil
}

func (c *pgConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	pctx, err := c.nc.bound(ctx)
	if err != nil {
		return nil, err
	}
	return c.pqConn.BeginTx(pctx, opts)
}

func (c *pgConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	pctx, err := c.nc.bound(ctx)
	if err != nil {
		return nil, err
	}
	return c.pqConn.QueryContext(pctx, query, args)
}

func (c *pgConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	pctx, err := c.nc.bound(ctx)
	if err != nil {
		return nil, err
	}
	return c.pqConn.ExecContext(pctx, query, args)
}

func (c *pgConn) Ping(ctx context.Context) error {
	pctx, err := c.nc.bound(ctx)
	if err != nil {
		return err
	}
	return c.pqConn.Ping(pctx)
}

// pqStmt is what database/sql uses of a lib/pq prepared statement.
type pqStmt interface {
	driver.Stmt
	driver.StmtQueryContext
	driver.StmtExecContext
}

// pgStmt is a lib/pq prepared statement whose calls take their context's
// deadline on its connection's socket.
type pgStmt struct {
	pqStmt
	nc *deadlineConn
}

// Close gives lib/pq's Close message a deadline of closeTimeout when the
// socket has none (its last call had none): database/sql closes statements
// on idle connections (Store.Close does), and a hung server's answer never
// comes. A deadline of the last call's, passed or not, stays.
func (s *pgStmt) Close() error {
	if s.nc.deadline.IsZero() {
		s.nc.deadline = time.Now().Add(closeTimeout)
		if err := s.nc.Conn.SetDeadline(s.nc.deadline); err != nil {
			return err
		}
	}
	return s.pqStmt.Close()
}

func (s *pgStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	pctx, err := s.nc.bound(ctx)
	if err != nil {
		return nil, err
	}
	return s.pqStmt.QueryContext(pctx, args)
}

func (s *pgStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	pctx, err := s.nc.bound(ctx)
	if err != nil {
		return nil, err
	}
	return s.pqStmt.ExecContext(pctx, args)
}
