package settings

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/appauth/appauth/auth"
)

// session is the signed-in person of a request.
type session struct {
	p      *auth.Principal // p.CredentialID is the session's ID
	secret string          // the cookie value
	csrf   string
}

func (s *session) id() string     { return s.p.CredentialID }
func (s *session) userID() string { return s.p.User.ID }

// errNoSession means the request carries no valid session cookie.
var errNoSession = errors.New("settings: not signed in")

// currentSession authenticates the session cookie. It returns errNoSession
// when there is none or it is not valid (any more), and an error matching
// auth.ErrUnavailable when the store or directory cannot tell.
func (h *Handler) currentSession(r *http.Request) (*session, error) {
	c, err := r.Cookie(h.opts.CookieName)
	if err != nil || c.Value == "" || len(c.Value) > maxSecretBytes {
		return nil, errNoSession
	}
	p, err := h.m.AuthenticateSession(r.Context(), c.Value, h.clientAddr(r), r.UserAgent())
	switch {
	case errors.Is(err, auth.ErrUnavailable):
		return nil, err
	case err != nil:
		return nil, errNoSession
	}
	return &session{p: p, secret: c.Value, csrf: csrfToken(c.Value)}, nil
}

// csrfToken derives the session's CSRF token from its secret: a keyed hash,
// so it reveals nothing about the secret, needs no storage, and holds on
// every server that shares the session store.
func csrfToken(secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("appauth/settings csrf v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// validCSRF compares a presented token with the session's in constant time.
func (s *session) validCSRF(token string) bool {
	return token != "" && hmac.Equal([]byte(token), []byte(s.csrf))
}

// recent reports whether the account password was entered within RecentAuth.
func (h *Handler) recent(s *session) bool {
	return h.opts.Now().Sub(s.p.AuthTime) < h.opts.RecentAuth
}

// Errors of a password check, besides the auth sentinels.
var (
	errEmptyCredentials = errors.New("enter your username and password")
	errWrongUser        = fmt.Errorf("settings: password of another user: %w", auth.ErrInvalidCredentials)
	errNoPasswordSignIn = fmt.Errorf("settings: password sign-in is turned off (single sign-on only): %w", auth.ErrInvalidCredentials)
)

// checkPassword verifies login's account password through the Manager's
// one account-password path (Limiter, audit events). Errors match
// auth.ErrInvalidCredentials, auth.ErrThrottled (a *auth.ThrottleError when
// the Limiter gives a delay), auth.ErrUnavailable or errEmptyCredentials.
func (h *Handler) checkPassword(r *http.Request, login, password string) (*auth.User, error) {
	if h.verifier == nil {
		return nil, errNoPasswordSignIn
	}
	if login == "" || password == "" {
		return nil, errEmptyCredentials
	}
	c := auth.Attempt{Username: login, Password: password, RemoteAddr: h.clientAddr(r), UserAgent: r.UserAgent()}
	p, err := h.m.VerifyAccountPassword(r.Context(), h.verifier, c)
	if err != nil {
		return nil, err
	}
	return &p.User, nil
}

// signIn checks the account password and starts a new session, setting
// its cookie. A session the request already carries, of this user or
// another, is ended: a cookie set before the sign-in never survives it.
func (h *Handler) signIn(w http.ResponseWriter, r *http.Request, login, password string) (*auth.User, *session, error) {
	u, err := h.checkPassword(r, login, password)
	if err != nil {
		return nil, nil, err
	}
	cur, err := h.currentSession(r)
	if err != nil && !errors.Is(err, errNoSession) {
		return nil, nil, err
	}
	s, err := h.replaceSession(w, r, u, cur)
	if err != nil {
		return nil, nil, err
	}
	return u, s, nil
}

// reauthenticate checks the signed-in person's account password again, for
// actions that need a recent sign-in, and replaces s with a new session:
// a copy of the old cookie (a stolen one) does not gain the recent sign-in.
func (h *Handler) reauthenticate(w http.ResponseWriter, r *http.Request, s *session, password string) error {
	u, err := h.checkPassword(r, s.p.User.Login, password)
	if err != nil {
		return err
	}
	if u.ID != s.userID() {
		return errWrongUser
	}
	next, err := h.replaceSession(w, r, u, s)
	if err != nil {
		return err
	}
	*s = *next
	return nil
}

// replaceSession starts a session for u, who has just entered the account
// password, sets its cookie, and ends old (if not nil).
func (h *Handler) replaceSession(w http.ResponseWriter, r *http.Request, u *auth.User, old *session) (*session, error) {
	ctx := r.Context()
	sess, secret, err := h.m.CreateSession(ctx, u, h.clientAddr(r), r.UserAgent())
	if err != nil {
		return nil, err
	}
	h.setCookie(w, r, secret, sess.ExpiresAt)
	if old != nil {
		// Also when the client has gone away: a copy of the old cookie
		// must not survive the sign-in (the Manager bounds the call).
		if err := h.m.RevokeSession(context.WithoutCancel(ctx), old.userID(), old.id()); err != nil && !errors.Is(err, auth.ErrNotFound) {
			h.log.WarnContext(ctx, "end the session replaced by a sign-in", "error", err)
		}
	}
	p := &auth.Principal{User: *u, Method: auth.MethodSession, CredentialID: sess.ID, AuthTime: sess.AuthenticatedAt}
	return &session{p: p, secret: secret, csrf: csrfToken(secret)}, nil
}

// signOut ends the session on the server and clears its cookie.
func (h *Handler) signOut(ctx context.Context, w http.ResponseWriter, r *http.Request, s *session) error {
	// Keep the cookie when the session could not be ended: it still works,
	// and the person should see that and try again.
	if err := h.m.RevokeSession(ctx, s.userID(), s.id()); err != nil && !errors.Is(err, auth.ErrNotFound) {
		return err
	}
	h.clearCookie(w, r)
	return nil
}

func (h *Handler) setCookie(w http.ResponseWriter, r *http.Request, secret string, expires time.Time) {
	http.SetCookie(w, &http.Cookie{
		Name: h.opts.CookieName, Value: secret, Path: h.opts.Prefix, Expires: expires,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: h.secure(r),
	})
}

func (h *Handler) clearCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: h.opts.CookieName, Value: "", Path: h.opts.Prefix, MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: h.secure(r),
	})
}

// secure reports whether the session cookie gets the Secure attribute.
func (h *Handler) secure(r *http.Request) bool {
	if h.opts.Secure != nil {
		return *h.opts.Secure
	}
	return h.opts.ClientAddr.Secure(r)
}

// clientAddr returns the address of the client.
func (h *Handler) clientAddr(r *http.Request) string { return h.opts.ClientAddr.Addr(r) }
