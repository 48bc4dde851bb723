// Package memory implements [auth.Store], [auth.Directory] and
// [auth.PasswordVerifier] in memory: the reference implementation, and a
// directory of users added in code for tests, examples and documentation.
package memory

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/appauth/appauth/auth"
)

// Store is an [auth.Store] that keeps credentials in memory. Its zero value
// is not usable; call [NewStore].
type Store struct {
	mu     sync.RWMutex
	byID   map[string]*auth.StoredCredential
	byHash map[string]string // hash -> ID
	// byUser indexes IDs by owner, so listing and revoking all of one
	// user's credentials cost that user's count, not the store's.
	byUser map[string]map[string]struct{}
	checks map[string][]byte    // pepper key ID -> check value
	jobs   map[string]time.Time // job name -> last claim (ClaimJob)
	trans  map[string]transient // kind NUL key -> record (TransientStore)
}

var (
	_ auth.Store                  = (*Store)(nil)
	_ auth.ExpiredPurger          = (*Store)(nil)
	_ auth.UnusedPurger           = (*Store)(nil)
	_ auth.PepperRegistry         = (*Store)(nil)
	_ auth.ContextBounded         = (*Store)(nil)
	_ auth.CredentialLister       = (*Store)(nil)
	_ auth.FederatedSessionFinder = (*Store)(nil)
	_ auth.JobClaimer             = (*Store)(nil)
	_ auth.TransientStore         = (*Store)(nil)
)

// NewStore returns an empty Store.
func NewStore() *Store {
	return &Store{byID: map[string]*auth.StoredCredential{}, byHash: map[string]string{}, byUser: map[string]map[string]struct{}{}, checks: map[string][]byte{}}
}

// HonorsContext implements [auth.ContextBounded]: nothing in it waits.
func (s *Store) HonorsContext() bool { return true }

type transient struct {
	value   []byte
	expires time.Time
}

func transientKey(kind string, key []byte) string { return kind + "\x00" + string(key) }

// PutTransient implements [auth.TransientStore].
func (s *Store) PutTransient(ctx context.Context, kind string, key, value []byte, expires, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := transientKey(kind, key)
	if r, ok := s.trans[k]; ok && now.Before(r.expires) {
		return fmt.Errorf("memory: put transient: %w", auth.ErrAlreadyExists)
	}
	if s.trans == nil {
		s.trans = map[string]transient{}
	}
	s.trans[k] = transient{bytes.Clone(value), expires}
	return nil
}

// Transient implements [auth.TransientStore].
func (s *Store) Transient(ctx context.Context, kind string, key []byte, now time.Time) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.trans[transientKey(kind, key)]
	if !ok || !now.Before(r.expires) {
		return nil, fmt.Errorf("memory: transient: %w", auth.ErrNotFound)
	}
	return bytes.Clone(r.value), nil
}

// SwapTransient implements [auth.TransientStore].
func (s *Store) SwapTransient(ctx context.Context, kind string, key, old, value []byte, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := transientKey(kind, key)
	r, ok := s.trans[k]
	if !ok || !now.Before(r.expires) || !bytes.Equal(r.value, old) {
		return fmt.Errorf("memory: swap transient: %w", auth.ErrNotFound)
	}
	s.trans[k] = transient{bytes.Clone(value), r.expires}
	return nil
}

// TakeTransient implements [auth.TransientStore].
func (s *Store) TakeTransient(ctx context.Context, kind string, key []byte, now time.Time) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := transientKey(kind, key)
	r, ok := s.trans[k]
	if !ok || !now.Before(r.expires) {
		return nil, fmt.Errorf("memory: take transient: %w", auth.ErrNotFound)
	}
	delete(s.trans, k)
	return r.value, nil
}

