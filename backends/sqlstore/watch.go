package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
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
	l := pq.NewListener(s.listenDSN, listenRetryMin, listenRetryMax, func(ev pq.ListenerEventType, err error) {
		if ev == pq.ListenerEventConnectionAttemptFailed {
			s.logger.Warn("sqlstore: change notification: cannot connect", "error", redactDSN(err, s.listenDSN))
		}
	})
	defer l.Close()
	channel := s.prefix + "credentials"
	go func() { failed <- l.Listen(channel) }()
	select {
	case err := <-failed:
		if err != nil {
			return translate("listen", redactDSN(err, s.listenDSN))
		}
		changed("", "") // what was cached before now may have missed a change
		s.logger.Info("sqlstore: change notification: listening", "channel", channel)
	case <-ctx.Done():
		return nil
	}
	// Ping now and then: a half-open connection is found and replaced.
	ping := time.NewTicker(30 * time.Second)
	defer ping.Stop()
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
			go l.Ping()
		}
	}
}
