package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/appauth/appauth/internal/safetext"
)

// CreateSession starts a browser session for user, who has just entered the
// account password (the caller checked it with a [PasswordVerifier]). It
// returns the session and its secret, for a cookie.
func (m *Manager) CreateSession(ctx context.Context, user *User, remoteAddr, userAgent string) (*Session, string, error) {
	return m.createSession(ctx, user, Federation{}, time.Time{}, remoteAddr, userAgent)
}

// maxFederationLen bounds each of a [Federation]'s values (a provider's
// issuer URL, subject and session ID are short; OIDC caps sub at 255).
const maxFederationLen = 1024

// CreateFederatedSession starts a browser session for user, who has just
// signed in through the identity provider account f (the caller verified
// the provider's ID token and looked user up in the [Directory]).
// authTime is when the provider authenticated the person (the ID token's
// auth_time), which may be long before now after a silent single sign-on:
// it becomes the session's AuthenticatedAt, which decides what counts as
// a recent sign-in. A zero authTime means unknown (never recent); one
// after now counts as now. f.Issuer and f.Subject are required.
func (m *Manager) CreateFederatedSession(ctx context.Context, user *User, f Federation, authTime time.Time, remoteAddr, userAgent string) (*Session, string, error) {
	if f.Issuer == "" || f.Subject == "" || len(f.Issuer) > maxFederationLen || len(f.Subject) > maxFederationLen || len(f.SID) > maxFederationLen {
		return nil, "", fmt.Errorf("auth: create session: %w: the federation needs an issuer and a subject of at most %d bytes", ErrInvalidInput, maxFederationLen)
	}
	if authTime.IsZero() {
		authTime = time.Unix(0, 0)
	}
	return m.createSession(ctx, user, f, authTime, remoteAddr, userAgent)
}

// createSession starts a session; a zero authTime is now.
func (m *Manager) createSession(ctx context.Context, user *User, f Federation, authTime time.Time, remoteAddr, userAgent string) (*Session, string, error) {
	if err := checkUser(user); err != nil {
		return nil, "", err
	}
	now := m.now()
	if authTime.IsZero() || authTime.After(now) {
		authTime = now
	}
	cred := &StoredCredential{
		Kind: KindSession, UserID: user.ID, Login: user.Login, Name: safetext.Truncate(userAgent, maxClientInfoLen),
		CreatedAt: now, AuthenticatedAt: authTime.UTC().Truncate(time.Microsecond), ExpiresAt: now.Add(m.opts.SessionLifetime),
		LastUsedAt: now, LastUsedAddr: safetext.Truncate(remoteAddr, maxClientInfoLen), LastUsedClient: safetext.Truncate(userAgent, maxClientInfoLen),
		Federation: f,
	}
	// Count and insert under the user's lock, like app passwords.
	unlock := m.lockUser(user.ID)
	defer unlock()
	if err := m.trimSessions(ctx, user.ID, m.opts.MaxSessions-1); err != nil {
		return nil, "", fmt.Errorf("auth: create session: %w", err)
	}
	secret, err := m.create(ctx, m.sessionCodec, cred)
	if err != nil {
		return nil, "", fmt.Errorf("auth: create session: %w", err)
	}
	m.emit(ctx, Event{Type: EventIssued, Time: now, Kind: KindSession, UserID: user.ID, Login: user.Login,
		CredentialID: cred.ID, RemoteAddr: remoteAddr, UserAgent: userAgent})
	return toSession(cred), secret, nil
}

