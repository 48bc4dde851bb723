package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/lib/pq"

	"github.com/appauth/appauth/auth"
)

var _ auth.ChangeWatcher = (*Store)(nil)

// The listener reconnects at once when its connection drops, then retries
// after listenRetryMin, doubling up to listenRetryMax. NOTIFYs sent while
// it is disconnected are lost (it then clears the caches), so the longest
// retry interval bounds how late another server learns of a revocation
// made just after the database came back: well under the promised second.
const (
	listenRetryMin = 10 * time.Millisecond
	listenRetryMax = 250 * time.Millisecond
	// listenPingEvery is how often the listener's connection is pinged; its
	// answer must come within a third of that (see listenConn).
	listenPingEvery = 30 * time.Second
)

// WatchChanges implements [auth.ChangeWatcher] on PostgreSQL: it LISTENs on
// the channel that the credentials table's trigger notifies. It needs the
// DSN, so a Store made with [New] watches only when [Options.ListenDSN] is
// set; on SQLite it returns an error matching errors.ErrUnsupported.
func (s *Store) WatchChanges(ctx context.Context, changed func(userID, id string)) error {
	if s.dialect != postgresDialect || s.listenDSN == "" {
		return fmt.Errorf("sqlstore: watch changes: %w on %s without Options.ListenDSN", errors.ErrUnsupported, s.dialect.name)
	}
	failed := make(chan error, 1)
	var lc listenConn
	l := pq.NewDialListener(dialFunc(lc.dial), s.listenDSN, listenRetryMin, listenRetryMax, func(ev pq.ListenerEventType, err error) {
		// Once ctx is done, an attempt fails because the deferred close
		// below refuses it: nothing to warn about.
		if ev == pq.ListenerEventConnectionAttemptFailed && ctx.Err() == nil {
			s.logger.Warn("sqlstore: change notification: cannot connect", "error", redactDSN(err, s.listenDSN))
		}
	})
	// A call waiting for the server holds the listener's lock, which Close
	// needs: lib/pq's LISTEN waits for its answer with no deadline, before
	// any ping (at the start, and after a reconnect). So the connection
	// fails first, and no new one is dialed.
	defer func() {
		lc.close()
		l.Close()
	}()
	channel := s.prefix + "credentials"
	// Ping now and then: a half-open connection, or a hung server, is
	// found and replaced, also while the first LISTEN waits for its answer
	// (its connection fails at the ping's deadline, and lib/pq dials
	// another).
	ping := time.NewTicker(s.listenPing)
	defer ping.Stop()
	go func() { failed <- l.Listen(channel) }()
	for listening := false; !listening; {
		select {
		case err := <-failed:
			if err != nil {
				return translate("listen", redactDSN(err, s.listenDSN))
			}
			changed("", "") // what was cached before now may have missed a change
			s.logger.Info("sqlstore: change notification: listening", "channel", channel)
			listening = true
		case <-ping.C:
			go lc.ping(l, s.listenPing/3)
		case <-ctx.Done():
			return nil
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case n := <-l.Notify:
			if n == nil { // reconnected: anything may have been missed
				changed("", "")
				continue
			}
			id, userID, ok := strings.Cut(n.Extra, " ")
			if !ok {
				changed("", "")
				continue
			}
			changed(userID, id)
		case <-ping.C:
			go lc.ping(l, s.listenPing/3)
		}
	}
}

// listenConn is the newest connection a listener dialed. lib/pq waits for
// the answer to a ping for as long as the server hangs (on a half-open
// connection, as long as TCP retransmits), holding the listener's lock, so
// a ping puts a read deadline on the connection: missing it fails the
// connection, and the listener reconnects.
type listenConn struct {
	mu     sync.Mutex
	c      net.Conn
	closed bool // by close: no more dials
}

func (lc *listenConn) dial(ctx context.Context, network, address string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if lc.closed {
		c.Close()
		return nil, net.ErrClosed
	}
	lc.c = c
	return c, nil
}

// close fails every read and write on the newest connection at once, and
// every later dial.
func (lc *listenConn) close() {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	lc.closed = true
	if lc.c != nil {
		lc.c.SetDeadline(time.Now())
	}
}

func (lc *listenConn) newest() net.Conn {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return lc.c
}

// ping pings l, failing its connection unless the answer comes within
// timeout. Only a connection that answered loses the deadline: one being
// dialed keeps the deadline lib/pq gave its connect.
func (lc *listenConn) ping(l *pq.Listener, timeout time.Duration) {
	c := lc.newest()
	if c == nil {
		return
	}
	c.SetReadDeadline(time.Now().Add(timeout))
	if l.Ping() == nil {
		c.SetReadDeadline(time.Time{})
	}
}
