package testkit

import (
	"bytes"
	"strings"
	"testing"

	"github.com/appauth/appauth/auth"
)

// Pepper returns a fixed, valid pepper (ID "k1") for Managers in tests.
func Pepper() auth.Pepper {
	return auth.Pepper{ID: "k1", Key: bytes.Repeat([]byte("p"), 32)}
}

// NewManager returns an [auth.Manager] on store and dir, closed when the
// test ends; it fails the test if the Manager cannot be made. opts may be
// nil; without Peppers it gets [Pepper]. opts itself is not changed.
func NewManager(t testing.TB, store auth.Store, dir auth.Directory, opts *auth.Options) *auth.Manager {
	t.Helper()
	var o auth.Options
	if opts != nil {
		o = *opts
	}
	if len(o.Peppers) == 0 {
		o.Peppers = []auth.Pepper{Pepper()}
	}
	m, err := auth.NewManager(store, dir, &o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// Typo returns s with its last character replaced by another one, '2' or
// '3' (both in the token alphabet, and without case): a secret that differs
// from s in exactly one character and is never equal to s, in any case. s
// must not be empty.
func Typo(s string) string {
	if strings.HasSuffix(s, "2") {
		return s[:len(s)-1] + "3"
	}
	return s[:len(s)-1] + "2"
}