// DeleteExpiredTransients implements [auth.TransientStore].
func (s *Store) DeleteExpiredTransients(ctx context.Context, kind string, now time.Time) ([][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out [][]byte
	prefix := kind + "\x00"
	for k, r := range s.trans {
		if strings.HasPrefix(k, prefix) && !now.Before(r.expires) {
			delete(s.trans, k)
			out = append(out, r.value)
		}
	}
	return out, nil
}

// ClaimJob implements [auth.JobClaimer].
func (s *Store) ClaimJob(ctx context.Context, name string, now time.Time, every time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if last, ok := s.jobs[name]; ok && now.Sub(last) < every {
		return false, nil
	}
	if s.jobs == nil {
		s.jobs = map[string]time.Time{}
	}
	s.jobs[name] = now
	return true, nil
}

// RegisterPepper implements [auth.PepperRegistry].
func (s *Store) RegisterPepper(ctx context.Context, keyID string, check []byte, replace bool) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.checks[keyID]; !ok || replace {
		s.checks[keyID] = bytes.Clone(check)
	}
	return bytes.Clone(s.checks[keyID]), nil
}

// CredentialsByKey implements [auth.PepperRegistry].
func (s *Store) CredentialsByKey(ctx context.Context) (map[string]int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := map[string]int{}
	for _, c := range s.byID {
		out[c.KeyID]++
	}
	return out, nil
}

