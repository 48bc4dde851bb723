package auth

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// KindAccountPassword marks [Event]s about account (directory) passwords.
// No [StoredCredential] has it: account passwords are never stored.
const KindAccountPassword Kind = "account_password"

// maxAccountPasswordLen bounds a presented account password; longer ones
// are refused before the Limiter and the directory see them.
const maxAccountPasswordLen = 1024

// passwordCheckWait bounds how long an account-password check waits for
// one of the [Options].MaxPasswordChecks slots when the context allows
// longer.
const passwordCheckWait = 5 * time.Second

// errBusy is the outage of a server whose password checks are all taken.
var errBusy = fmt.Errorf("%w: too many account-password checks in progress", ErrUnavailable)

// VerifyAccountPassword checks an account (directory) password with v: the
// one path for every edge that accepts account passwords (the sign-in page,
// the JSON API, the Basic-auth middleware when it allows them). It
// canonicalizes the login ([CanonicalLogin]) and gives v that form, asks
// the Limiter first and reports the outcome to it, runs at most
// [Options].MaxPasswordChecks checks at once, and emits the same events as
// app passwords, with Kind [KindAccountPassword]: authenticated, failed
// with a reason, throttled or unavailable.
//
// It returns a principal with Method [MethodAccountPassword] and AuthTime
// now; [ErrInvalidCredentials] for an empty, oversized or invalid login or
// password, a wrong password, an unknown or disabled user; an error
// matching [ErrThrottled] from the Limiter; and [ErrUnavailable] when v
// cannot tell, or when every check slot stayed taken until ctx was done or
// for 5 seconds (an overloaded server is an outage, not the client's fault,
// so it is not counted against the client).
func (m *Manager) VerifyAccountPassword(ctx context.Context, v PasswordVerifier, a Attempt) (*Principal, error) {
	a.clip()
	now, start := m.verifyNow()
	fail := Event{Type: EventFailed, Time: now, Kind: KindAccountPassword, Login: a.Username, RemoteAddr: a.RemoteAddr, UserAgent: a.UserAgent,
		start: start}
	if v == nil {
		return nil, m.unavailable(ctx, fail, "directory", errors.New("auth: VerifyAccountPassword: nil PasswordVerifier"))
	}
	if a.Username == "" || a.Password == "" || len(a.Username) > maxLoginLen || len(a.Password) > maxAccountPasswordLen {
		return nil, m.deny(ctx, fail, "malformed")
	}
	login, loginErr := CanonicalLogin(a.Username)
	l := m.opts.Limiter
	if l != nil {
		if err := l.Allow(ctx, a); err != nil {
			return nil, m.throttled(ctx, fail, err)
		}
	}
	u, err := m.checkAccountPassword(ctx, v, login, loginErr, a.Password)
	reason := ""
	switch {
	case loginErr != nil:
		reason = "invalid_login" // no account can have it: never asked
	case errors.Is(err, ErrInvalidCredentials):
		reason = "wrong_password" // or an unknown user: the verifier does not say
	case err == nil && (u == nil || u.ID == "" || u.Login == ""):
		err = errors.New("auth: PasswordVerifier returned no usable user")
		fallthrough
	case err != nil:
		err = m.unavailable(ctx, fail, "directory", err)
		m.settle(a, err)
		return nil, err
	case u.Disabled:
		reason = "owner_invalid"
	case !SameLogin(u.Login, login):
		reason = "wrong_user" // the directory answered for another login
	}
	if reason != "" {
		err := m.deny(ctx, fail, reason)
		m.settle(a, err)
		return nil, err
	}
	m.settle(a, nil)
	m.emit(ctx, Event{Type: EventAuthenticated, Time: now, Kind: KindAccountPassword, UserID: u.ID, Login: u.Login,
		RemoteAddr: a.RemoteAddr, UserAgent: a.UserAgent, start: fail.start})
	return &Principal{User: *u, Method: MethodAccountPassword, AuthTime: now}, nil
}

// checkAccountPassword asks v within one of the MaxPasswordChecks slots.
func (m *Manager) checkAccountPassword(ctx context.Context, v PasswordVerifier, login string, loginErr error, password string) (*User, error) {
	if loginErr != nil {
		return nil, loginErr
	}
	select {
	case m.checks <- struct{}{}:
	default:
		t := time.NewTimer(passwordCheckWait)
		defer t.Stop()
		select {
		case m.checks <- struct{}{}:
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w", errBusy, ctx.Err())
		case <-t.C:
			return nil, errBusy
		}
	}
	defer func() { <-m.checks }()
	// A hung directory must not hold a check slot for as long as the client
	// waits.
	ctx, cancel := context.WithTimeout(ctx, m.opts.StoreTimeout)
	defer cancel()
	u, err := v.VerifyPassword(ctx, login, password)
	if err != nil && !errors.Is(err, ErrInvalidCredentials) && !errors.Is(err, ErrUnavailable) {
		// An unexpected error: fail closed, as an outage.
		err = fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return u, err
}

// throttled records an attempt the Limiter refused and returns its error,
// as ErrUnavailable when the Limiter could not decide.
func (m *Manager) throttled(ctx context.Context, ev Event, err error) error {
	ev.Type, ev.Err = EventThrottled, err
	if !errors.Is(err, ErrThrottled) {
		ev.Type, err = EventUnavailable, fmt.Errorf("%w: limiter: %w", ErrUnavailable, err)
		ev.Err, ev.Reason = err, "limiter"
	}
	m.emit(ctx, ev)
	return err
}

// HasLimiter reports whether the Manager throttles attempts (it has an
// [Options].Limiter). Edges that accept account passwords over a protocol
// without a person at the keyboard refuse to start without one.
func (m *Manager) HasLimiter() bool { return m.opts.Limiter != nil }
