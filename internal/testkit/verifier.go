package testkit

import (
	"context"
	"sync/atomic"

	"github.com/appauth/appauth/auth"
)

// Verifier wraps an [auth.PasswordVerifier], counting calls and failing on
// demand. It is safe for concurrent use.
type Verifier struct {
	auth.PasswordVerifier

	// Calls counts VerifyPassword calls, failed ones included.
	Calls atomic.Int64

	fail failure
}

// NewVerifier returns a Verifier wrapping v.
func NewVerifier(v auth.PasswordVerifier) *Verifier { return &Verifier{PasswordVerifier: v} }

// Fail makes VerifyPassword return err from now on, without asking the
// wrapped verifier; Fail(nil) ends the outage.
func (v *Verifier) Fail(err error) { v.fail.set(err) }

// VerifyPassword implements [auth.PasswordVerifier].
func (v *Verifier) VerifyPassword(ctx context.Context, login, password string) (*auth.User, error) {
	v.Calls.Add(1)
	if err := v.fail.get(); err != nil {
		return nil, err
	}
	return v.PasswordVerifier.VerifyPassword(ctx, login, password)
}
