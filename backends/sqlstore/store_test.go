package sqlstore_test

import (
	"path/filepath"
	"testing"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/authtest"
	"github.com/appauth/appauth/backends/sqlstore"
	"github.com/appauth/appauth/internal/testenv"
)

func TestSQLite(t *testing.T) {
	authtest.RunStoreTests(t, func(t *testing.T) (auth.Store, func() auth.Store) {
		path := filepath.Join(t.TempDir(), "appauth.db")
		open := func() auth.Store { return mustOpen(t, sqlstore.OpenSQLite, path) }
		return open(), open
	})
}

func TestPostgres(t *testing.T) {
	authtest.RunStoreTests(t, func(t *testing.T) (auth.Store, func() auth.Store) {
		dsn := testenv.Postgres(t)
		open := func() auth.Store { return mustOpen(t, sqlstore.OpenPostgres, dsn) }
		return open(), open
	})
}
