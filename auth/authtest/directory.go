package authtest

import (
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/appauth/appauth/auth"
)

// FixtureUser is a user that every directory under test must hold.
type FixtureUser struct {
	Login       string // the login, as the directory spells it
	Password    string // the account password
	DisplayName string // expected User.DisplayName
	Email       string // expected User.Email
	// Groups are all of the user's groups, nested ones resolved, sorted.
	Groups   []string
	Disabled bool // the directory must mark the user disabled
}

// FixtureUsers are the users [RunDirectoryTests] expects, with their
// passwords. In LDAP, "staff" is a member of "everyone", so alice's
// "everyone" comes from a nested group.
var FixtureUsers = []FixtureUser{
	{Login: "alice", Password: "alice-Secret-1", DisplayName: "Alice Liddell", Email: "alice@example.org", Groups: []string{"everyone", "staff"}},
	{Login: "bob", Password: "bob-Secret-2", DisplayName: "Bob Dylan", Email: "bob@example.org", Groups: []string{"everyone"}},
	{Login: "dave", Password: "dave-Secret-4", DisplayName: "Dave Disabled", Email: "dave@example.org", Groups: []string{"everyone"}, Disabled: true},
	{Login: "zoë o'brien", Password: "zoë-Secret-5 (ß)", DisplayName: "Zoë O'Brien", Email: "zoe@example.org", Groups: []string{"everyone"}},
}

// DirectoryFixture is a directory holding [FixtureUsers].
type DirectoryFixture struct {
	// Directory is the directory under test, holding FixtureUsers.
	Directory auth.Directory
	// Verifier checks account passwords; nil if the directory has none.
	Verifier auth.PasswordVerifier
	// NoGroups and NoDisabled say the backend has no groups or no way to
	// disable a user; those checks are skipped.
	NoGroups, NoDisabled bool
	// NoDisplayInfo says the backend has no display names or emails.
	NoDisplayInfo bool
}

