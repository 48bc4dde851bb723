package sqlstore

import (
	"context"
	"database/sql/driver"
	"fmt"
)

// sqliteConnector opens the connections of a Store from [OpenSQLite]. The
// driver runs the pragmas of a connection string under no context, and
// one that reads the file (synchronous, journal_mode) waits for a lock held
// elsewhere (a process on its way to an exclusive lock) for the whole busy
// timeout: the call that needed the connection would end 10 s past its
// deadline. So the connection string holds only pragmas that read nothing,
// setup runs under the context of that call, and WAL, which is the file's,
// is set once by OpenSQLite.
type sqliteConnector struct {
	drv   driver.Driver
	dsn   string
	setup string
}

// Connect implements [driver.Connector].
func (c *sqliteConnector) Connect(ctx context.Context) (driver.Conn, error) {
	cn, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	ex, ok := cn.(driver.ExecerContext)
	if !ok {
		cn.Close()
		return nil, fmt.Errorf("sqlstore: sqlite connection %T cannot execute with a context", cn)
	}
	if _, err := ex.ExecContext(ctx, c.setup, nil); err != nil {
		cn.Close()
		return nil, err
	}
	return cn, nil
}

// Driver implements [driver.Connector].
func (c *sqliteConnector) Driver() driver.Driver { return c.drv }
