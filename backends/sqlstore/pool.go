package sqlstore

import (
	"cmp"
	"database/sql"
	"errors"
	"time"
)

// Pool defaults, used by [OpenPostgres], [OpenSQLite] and [ConfigurePool]
// where [Options] leaves a field zero.
const (
	// DefaultMaxOpenConns is a fixed number, not one derived from the
	// server's cores: the bound protects the database, whose
	// max_connections (100 by default on PostgreSQL) every server shares.
	// With 16, the 16 concurrent clients of BENCHMARKS.md's cold pass never
	// wait for one; a verify that does wait, waits under its context's
	// deadline.
	DefaultMaxOpenConns = 16
	// DefaultConnMaxLifetime replaces connections after half an hour, so a
	// pool follows a failover or a new replica behind the same name.
	DefaultConnMaxLifetime = 30 * time.Minute
	// DefaultConnMaxIdleTime closes connections idle for five minutes: the
	// pool shrinks again after a burst.
	DefaultConnMaxIdleTime = 5 * time.Minute
)

// ConfigurePool sizes db's connection pool from opts (nil means defaults):
// at most MaxOpenConns connections, all of which may stay idle, replaced
// after ConnMaxLifetime and closed after ConnMaxIdleTime unused. It is what
// [OpenPostgres] and [OpenSQLite] do; call it on a pool you give to [New].
//
// Idle equals open on purpose: database/sql keeps only 2 idle connections
// by default, so every burst of concurrent cache misses closed the extra
// connections afterwards and the next burst paid for new ones (on
// PostgreSQL, a new backend process each). ConnMaxIdleTime, not the idle
// limit, is what returns the connections of a burst.
func ConfigurePool(db *sql.DB, opts *Options) error {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.MaxOpenConns < 0 || o.ConnMaxLifetime < 0 || o.ConnMaxIdleTime < 0 {
		return errors.New("sqlstore: MaxOpenConns, ConnMaxLifetime and ConnMaxIdleTime must not be negative (zero means the default)")
	}
	n := cmp.Or(o.MaxOpenConns, DefaultMaxOpenConns)
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxLifetime(cmp.Or(o.ConnMaxLifetime, DefaultConnMaxLifetime))
	db.SetConnMaxIdleTime(cmp.Or(o.ConnMaxIdleTime, DefaultConnMaxIdleTime))
	return nil
}