// hostileLogins must never match a user: filter metacharacters, wildcards,
// control characters, and logins that are too long.
var hostileLogins = []string{"", "*", "a*", "*)(uid=*", "alice)(|(uid=*", "alice*", "al*ce", `alice\`, `\2a`, "alice\x00", "(alice)", "alice)", " alice", string(make([]byte, 1024))}

// RunDirectoryTests runs the [auth.Directory] and [auth.PasswordVerifier]
// conformance suite. Logins must match case-insensitively; the returned
// User.Login is the directory's spelling.
func RunDirectoryTests(t *testing.T, newFixture func(t *testing.T) DirectoryFixture) {
	t.Run("Lookup", func(t *testing.T) {
		f := newFixture(t)
		for _, fu := range FixtureUsers {
			if fu.Disabled && f.NoDisabled {
				continue
			}
			u, err := f.Directory.LookupUser(t.Context(), fu.Login)
			if err != nil {
				t.Fatalf("LookupUser(%q): %v", fu.Login, err)
			}
			checkUser(t, f, u, fu)
			again, err := f.Directory.LookupUser(t.Context(), fu.Login)
			if err != nil || again.ID != u.ID {
				t.Errorf("ID of %q is not stable: %q then %q (%v)", fu.Login, u.ID, again.ID, err)
			}
		}
	})
	t.Run("LoginCase", func(t *testing.T) {
		f := newFixture(t)
		a, err := f.Directory.LookupUser(t.Context(), "alice")
		if err != nil {
			t.Fatal(err)
		}
		for _, login := range []string{"ALICE", "Alice", "aLiCe"} {
			u, err := f.Directory.LookupUser(t.Context(), login)
			if err != nil || u.ID != a.ID || u.Login != "alice" {
				t.Errorf("LookupUser(%q) = %+v, %v; want alice", login, u, err)
			}
		}
	})
	t.Run("Unknown", func(t *testing.T) {
		f := newFixture(t)
		for _, login := range append([]string{"nobody", "alic", "alicee"}, hostileLogins...) {
			u, err := f.Directory.LookupUser(t.Context(), login)
			if !errors.Is(err, auth.ErrNotFound) {
				t.Errorf("LookupUser(%q) = %+v, %v; want ErrNotFound", login, u, err)
			}
		}
	})
	t.Run("Disabled", func(t *testing.T) {
		f := newFixture(t)
		if f.NoDisabled {
			t.Log("backend has no disabled users")
			return
		}
		u, err := f.Directory.LookupUser(t.Context(), "dave")
		if err != nil || !u.Disabled {
			t.Errorf("LookupUser(dave) = %+v, %v; want Disabled", u, err)
		}
		if u, err := f.Directory.LookupUser(t.Context(), "alice"); err != nil || u.Disabled {
			t.Errorf("alice is disabled: %+v, %v", u, err)
		}
	})
	t.Run("VerifyPassword", func(t *testing.T) {
		f := newFixture(t)
		if f.Verifier == nil {
			t.Log("backend verifies no passwords")
			return
		}
		ctx := t.Context()
		for _, fu := range FixtureUsers {
			u, err := f.Verifier.VerifyPassword(ctx, fu.Login, fu.Password)
			if fu.Disabled {
				if !f.NoDisabled && !errors.Is(err, auth.ErrInvalidCredentials) {
					t.Errorf("disabled %q signed in: %+v, %v", fu.Login, u, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("VerifyPassword(%q): %v", fu.Login, err)
			}
			checkUser(t, f, u, fu)
		}
		denied := map[string][2]string{
			"wrong password":         {"alice", "alice-Secret-2"},
			"another user's":         {"alice", "bob-Secret-2"},
			"empty password":         {"alice", ""},
			"empty both":             {"", ""},
			"unknown user":           {"nobody", "alice-Secret-1"},
			"password case":          {"alice", "ALICE-SECRET-1"},
			"password prefix":        {"alice", "alice-Secret-"},
			"password with NUL":      {"alice", "alice-Secret-1\x00"},
			"wildcard user":          {"*", "alice-Secret-1"},
			"injected user":          {"alice)(|(uid=*", "alice-Secret-1"},
			"wildcard both":          {"*", "*"},
			"wildcard password":      {"alice", "*"},
			"long password":          {"alice", string(make([]byte, 1<<20))},
			"trailing space in user": {"alice ", "alice-Secret-1x"},
		}
		for name, lp := range denied {
			u, err := f.Verifier.VerifyPassword(ctx, lp[0], lp[1])
			if !errors.Is(err, auth.ErrInvalidCredentials) {
				t.Errorf("%s: VerifyPassword(%q) = %+v, %v; want ErrInvalidCredentials", name, lp[0], u, err)
			}
		}
	})
	t.Run("Concurrency", func(t *testing.T) {
		f := newFixture(t)
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				fu := FixtureUsers[i%2]
				for range 10 {
					if _, err := f.Directory.LookupUser(t.Context(), fu.Login); err != nil {
						t.Error(err)
						return
					}
					if f.Verifier != nil {
						if _, err := f.Verifier.VerifyPassword(t.Context(), fu.Login, fu.Password); err != nil {
							t.Error(err)
							return
						}
					}
				}
			}()
		}
		wg.Wait()
	})
}

func checkUser(t *testing.T, f DirectoryFixture, u *auth.User, want FixtureUser) {
	t.Helper()
	if u.ID == "" || u.Login != want.Login || u.Disabled != want.Disabled {
		t.Errorf("user %+v, want login %q disabled=%v and an ID", u, want.Login, want.Disabled)
	}
	if !f.NoDisplayInfo && (u.DisplayName != want.DisplayName || u.Email != want.Email) {
		t.Errorf("%q: display name %q email %q; want %q %q", want.Login, u.DisplayName, u.Email, want.DisplayName, want.Email)
	}
	if !f.NoGroups {
		got := slices.Clone(u.Groups)
		slices.Sort(got)
		if !slices.Equal(got, want.Groups) {
			t.Errorf("%q: groups %v, want %v", want.Login, got, want.Groups)
		}
	}
}
