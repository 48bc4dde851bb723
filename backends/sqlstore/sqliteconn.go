package sqlstore

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"

	"modernc.org/sqlite"
)

// sqliteConnector opens the connections of a Store from [OpenSQLite]. The
// driver runs the pragmas of a connection string under no context, and
// one that reads the file (journal_mode, synchronous) waits for a lock held
// elsewhere (a process on its way to an exclusive lock) for the whole busy
// timeout: the call that needed the connection ended 10 s past its
// deadline. So the connection string holds only the pragmas that read
// nothing, and Connect runs the others under the context of that call.
type sqliteConnector struct{ driver.Connector }

func newSQLiteConnector(dsn string) (*sqliteConnector, error) {
	c, err := sqlite.NewConnector(dsn)
	if err != nil {
		return nil, err
	}
	return &sqliteConnector{c}, nil
}

// Connect implements [driver.Connector]: every connection is in WAL mode,
// put there again if anything took the file out of it, with
// synchronous=FULL (a committed revocation survives a power loss).
func (c *sqliteConnector) Connect(ctx context.Context) (driver.Conn, error) {
	cn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	if err := setUpSQLite(ctx, cn); err != nil {
		cn.Close()
		return nil, err
	}
	return cn, nil
}

func setUpSQLite(ctx context.Context, cn driver.Conn) error {
	q, ok := cn.(driver.QueryerContext)
	ex, ok2 := cn.(driver.ExecerContext)
	if !ok || !ok2 {
		return fmt.Errorf("sqlstore: sqlite connection %T cannot run statements with a context", cn)
	}
	rows, err := q.QueryContext(ctx, "PRAGMA journal_mode = WAL", nil)
	if err != nil {
		return err
	}
	mode := make([]driver.Value, 1)
	err = errors.Join(rows.Next(mode), rows.Close())
	if err != nil {
		return err
	}
	if s, _ := mode[0].(string); s != "wal" {
		return fmt.Errorf("sqlstore: sqlite: journal mode is %v, not WAL", mode[0])
	}
	_, err = ex.ExecContext(ctx, "PRAGMA synchronous = FULL", nil)
	return err
}
