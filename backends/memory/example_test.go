package memory_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/backends/memory"
)

func ExampleDirectory() {
	ctx := context.Background()
	dir := memory.NewDirectory()
	if err := dir.AddUser(auth.User{ID: "u1", Login: "alice", DisplayName: "Alice", Groups: []string{"staff"}}, "alice's account password"); err != nil {
		panic(err)
	}

	u, err := dir.VerifyPassword(ctx, "Alice", "alice's account password") // logins match case-insensitively
	fmt.Println(u.ID, u.Login, u.Groups, err)

	_, err = dir.VerifyPassword(ctx, "alice", "wrong")
	fmt.Println(errors.Is(err, auth.ErrInvalidCredentials))

	dir.SetDisabled("alice", true)
	u, _ = dir.LookupUser(ctx, "alice")
	fmt.Println("disabled:", u.Disabled)

	_, err = dir.LookupUser(ctx, "bob")
	fmt.Println(errors.Is(err, auth.ErrNotFound))
	// Output:
	// u1 alice [staff] <nil>
	// true
	// disabled: true
	// true
}

// A Manager over the memory Store and Directory: everything an embedding
// needs for tests and examples, nothing kept on disk.
func ExampleNewStore() {
	ctx := context.Background()
	dir := memory.NewDirectory()
	bob := auth.User{ID: "u2", Login: "bob"}
	dir.AddUser(bob, "")
	m, err := auth.NewManager(memory.NewStore(), dir, &auth.Options{
		Peppers: []auth.Pepper{{ID: "k1", Key: []byte("an example key of at least 32 bytes!")}},
	})
	if err != nil {
		panic(err)
	}
	defer m.Close()

	_, secret, err := m.IssueAppPassword(ctx, &bob, auth.IssueRequest{Name: "Laptop"})
	if err != nil {
		panic(err)
	}
	p, err := m.Authenticate(ctx, auth.Attempt{Username: "bob", Password: secret})
	fmt.Println(p.User.Login, p.Method, err)
	// Output: bob app_password <nil>
}
