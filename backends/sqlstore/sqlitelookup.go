package sqlstore

import (
	"context"
	"errors"
	"time"

	"github.com/jmoiron/sqlx"
)

// sqliteLookups are the connections of the credential lookups by hash
// (every cache miss) on a SQLite Store from [OpenSQLite]: a pool of their
// own, beside the Store's, and as many slots as it has connections. A
// lookup waits, under its context, only for a slot; holding one, it always
// finds a connection free. So:
//   - a lookup never waits for a connection behind writers that hold every
//     connection of the Store's pool while they wait for the write lock;
//   - its query gets a context that is never done, which spares
//     database/sql and the driver a goroutine each to watch it (a tenth of
//     a cold verify). What they would interrupt does not happen here: a WAL
//     reader takes no lock a writer holds, and a lookup by a unique index
//     has no long run to cut short. A lock it cannot take (another process
//     on its way to an exclusive lock refuses new readers, another
//     connection recovers the WAL index) makes it wait as long as its own
//     context allows, and at most lookupLockWait: these connections have
//     no busy timeout, so SQLite answers SQLITE_BUSY at once and the lookup
//     tries again (retryBusy).
type sqliteLookups struct {
	db     *sqlx.DB
	byHash *sqlx.Stmt
	slots  chan struct{}
}

// lookupLockWait bounds a lookup's wait for a lock when its context does
// not: the busy timeout of the Store's other connections.
const lookupLockWait = 10 * time.Second

func openSQLiteLookups(ctx context.Context, path string, opts *Options, byHash string) (*sqliteLookups, error) {
	db, err := sqlx.Open("sqlite", path+"?_query_only=1")
	if err != nil {
		return nil, err
	}
	if err := ConfigurePool(db.DB, opts); err != nil {
		db.Close()
		return nil, err
	}
	var stmt *sqlx.Stmt
	if err := retryBusy(ctx, lookupLockWait, func() (err error) {
		stmt, err = db.PreparexContext(ctx, byHash)
		return err
	}); err != nil {
		db.Close()
		return nil, err
	}
	return &sqliteLookups{db: db, byHash: stmt, slots: make(chan struct{}, db.Stats().MaxOpenConnections)}, nil
}

// get scans the credential whose hash is hash into dest.
func (l *sqliteLookups) get(ctx context.Context, hash []byte, dest ...any) error {
	select {
	case l.slots <- struct{}{}:
	default:
		select {
		case l.slots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	defer func() { <-l.slots }()
	if err := ctx.Err(); err != nil {
		return err
	}
	return retryBusy(ctx, lookupLockWait, func() error {
		return l.byHash.QueryRowContext(context.Background(), hash).Scan(dest...)
	})
}

func (l *sqliteLookups) close() error {
	return errors.Join(l.byHash.Close(), l.db.Close())
}
