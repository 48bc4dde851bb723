package auth_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/backends/memory"
)

func Example() {
	ctx := context.Background()
	dir := memory.NewDirectory()
	alice := auth.User{ID: "7f3c", Login: "alice", DisplayName: "Alice"}
	dir.AddUser(alice, "correct horse battery staple")

	key := make([]byte, 32)
	rand.Read(key) // in production: load it from a secret file, never from the database
	m, err := auth.NewManager(memory.NewStore(), dir, &auth.Options{
		Peppers: []auth.Pepper{{ID: "k1", Key: key}},
	})
	if err != nil {
		panic(err)
	}
	defer m.Close()

	// The person creates an app password for their phone; it is shown once.
	ap, secret, err := m.IssueAppPassword(ctx, &alice, auth.IssueRequest{Name: "My iPhone"})
	if err != nil {
		panic(err)
	}
	fmt.Println("created:", ap.Name, len(secret) > 0)

	// The phone's DAV client sends it with every request.
	p, err := m.Authenticate(ctx, auth.Attempt{Username: "alice", Password: secret})
	fmt.Println("phone:", p.User.Login, p.Method, err)

	// The account password does not work for DAV.
	_, err = m.Authenticate(ctx, auth.Attempt{Username: "alice", Password: "correct horse battery staple"})
	fmt.Println("account password:", errors.Is(err, auth.ErrInvalidCredentials))

	// The phone is lost: revoke its password.
	m.RevokeAppPassword(ctx, alice.ID, ap.ID)
	_, err = m.Authenticate(ctx, auth.Attempt{Username: "alice", Password: secret})
	fmt.Println("after revoke:", err)
	// Output:
	// created: My iPhone true
	// phone: alice app_password <nil>
	// account password: true
	// after revoke: auth: invalid credentials
}

func ExampleManager_ListAppPasswords() {
	ctx := context.Background()
	dir := memory.NewDirectory()
	bob := auth.User{ID: "b0b", Login: "bob"}
	dir.AddUser(bob, "")
	m, _ := auth.NewManager(memory.NewStore(), dir, &auth.Options{
		Peppers: []auth.Pepper{{ID: "k1", Key: []byte("an example key of at least 32 bytes!")}},
	})
	defer m.Close()
	m.IssueAppPassword(ctx, &bob, auth.IssueRequest{Name: "Laptop"})
	m.IssueAppPassword(ctx, &bob, auth.IssueRequest{Name: "Phone", Scopes: []string{auth.ScopeCalendars, auth.ScopeContacts}})

	list, _ := m.ListAppPasswords(ctx, bob.ID)
	for _, ap := range list {
		fmt.Printf("%s scopes=%v never used=%v hint=%d chars\n", ap.Name, ap.Scopes, ap.LastUsedAt.IsZero(), len(ap.Hint))
	}
	// Output:
	// Laptop scopes=[] never used=true hint=4 chars
	// Phone scopes=[calendars contacts] never used=true hint=4 chars
}

func ExamplePrincipal_HasScope() {
	p := &auth.Principal{Scopes: []string{auth.ScopeCalendars}}
	fmt.Println(p.HasScope(auth.ScopeCalendars), p.HasScope(auth.ScopeFiles))
	// Output: true false
}
