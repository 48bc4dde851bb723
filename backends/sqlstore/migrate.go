package sqlstore

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// migrationFiles holds the schema, one directory per dialect, one file per
// version: NNNN_description.sql. A released file is never edited; a change
// is a new file with the next number.
//
//go:embed migrations/*/*.sql
var migrationFiles embed.FS

// migration is one versioned schema change.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the dialect's migrations in version order, with the
// table prefix filled in.
func (d *dialect) migrations(prefix string) ([]migration, error) {
	dir := path.Join("migrations", d.name)
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration file %s: name must start with a positive version number and '_'", e.Name())
		}
		b, err := fs.ReadFile(migrationFiles, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: e.Name(), sql: strings.ReplaceAll(string(b), "{{prefix}}", prefix)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(out); i++ {
		if out[i].version == out[i-1].version {
			return nil, fmt.Errorf("migration files %s and %s share version %d", out[i-1].name, out[i].name, out[i].version)
		}
	}
	return out, nil
}

// migrate brings the schema up to date in one transaction, under a lock
// that makes a concurrent migrate (another process opening the same
// database) wait and then find nothing to do.
func (s *Store) migrate(ctx context.Context) (err error) {
	ms, err := s.dialect.migrations(s.prefix)
	if err != nil {
		return fmt.Errorf("sqlstore: read migrations: %w", err)
	}
	tx, end, err := s.dialect.beginMigration(ctx, s.db, s.prefix)
	if err != nil {
		return translate("migrate: begin", err)
	}
	committed := false
	defer func() {
		if !committed {
			end(false)
		}
	}()

	table := s.prefix + "schema_migrations"
	if _, err := tx.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+table+
		" (version INTEGER NOT NULL PRIMARY KEY, applied_at "+s.dialect.timeType+" NOT NULL)"); err != nil {
		return translate("migrate: create "+table, err)
	}
	var current int
	if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM "+table).Scan(&current); err != nil {
		return translate("migrate: read version", err)
	}
	latest := 0
	if len(ms) > 0 {
		latest = ms[len(ms)-1].version
	}
	if current > latest {
		// A newer release migrated this database (for example during a
		// rolling upgrade). Migrations are additive, so carry on.
		s.logger.Warn("database schema is newer than this release", "schema_version", current, "known_version", latest)
	}
	insert := s.rebind("INSERT INTO " + table + " (version, applied_at) VALUES (?, ?)")
	var applied []migration
	for _, m := range ms {
		if m.version <= current {
			continue
		}
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return translate("migrate: apply "+m.name, err)
		}
		if _, err := tx.ExecContext(ctx, insert, m.version, s.dialect.timeArg(time.Now())); err != nil {
			return translate("migrate: record "+m.name, err)
		}
		applied = append(applied, m)
	}
	committed = true
	if err := end(true); err != nil {
		return translate("migrate: commit", err)
	}
	for _, m := range applied {
		s.logger.Info("applied migration", "version", m.version, "file", m.name)
	}
	return nil
}
