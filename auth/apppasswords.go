package auth

import (
	"context"
	"fmt"
	"hash/maphash"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/appauth/appauth/internal/token"
)

// Scope names are short lowercase words; an embedding server defines its own.
const (
	maxScopes   = 16
	maxScopeLen = 64
)

// IssueAppPassword creates an app password for user and returns it with its
// secret. The secret is shown to the user once and cannot be recovered.
func (m *Manager) IssueAppPassword(ctx context.Context, user *User, req IssueRequest) (*AppPassword, string, error) {
	if err := checkUser(user); err != nil {
		return nil, "", err
	}
	name, err := m.checkName(req.Name)
	if err != nil {
		return nil, "", err
	}
	scopes, err := checkScopes(req.Scopes)
	if err != nil {
		return nil, "", err
	}
	now := m.now()
	if !req.ExpiresAt.IsZero() && !req.ExpiresAt.After(now) {
		return nil, "", invalidInput("expiry must be in the future")
	}
	// Count and insert under the user's lock, so that parallel requests
	// cannot pass the limit together (on this server; several servers can
	// pass it by at most one each).
	unlock := m.lockUser(user.ID)
	defer unlock()
	existing, err := m.store.ListCredentials(ctx, user.ID, KindAppPassword)
	if err != nil {
		return nil, "", fmt.Errorf("auth: issue app password: %w", err)
	}
	if len(existing) >= m.opts.MaxAppPasswords {
		return nil, "", invalidInput("at most %d app passwords per user; revoke one first", m.opts.MaxAppPasswords)
	}
	cred := &StoredCredential{
		Kind: KindAppPassword, UserID: user.ID, Login: user.Login, Name: name, Scopes: scopes,
		CreatedAt: now, ExpiresAt: req.ExpiresAt.UTC(),
	}
	secret, err := m.create(ctx, m.appCodec, cred)
	if err != nil {
		return nil, "", fmt.Errorf("auth: issue app password: %w", err)
	}
	m.emit(ctx, Event{Type: EventIssued, Time: now, Kind: KindAppPassword, UserID: user.ID, Login: user.Login, CredentialID: cred.ID,
		Name: name, RemoteAddr: req.RemoteAddr, UserAgent: req.UserAgent})
	return m.toAppPassword(cred), secret, nil
}

// lockUser serializes issuing for one user; users share a fixed set of
// locks, so memory stays bounded.
func (m *Manager) lockUser(userID string) (unlock func()) {
	mu := &m.userLocks[maphash.String(m.lockSeed, userID)%uint64(len(m.userLocks))]
	mu.Lock()
	return mu.Unlock
}

