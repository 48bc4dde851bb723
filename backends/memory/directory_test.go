package memory_test

import (
	"fmt"
	"testing"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/authtest"
	"github.com/appauth/appauth/backends/memory"
)

func TestDirectory(t *testing.T) {
	authtest.RunDirectoryTests(t, func(t *testing.T) authtest.DirectoryFixture {
		d := memory.NewDirectory()
		for i, fu := range authtest.FixtureUsers {
			u := auth.User{ID: fmt.Sprint("id-", i), Login: fu.Login, DisplayName: fu.DisplayName, Email: fu.Email, Groups: fu.Groups, Disabled: fu.Disabled}
			if err := d.AddUser(u, fu.Password); err != nil {
				t.Fatal(err)
			}
		}
		return authtest.DirectoryFixture{Directory: d, Verifier: d}
	})
}
