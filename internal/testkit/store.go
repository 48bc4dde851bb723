package testkit

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/appauth/appauth/auth"
)

// Store wraps an [auth.Store], counting calls and failing on demand. While
// an error is set with [Store.Fail], every method returns it without
// calling the wrapped store. It is safe for concurrent use.
type Store struct {
	auth.Store

	// Lookups counts CredentialByHash calls, failed ones included.
	Lookups atomic.Int64
	// UsageWrites counts the RecordUsage batches passed to the wrapped
	// store, and UsageRows the updates in them.
	UsageWrites, UsageRows atomic.Int64

	fail failure
}

// NewStore returns a Store wrapping s.
func NewStore(s auth.Store) *Store { return &Store{Store: s} }

// Fail makes every method return err from now on; Fail(nil) ends the
// outage.
func (s *Store) Fail(err error) { s.fail.set(err) }

// CreateCredential implements [auth.Store].
func (s *Store) CreateCredential(ctx context.Context, c *auth.StoredCredential) error {
	if err := s.fail.get(); err != nil {
		return err
	}
	return s.Store.CreateCredential(ctx, c)
}

// CredentialByHash implements [auth.Store] and counts the call in Lookups.
func (s *Store) CredentialByHash(ctx context.Context, hash []byte) (*auth.StoredCredential, error) {
	s.Lookups.Add(1)
	if err := s.fail.get(); err != nil {
		return nil, err
	}
	return s.Store.CredentialByHash(ctx, hash)
}

// Credential implements [auth.Store].
func (s *Store) Credential(ctx context.Context, userID, id string) (*auth.StoredCredential, error) {
	if err := s.fail.get(); err != nil {
		return nil, err
	}
	return s.Store.Credential(ctx, userID, id)
}

// ListCredentials implements [auth.Store].
func (s *Store) ListCredentials(ctx context.Context, userID string, kind auth.Kind) ([]*auth.StoredCredential, error) {
	if err := s.fail.get(); err != nil {
		return nil, err
	}
	return s.Store.ListCredentials(ctx, userID, kind)
}

// UpdateCredential implements [auth.Store].
func (s *Store) UpdateCredential(ctx context.Context, c *auth.StoredCredential) error {
	if err := s.fail.get(); err != nil {
		return err
	}
	return s.Store.UpdateCredential(ctx, c)
}

// DeleteCredential implements [auth.Store].
func (s *Store) DeleteCredential(ctx context.Context, userID, id string) error {
	if err := s.fail.get(); err != nil {
		return err
	}
	return s.Store.DeleteCredential(ctx, userID, id)
}

// DeleteCredentials implements [auth.Store].
func (s *Store) DeleteCredentials(ctx context.Context, userID string, kind auth.Kind, except string) (int, error) {
	if err := s.fail.get(); err != nil {
		return 0, err
	}
	return s.Store.DeleteCredentials(ctx, userID, kind, except)
}

// RecordUsage implements [auth.Store] and counts the batches it passes on.
func (s *Store) RecordUsage(ctx context.Context, usage []auth.Usage) error {
	if err := s.fail.get(); err != nil {
		return err
	}
	s.UsageWrites.Add(1)
	s.UsageRows.Add(int64(len(usage)))
	return s.Store.RecordUsage(ctx, usage)
}

// DeleteExpired implements [auth.ExpiredPurger] by passing the call to the
// wrapped store, which fails with errors.ErrUnsupported if it has no such
// capability. It does not fail with the store: the purge runs in the
// background.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	p, ok := s.Store.(auth.ExpiredPurger)
	if !ok {
		return 0, errors.ErrUnsupported
	}
	return p.DeleteExpired(ctx, now)
}

// DeleteUnused implements [auth.UnusedPurger] by passing the call to the
// wrapped store, which fails with errors.ErrUnsupported if it has no such
// capability.
func (s *Store) DeleteUnused(ctx context.Context, kind auth.Kind, cutoff time.Time) (int, error) {
	p, ok := s.Store.(auth.UnusedPurger)
	if !ok {
		return 0, errors.ErrUnsupported
	}
	return p.DeleteUnused(ctx, kind, cutoff)
}

// failure is an error that may be set and read concurrently.
type failure struct{ p atomic.Pointer[error] }

func (f *failure) set(err error) {
	if err == nil {
		f.p.Store(nil)
		return
	}
	f.p.Store(&err)
}

func (f *failure) get() error {
	if e := f.p.Load(); e != nil {
		return *e
	}
	return nil
}
