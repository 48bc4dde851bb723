package memory

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"slices"
	"sync"

	"github.com/appauth/appauth/auth"
)

// Directory is an [auth.Directory] and [auth.PasswordVerifier] of users added
// in code. Logins match in their [auth.CanonicalLogin] form (case and width
// variants are one login). Its zero value is not usable;
// call [NewDirectory].
type Directory struct {
	mu    sync.RWMutex
	key   [32]byte // keys the password hashes, so they are never kept in clear
	users map[string]*dirUser
}

type dirUser struct {
	user auth.User
	hash [sha256.Size]byte
}

var (
	_ auth.Directory        = (*Directory)(nil)
	_ auth.PasswordVerifier = (*Directory)(nil)
)

// NewDirectory returns an empty Directory.
func NewDirectory() *Directory {
	d := &Directory{users: map[string]*dirUser{}}
	rand.Read(d.key[:])
	return d
}

// fold returns login's canonical form, or "" (no user's) for an invalid one.
func fold(login string) string {
	c, err := auth.CanonicalLogin(login)
	if err != nil {
		return ""
	}
	return c
}

func (d *Directory) hash(password string) [sha256.Size]byte {
	m := hmac.New(sha256.New, d.key[:])
	m.Write([]byte(password))
	return [sha256.Size]byte(m.Sum(nil))
}

// AddUser adds or replaces u with the given account password. u.ID and
// u.Login are required; an empty password means the user cannot sign in
// with one.
func (d *Directory) AddUser(u auth.User, password string) error {
	if u.ID == "" || u.Login == "" {
		return fmt.Errorf("memory: add user: %w: ID and Login are required", auth.ErrInvalidInput)
	}
	if fold(u.Login) == "" {
		return fmt.Errorf("memory: add user: %w: Login %q is not a valid login (auth.CanonicalLogin)", auth.ErrInvalidInput, u.Login)
	}
	u.Groups = slices.Clone(u.Groups)
	d.mu.Lock()
	defer d.mu.Unlock()
	e := &dirUser{user: u}
	if password != "" {
		e.hash = d.hash(password)
	}
	d.users[fold(u.Login)] = e
	return nil
}

// SetDisabled disables or enables login.
func (d *Directory) SetDisabled(login string, disabled bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.users[fold(login)]
	if !ok {
		return fmt.Errorf("memory: set disabled: %w", auth.ErrNotFound)
	}
	e.user.Disabled = disabled
	return nil
}

// DeleteUser removes login.
func (d *Directory) DeleteUser(login string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.users[fold(login)]; !ok {
		return fmt.Errorf("memory: delete user: %w", auth.ErrNotFound)
	}
	delete(d.users, fold(login))
	return nil
}

// LookupUser implements [auth.Directory].
func (d *Directory) LookupUser(ctx context.Context, login string) (*auth.User, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	e, ok := d.users[fold(login)]
	if !ok {
		return nil, fmt.Errorf("memory: lookup user: %w", auth.ErrNotFound)
	}
	u := e.user
	u.Groups = slices.Clone(u.Groups)
	return &u, nil
}

// VerifyPassword implements [auth.PasswordVerifier].
func (d *Directory) VerifyPassword(ctx context.Context, login, password string) (*auth.User, error) {
	if password == "" {
		return nil, fmt.Errorf("memory: verify password: %w", auth.ErrInvalidCredentials)
	}
	h := d.hash(password)
	d.mu.RLock()
	e, ok := d.users[fold(login)]
	d.mu.RUnlock()
	if !ok || e.hash == [sha256.Size]byte{} || !hmac.Equal(h[:], e.hash[:]) || e.user.Disabled {
		return nil, fmt.Errorf("memory: verify password: %w", auth.ErrInvalidCredentials)
	}
	return d.LookupUser(ctx, login)
}