// CreateCredential implements [auth.Store].
func (s *Store) CreateCredential(ctx context.Context, c *auth.StoredCredential) error {
	if c.ID == "" || len(c.Hash) == 0 || c.UserID == "" {
		return fmt.Errorf("memory: create credential: %w: ID, Hash and UserID are required", auth.ErrInvalidInput)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byID[c.ID]; ok {
		return fmt.Errorf("memory: create credential: %w", auth.ErrAlreadyExists)
	}
	if _, ok := s.byHash[string(c.Hash)]; ok {
		return fmt.Errorf("memory: create credential: %w", auth.ErrAlreadyExists)
	}
	s.byID[c.ID] = clone(c)
	s.byHash[string(c.Hash)] = c.ID
	ids := s.byUser[c.UserID]
	if ids == nil {
		ids = map[string]struct{}{}
		s.byUser[c.UserID] = ids
	}
	ids[c.ID] = struct{}{}
	return nil
}

// CredentialByHash implements [auth.Store].
func (s *Store) CredentialByHash(ctx context.Context, hash []byte) (*auth.StoredCredential, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, ok := s.byHash[string(hash)]
	if !ok {
		return nil, fmt.Errorf("memory: credential by hash: %w", auth.ErrNotFound)
	}
	return clone(s.byID[id]), nil
}

// Credential implements [auth.Store].
func (s *Store) Credential(ctx context.Context, userID, id string) (*auth.StoredCredential, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.byID[id]
	if !ok || c.UserID != userID {
		return nil, fmt.Errorf("memory: credential: %w", auth.ErrNotFound)
	}
	return clone(c), nil
}

// ListCredentials implements [auth.Store].
func (s *Store) ListCredentials(ctx context.Context, userID string, kind auth.Kind) ([]*auth.StoredCredential, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*auth.StoredCredential
	for id := range s.byUser[userID] {
		if c := s.byID[id]; c.Kind == kind {
			out = append(out, clone(c))
		}
	}
	slices.SortFunc(out, func(a, b *auth.StoredCredential) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// AllCredentials implements [auth.CredentialLister].
func (s *Store) AllCredentials(ctx context.Context, kind auth.Kind) ([]*auth.StoredCredential, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*auth.StoredCredential
	for _, c := range s.byID {
		if c.Kind == kind {
			out = append(out, clone(c))
		}
	}
	slices.SortFunc(out, func(a, b *auth.StoredCredential) int {
		return cmp.Or(cmp.Compare(a.UserID, b.UserID), a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// UpdateCredential implements [auth.Store].
func (s *Store) UpdateCredential(ctx context.Context, c *auth.StoredCredential) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.byID[c.ID]
	if !ok || old.UserID != c.UserID {
		return fmt.Errorf("memory: update credential: %w", auth.ErrNotFound)
	}
	old.Name = c.Name
	old.Scopes = slices.Clone(c.Scopes)
	old.ExpiresAt = c.ExpiresAt.UTC()
	old.AuthenticatedAt = c.AuthenticatedAt.UTC()
	return nil
}

// DeleteCredential implements [auth.Store].
func (s *Store) DeleteCredential(ctx context.Context, userID, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.byID[id]
	if !ok || c.UserID != userID {
		return fmt.Errorf("memory: delete credential: %w", auth.ErrNotFound)
	}
	s.remove(c)
	return nil
}

// DeleteCredentials implements [auth.Store].
func (s *Store) DeleteCredentials(ctx context.Context, userID string, kind auth.Kind, except string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id := range s.byUser[userID] {
		if c := s.byID[id]; c.Kind == kind && id != except {
			s.remove(c) // deleting from the map being ranged over is allowed
			n++
		}
	}
	return n, nil
}

// RecordUsage implements [auth.Store].
func (s *Store) RecordUsage(ctx context.Context, usage []auth.Usage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range usage {
		c, ok := s.byID[u.ID]
		if !ok || c.UserID != u.UserID || !u.At.After(c.LastUsedAt) {
			continue
		}
		c.LastUsedAt, c.LastUsedAddr, c.LastUsedClient = u.At.UTC(), u.Addr, u.Client
	}
	return nil
}

// DeleteExpired implements [auth.ExpiredPurger].
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.byID {
		if !c.ExpiresAt.IsZero() && !c.ExpiresAt.After(now) {
			s.remove(c)
			n++
		}
	}
	return n, nil
}

// DeleteUnused implements [auth.UnusedPurger].
func (s *Store) DeleteUnused(ctx context.Context, kind auth.Kind, cutoff time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.byID {
		last := c.LastUsedAt
		if last.IsZero() {
			last = c.CreatedAt
		}
		if c.Kind == kind && !last.After(cutoff) {
			s.remove(c)
			n++
		}
	}
	return n, nil
}

// remove deletes c from every index; s.mu must be held for writing.
func (s *Store) remove(c *auth.StoredCredential) {
	delete(s.byID, c.ID)
	delete(s.byHash, string(c.Hash))
	if ids := s.byUser[c.UserID]; ids != nil {
		delete(ids, c.ID)
		if len(ids) == 0 {
			delete(s.byUser, c.UserID)
		}
	}
}

// clone returns a deep copy in UTC, so callers never share the stored record.
func clone(c *auth.StoredCredential) *auth.StoredCredential {
	out := *c
	out.Scopes = slices.Clone(c.Scopes)
	out.Hash = bytes.Clone(c.Hash)
	out.CreatedAt = c.CreatedAt.UTC()
	out.ExpiresAt = c.ExpiresAt.UTC()
	out.AuthenticatedAt = c.AuthenticatedAt.UTC()
	out.LastUsedAt = c.LastUsedAt.UTC()
	return &out
}

// FederatedSessions implements [auth.FederatedSessionFinder]. It scans
// every credential: back-channel logouts are rare.
func (s *Store) FederatedSessions(ctx context.Context, f auth.Federation) ([]*auth.StoredCredential, error) {
	if f.Issuer == "" || f.Subject == "" && f.SID == "" {
		return nil, fmt.Errorf("memory: federated sessions: %w: an issuer and a subject or session ID are required", auth.ErrInvalidInput)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*auth.StoredCredential
	for _, c := range s.byID {
		g := c.Federation
		if c.Kind == auth.KindSession && g.Issuer == f.Issuer && (f.Subject == "" || g.Subject == f.Subject) && (f.SID == "" || g.SID == f.SID) {
			out = append(out, clone(c))
		}
	}
	slices.SortFunc(out, func(a, b *auth.StoredCredential) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}
