package htpasswd

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/internal/benchpair"
)

// BenchmarkVerifyPasswordUnknownLogin compares a wrong password for a
// known login (the baseline) with an unknown login, which is checked
// against a decoy entry's hash: the ratio should be about 1 (promise 4).
// bcrypt cost 10, as in production.
func BenchmarkVerifyPasswordUnknownLogin(b *testing.B) {
	h, err := bcrypt.GenerateFromPassword([]byte("right"), bcrypt.DefaultCost)
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "htpasswd")
	if err := os.WriteFile(path, []byte("alice:"+string(h)+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	d, err := Open(path, nil)
	if err != nil {
		b.Fatal(err)
	}
	wrong := func(login string) func() error {
		return func() error {
			if _, err := d.VerifyPassword(b.Context(), login, "wrong"); !errors.Is(err, auth.ErrInvalidCredentials) {
				return err
			}
			return nil
		}
	}
	benchpair.Run(b, func() (benchpair.Pair, error) {
		return benchpair.Pair{Baseline: wrong("alice"), Subject: wrong("nobody")}, nil
	})
}
