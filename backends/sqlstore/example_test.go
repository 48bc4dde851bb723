package sqlstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/backends/memory"
	"github.com/appauth/appauth/backends/sqlstore"
)

// An app password issued on SQLite survives a restart: the second Manager,
// on the reopened database, accepts it.
func ExampleOpenSQLite() {
	dir, err := os.MkdirTemp("", "sqlstore-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "appauth.db")

	ctx := context.Background()
	users := memory.NewDirectory()
	alice := auth.User{ID: "u1", Login: "alice"}
	users.AddUser(alice, "")
	opts := &auth.Options{Peppers: []auth.Pepper{{ID: "k1", Key: []byte("an example key of at least 32 bytes!")}}}

	// First run: issue an app password.
	store, err := sqlstore.OpenSQLite(ctx, path, nil) // or sqlstore.OpenPostgres(ctx, dsn, nil)
	if err != nil {
		panic(err)
	}
	m, err := auth.NewManager(store, users, opts)
	if err != nil {
		panic(err)
	}
	_, secret, err := m.IssueAppPassword(ctx, &alice, auth.IssueRequest{Name: "My iPhone"})
	if err != nil {
		panic(err)
	}
	m.Close()
	store.Close()

	// After a restart: the same database, a new Manager.
	store, err = sqlstore.OpenSQLite(ctx, path, nil)
	if err != nil {
		panic(err)
	}
	defer store.Close()
	m, err = auth.NewManager(store, users, opts)
	if err != nil {
		panic(err)
	}
	defer m.Close()
	p, err := m.Authenticate(ctx, auth.Attempt{Username: "alice", Password: secret})
	fmt.Println(p.User.Login, p.Method, err)
	list, _ := m.ListAppPasswords(ctx, alice.ID)
	fmt.Println(len(list), list[0].Name)
	// Output:
	// alice app_password <nil>
	// 1 My iPhone
}
