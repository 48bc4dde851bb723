package authtest_test

import (
	"fmt"
	"testing"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/authtest"
	"github.com/appauth/appauth/backends/memory"
)

// A backend's store test is a few lines: open an empty store per test, and
// let the suite check the whole auth.Store contract. Write it as
//
//	func TestStore(t *testing.T) { authtest.RunStoreTests(t, newStore) }
//
// in the backend's own _test.go file. (Not run: it needs a *testing.T.)
func ExampleRunStoreTests() {
	newStore := func(t *testing.T) (auth.Store, func() auth.Store) {
		// A persistent store would open a fresh database here, close it in
		// t.Cleanup, and return a function that reopens the same database.
		return memory.NewStore(), nil
	}
	_ = func(t *testing.T) { authtest.RunStoreTests(t, newStore) }
}

// A directory test fills the directory with FixtureUsers and says what the
// backend cannot do. (Not run: it needs a *testing.T.)
func ExampleRunDirectoryTests() {
	newFixture := func(t *testing.T) authtest.DirectoryFixture {
		d := memory.NewDirectory()
		for i, u := range authtest.FixtureUsers {
			user := auth.User{ID: fmt.Sprint("id-", i), Login: u.Login, DisplayName: u.DisplayName, Email: u.Email, Groups: u.Groups, Disabled: u.Disabled}
			if err := d.AddUser(user, u.Password); err != nil {
				t.Fatal(err)
			}
		}
		return authtest.DirectoryFixture{Directory: d, Verifier: d}
	}
	_ = func(t *testing.T) { authtest.RunDirectoryTests(t, newFixture) }
}
