package oidc

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/appauth/appauth/auth"
)

// kindPending names SharedPending's records in the TransientStore.
const kindPending = "oidc/pending"

// SharedPending is a [PendingStore] on an [auth.TransientStore]
// (backends/sqlstore, backends/memory), so that a sign-in that starts on
// one server completes on whichever server the provider's redirect
// reaches. Take is the store's single take, so a state is used once across
// servers. Every 100th Put also deletes expired records.
type SharedPending struct {
	ts   auth.TransientStore
	now  func() time.Time
	puts atomic.Uint64
}

var _ PendingStore = (*SharedPending)(nil)

// NewSharedPending returns a SharedPending on ts; now is the clock (nil:
// time.Now).
func NewSharedPending(ts auth.TransientStore, now func() time.Time) *SharedPending {
	if now == nil {
		now = time.Now
	}
	return &SharedPending{ts: ts, now: now}
}

// Put implements [PendingStore].
func (s *SharedPending) Put(ctx context.Context, key string, p *Pending) error {
	v, err := json.Marshal(p)
	if err != nil {
		return err
	}
	now := s.now()
	if s.puts.Add(1)%100 == 0 {
		if _, err := s.ts.DeleteExpiredTransients(ctx, kindPending, now); err != nil {
			return fmt.Errorf("oidc: purge pending sign-ins: %w", err)
		}
	}
	return s.ts.PutTransient(ctx, kindPending, []byte(key), v, p.Expires, now)
}

// Take implements [PendingStore].
func (s *SharedPending) Take(ctx context.Context, key string) (*Pending, error) {
	v, err := s.ts.TakeTransient(ctx, kindPending, []byte(key), s.now())
	if err != nil {
		return nil, err
	}
	var p Pending
	if err := json.Unmarshal(v, &p); err != nil {
		return nil, fmt.Errorf("oidc: a stored pending sign-in does not decode: %w", err)
	}
	return &p, nil
}