// create fills in cred's ID, hash and hint from a new secret of codec's
// format, stores it and returns the secret in display form.
func (m *Manager) create(ctx context.Context, codec *token.Codec, cred *StoredCredential) (string, error) {
	if !m.peppersChecked.Load() {
		// Never issue under a key that does not match the stored ones.
		if err := m.Check(ctx); err != nil {
			return "", fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	secret, err := codec.Generate()
	if err != nil {
		return "", err
	}
	var buf tokenBuf
	canonical, err := codec.AppendNormalized(buf[:0], secret)
	if err != nil {
		return "", err
	}
	var key hashKey
	m.macKeys[m.newest()].sum(&key, canonical)
	cred.ID = newID()
	cred.Hash = key[:]
	cred.KeyID = m.opts.Peppers[m.newest()].ID
	cred.Hint = token.Hint(canonical)
	if err := m.store.CreateCredential(ctx, cred); err != nil {
		return "", err
	}
	return secret, nil
}

// ListAppPasswords returns userID's app passwords, oldest first.
func (m *Manager) ListAppPasswords(ctx context.Context, userID string) ([]*AppPassword, error) {
	creds, err := m.store.ListCredentials(ctx, userID, KindAppPassword)
	if err != nil {
		return nil, fmt.Errorf("auth: list app passwords: %w", err)
	}
	out := make([]*AppPassword, len(creds))
	for i, c := range creds {
		m.withPendingUsage(c)
		out[i] = m.toAppPassword(c)
	}
	return out, nil
}

// withPendingUsage shows a use that is queued but not yet written.
func (m *Manager) withPendingUsage(c *StoredCredential) {
	if u, ok := m.usage.peek(c.ID); ok && u.At.After(c.LastUsedAt) {
		c.LastUsedAt, c.LastUsedAddr, c.LastUsedClient = u.At, u.Addr, u.Client
	}
}

// RenameAppPassword renames userID's app password id. Another user's or an
// unknown id is ErrNotFound.
func (m *Manager) RenameAppPassword(ctx context.Context, userID, id, name string) (*AppPassword, error) {
	name, err := m.checkName(name)
	if err != nil {
		return nil, err
	}
	cred, err := m.owned(ctx, userID, id, KindAppPassword)
	if err != nil {
		return nil, fmt.Errorf("auth: rename app password: %w", err)
	}
	cred.Name = name
	if err := m.store.UpdateCredential(ctx, cred); err != nil {
		return nil, fmt.Errorf("auth: rename app password: %w", err)
	}
	m.cache.invalidate(userID, id)
	m.emit(ctx, Event{Type: EventRenamed, Time: m.now(), Kind: KindAppPassword, UserID: userID, Login: cred.Login, CredentialID: id})
	m.withPendingUsage(cred)
	return m.toAppPassword(cred), nil
}

// RevokeAppPassword deletes userID's app password id. Once it returns, the
// password no longer works on this Manager. Another user's or an unknown id
// is ErrNotFound.
func (m *Manager) RevokeAppPassword(ctx context.Context, userID, id string) error {
	return m.revoke(ctx, userID, id, KindAppPassword)
}

// RevokeAllAppPasswords deletes all of userID's app passwords and returns how
// many there were.
func (m *Manager) RevokeAllAppPasswords(ctx context.Context, userID string) (int, error) {
	return m.revokeAll(ctx, userID, KindAppPassword, "")
}

func (m *Manager) revoke(ctx context.Context, userID, id string, kind Kind) error {
	cred, err := m.owned(ctx, userID, id, kind)
	if err != nil {
		return fmt.Errorf("auth: revoke %s: %w", kind, err)
	}
	err = m.store.DeleteCredential(ctx, userID, id)
	// Invalidate even on error: the delete may have happened before a
	// connection dropped.
	m.cache.invalidate(userID, id)
	if err != nil {
		return fmt.Errorf("auth: revoke %s: %w", kind, err)
	}
	m.emit(ctx, Event{Type: EventRevoked, Time: m.now(), Kind: kind, UserID: userID, Login: cred.Login, CredentialID: id, Count: 1})
	return nil
}

func (m *Manager) revokeAll(ctx context.Context, userID string, kind Kind, except string) (int, error) {
	n, err := m.store.DeleteCredentials(ctx, userID, kind, except)
	m.cache.invalidate(userID)
	if err != nil {
		return n, fmt.Errorf("auth: revoke all %ss: %w", kind, err)
	}
	m.emit(ctx, Event{Type: EventRevoked, Time: m.now(), Kind: kind, UserID: userID, Count: n})
	return n, nil
}

// owned returns userID's credential id of kind, or ErrNotFound.
func (m *Manager) owned(ctx context.Context, userID, id string, kind Kind) (*StoredCredential, error) {
	cred, err := m.store.Credential(ctx, userID, id)
	if err != nil {
		return nil, err
	}
	if cred.Kind != kind || cred.UserID != userID {
		return nil, ErrNotFound
	}
	return cred, nil
}

func (m *Manager) toAppPassword(c *StoredCredential) *AppPassword {
	a := &AppPassword{
		ID: c.ID, UserID: c.UserID, Login: c.Login, Name: c.Name, Scopes: c.Scopes, Hint: c.Hint,
		CreatedAt: c.CreatedAt, LastUsedAt: c.LastUsedAt, LastUsedAddr: c.LastUsedAddr,
		LastUsedClient: c.LastUsedClient, ExpiresAt: c.ExpiresAt,
	}
	if m.opts.ExpireUnusedAfter > 0 {
		last := c.CreatedAt
		if c.LastUsedAt.After(last) {
			last = c.LastUsedAt
		}
		a.UnusedExpiresAt = last.Add(m.opts.ExpireUnusedAfter)
	}
	return a
}

func checkUser(u *User) error {
	if u == nil || u.ID == "" || u.Login == "" {
		return invalidInput("user with an ID and a login required")
	}
	if u.Disabled {
		return fmt.Errorf("auth: user %q is disabled: %w", u.Login, ErrInvalidCredentials)
	}
	return nil
}

// checkName trims name and refuses an empty, over-long or unprintable one.
func (m *Manager) checkName(name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", invalidInput("name is empty")
	case !utf8.ValidString(name):
		return "", invalidInput("name is not valid UTF-8")
	case utf8.RuneCountInString(name) > m.opts.MaxNameLength:
		return "", invalidInput("name is longer than %d characters", m.opts.MaxNameLength)
	case strings.ContainsFunc(name, unicode.IsControl):
		return "", invalidInput("name contains control characters")
	}
	return name, nil
}

// checkScopes returns scopes sorted and without duplicates, or an error for
// a malformed one.
func checkScopes(scopes []string) ([]string, error) {
	if len(scopes) == 0 {
		return nil, nil
	}
	if len(scopes) > maxScopes {
		return nil, invalidInput("at most %d scopes", maxScopes)
	}
	for _, s := range scopes {
		if s == "" || len(s) > maxScopeLen || strings.ContainsFunc(s, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' || r == ':')
		}) {
			return nil, invalidInput("scope %q: want 1-%d characters of [a-z0-9._:-]", s, maxScopeLen)
		}
	}
	out := slices.Clone(scopes)
	slices.Sort(out)
	return slices.Compact(out), nil
}