// trimSessions signs out userID's least recently used sessions until at
// most keep are left.
func (m *Manager) trimSessions(ctx context.Context, userID string, keep int) error {
	creds, err := m.store.ListCredentials(ctx, userID, KindSession)
	if err != nil || len(creds) <= keep {
		return err
	}
	for _, c := range creds {
		m.withPendingUsage(c)
	}
	slices.SortStableFunc(creds, func(a, b *StoredCredential) int { return a.LastUsedAt.Compare(b.LastUsedAt) })
	for _, c := range creds[:len(creds)-keep] {
		err := m.store.DeleteCredential(ctx, userID, c.ID)
		m.cache.invalidate(userID, c.ID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		m.emit(ctx, Event{Type: EventRevoked, Time: m.now(), Kind: KindSession, UserID: userID, Login: c.Login,
			CredentialID: c.ID, Count: 1, Reason: "session_limit"})
	}
	return nil
}

// AuthenticateSession verifies a session secret from a cookie. It returns
// ErrInvalidCredentials for an unknown, revoked, expired or idle session or a
// disabled owner, and ErrUnavailable when the store or directory cannot answer.
func (m *Manager) AuthenticateSession(ctx context.Context, secret, remoteAddr, userAgent string) (*Principal, error) {
	c := Attempt{Password: secret, RemoteAddr: remoteAddr, UserAgent: userAgent}
	c.clip()
	now, start := m.verifyNow()
	fail := Event{Type: EventFailed, Time: now, Kind: KindSession, RemoteAddr: c.RemoteAddr, UserAgent: c.UserAgent,
		start: start}
	var buf tokenBuf
	e, err := m.verify(ctx, &buf, KindSession, c, &fail, nil)
	if err != nil {
		return nil, err
	}
	cred := e.cred
	fail.Login = cred.Login
	ue, err := m.owner(ctx, cred, &fail)
	if err != nil {
		return nil, err
	}
	m.touchEvery(e, &c, fail.Time.UnixNano(), m.sessionUseInterval())
	return &Principal{User: *ue.user, Method: MethodSession, CredentialID: cred.ID, AuthTime: cred.AuthenticatedAt, Federation: cred.Federation}, nil
}

// ReauthenticateSession records that the owner of session id has just
// entered the account password again (for actions that need a recent sign-in).
func (m *Manager) ReauthenticateSession(ctx context.Context, userID, id string) error {
	cred, err := m.owned(ctx, userID, id, KindSession)
	if err != nil {
		return fmt.Errorf("auth: reauthenticate session: %w", err)
	}
	cred.AuthenticatedAt = m.now()
	if err := m.store.UpdateCredential(ctx, cred); err != nil {
		return fmt.Errorf("auth: reauthenticate session: %w", err)
	}
	m.cache.invalidate(userID, id)
	return nil
}

// ListSessions returns userID's browser sessions, oldest first.
func (m *Manager) ListSessions(ctx context.Context, userID string) ([]*Session, error) {
	creds, err := m.store.ListCredentials(ctx, userID, KindSession)
	if err != nil {
		return nil, fmt.Errorf("auth: list sessions: %w", err)
	}
	out := make([]*Session, len(creds))
	for i, c := range creds {
		m.withPendingUsage(c)
		out[i] = toSession(c)
	}
	return out, nil
}

// RevokeSession ends userID's session id (signs it out). Another user's or
// an unknown id is ErrNotFound.
func (m *Manager) RevokeSession(ctx context.Context, userID, id string) error {
	return m.revoke(ctx, userID, id, KindSession)
}

// RevokeOtherSessions ends all of userID's sessions except keepID and returns
// how many it ended.
func (m *Manager) RevokeOtherSessions(ctx context.Context, userID, keepID string) (int, error) {
	return m.revokeAll(ctx, userID, KindSession, keepID)
}

// RevokeFederatedSessions ends the browser sessions signed in through the
// identity provider account or session f (back-channel logout): those of
// f.Issuer whose subject is f.Subject and whose provider session is f.SID,
// each compared only when not empty; f.Issuer and at least one of the
// others are required. App passwords are not touched: they are a device's
// offline credential. It returns how many sessions it ended; a store
// without [FederatedSessionFinder] is an error matching
// errors.ErrUnsupported.
func (m *Manager) RevokeFederatedSessions(ctx context.Context, f Federation) (int, error) {
	if f.Issuer == "" || f.Subject == "" && f.SID == "" {
		return 0, fmt.Errorf("auth: revoke federated sessions: %w: an issuer and a subject or session ID are required", ErrInvalidInput)
	}
	creds, ok, err := m.store.federatedSessions(ctx, f)
	if !ok {
		return 0, fmt.Errorf("auth: revoke federated sessions: the store cannot find sessions by federation: %w", errors.ErrUnsupported)
	}
	if err != nil {
		return 0, fmt.Errorf("auth: revoke federated sessions: %w", err)
	}
	n := 0
	for _, c := range creds {
		if c.Kind != KindSession || c.Federation.Issuer != f.Issuer ||
			f.Subject != "" && c.Federation.Subject != f.Subject || f.SID != "" && c.Federation.SID != f.SID {
			continue // a store that matched too much must not sign out others
		}
		err := m.store.DeleteCredential(ctx, c.UserID, c.ID)
		m.cache.invalidate(c.UserID, c.ID)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return n, fmt.Errorf("auth: revoke federated sessions: %w", err)
		}
		n++
		m.emit(ctx, Event{Type: EventRevoked, Time: m.now(), Kind: KindSession, UserID: c.UserID, Login: c.Login,
			CredentialID: c.ID, Count: 1, Reason: "backchannel_logout"})
	}
	return n, nil
}

func toSession(c *StoredCredential) *Session {
	return &Session{
		ID: c.ID, UserID: c.UserID, Login: c.Login, CreatedAt: c.CreatedAt, AuthenticatedAt: c.AuthenticatedAt,
		LastUsedAt: c.LastUsedAt, LastUsedAddr: c.LastUsedAddr, LastUsedClient: c.LastUsedClient, ExpiresAt: c.ExpiresAt,
		Federation: c.Federation,
	}
}
