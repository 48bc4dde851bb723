package htpasswd_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/crypto/bcrypt"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/backends/htpasswd"
)

func Example() {
	dir, err := os.MkdirTemp("", "htpasswd-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "users.htpasswd")

	// Add a user (creating the file), as `htpasswd -B` would. A real server
	// passes 0 for bcrypt.DefaultCost; MinCost keeps the example quick.
	if err := htpasswd.SetPassword(path, "alice", "correct horse battery staple", bcrypt.MinCost); err != nil {
		panic(err)
	}

	users, err := htpasswd.Open(path, nil)
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	u, err := users.VerifyPassword(ctx, "alice", "correct horse battery staple")
	fmt.Println(u.ID, u.Login, err) // the file has no IDs: the ID is the login

	_, err = users.VerifyPassword(ctx, "alice", "wrong")
	fmt.Println(errors.Is(err, auth.ErrInvalidCredentials))

	_, err = users.LookupUser(ctx, "bob")
	fmt.Println(errors.Is(err, auth.ErrNotFound))
	// Output:
	// alice alice <nil>
	// true
	// true
}
