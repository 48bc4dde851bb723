package auth

import (
	"context"

	"github.com/appauth/appauth/internal/token"
)

// appPasswordShape tells app passwords from account passwords; it only
// parses, so it needs no random source.
var appPasswordShape, _ = token.New(appPasswordPrefix)

// LooksLikeAppPassword reports whether s has the shape of an app password
// (its prefix and length, ignoring case and separators), without checking
// the check character or asking any store. Middleware uses it to send an
// account password to a [PasswordVerifier] instead, when that is allowed.
// A mistyped app password still looks like one.
func LooksLikeAppPassword(s string) bool { return appPasswordShape.Looks(s) }

// AuthenticateToken verifies an app password presented alone, without a
// username (an HTTP "Authorization: Bearer" header): the principal is the
// credential's owner. It runs the same verify path as [Manager.Authenticate]
// (format, Limiter, hash, cache, store, expiry, owner) and returns the same
// errors. The Limiter sees the attempt with an empty Username, then, on
// success, Done with the owner's login.
func (m *Manager) AuthenticateToken(ctx context.Context, secret, remoteAddr, userAgent string) (*Principal, error) {
	c := Attempt{Password: secret, RemoteAddr: remoteAddr, UserAgent: userAgent}
	c.clip()
	p, allowed, err := m.appPassword(ctx, &c, false)
	if err == nil {
		c.Username = p.User.Login
	}
	if allowed {
		m.settle(c, err)
	}
	return p, err
}
