package oidc

import (
	"container/list"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/appauth/appauth/auth"
)

// Pending is a sign-in in progress: what the callback needs to check the
// provider's answer. It holds no secret the browser does not already
// have, except the PKCE verifier, which is useless without the code.
type Pending struct {
	// BindingHash is SHA-256 of the browser binding (the cookie's value).
	BindingHash []byte
	Nonce       string // sent in the authorization request, must return in the ID token
	Verifier    string // PKCE code verifier (S256)
	// ReturnPath is the page to show afterwards; for a Login Flow grant
	// page it carries the flow's login token, which is why it stays here
	// and never goes into the state.
	ReturnPath string
	// Reauth: the session that asked to re-authenticate (empty for a new
	// sign-in), its owner's user ID and provider account.
	ReauthSessionID string
	ReauthUserID    string
	ReauthAccount   auth.Federation
	Created         time.Time // when the sign-in began
	Expires         time.Time // after this the record is gone
}

// PendingStore keeps [Pending] sign-ins between the redirect to the
// provider and its callback, under a key derived from the state. A store
// shared by several servers (a database table) lets the callback land on
// another server than the redirect. Implementations must be safe for
// concurrent use.
type PendingStore interface {
	// Put stores p under key until p.Expires. It may drop older records
	// to stay within a bound.
	Put(ctx context.Context, key string, p *Pending) error
	// Take returns the record of key and removes it, so that it is used at
	// most once; an unknown or expired key is an error matching
	// auth.ErrNotFound.
	Take(ctx context.Context, key string) (*Pending, error)
}

// MemoryPending is the default [PendingStore]: in memory, bounded, expiring.
type MemoryPending struct {
	mu    sync.Mutex
	max   int
	now   func() time.Time
	byKey map[string]*list.Element
	order *list.List // oldest first
}

type pendingEntry struct {
	key string
	p   *Pending
}

var _ PendingStore = (*MemoryPending)(nil)

// NewMemoryPending returns a [MemoryPending] that keeps at most max
// records (default 10,000 when max <= 0); when full, the oldest is
// dropped, so a flood of started sign-ins costs bounded memory and ends
// only the oldest sign-ins in progress. now is the clock (nil: time.Now).
func NewMemoryPending(max int, now func() time.Time) *MemoryPending {
	if max <= 0 {
		max = 10000
	}
	if now == nil {
		now = time.Now
	}
	return &MemoryPending{max: max, now: now, byKey: map[string]*list.Element{}, order: list.New()}
}

// Put implements [PendingStore].
func (s *MemoryPending) Put(ctx context.Context, key string, p *Pending) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byKey[key]; ok {
		return fmt.Errorf("oidc: pending sign-in: %w", auth.ErrAlreadyExists)
	}
	now := s.now()
	for s.order.Len() > 0 {
		e := s.order.Front()
		if s.order.Len() < s.max && e.Value.(*pendingEntry).p.Expires.After(now) {
			break
		}
		s.order.Remove(e)
		delete(s.byKey, e.Value.(*pendingEntry).key)
	}
	c := *p
	s.byKey[key] = s.order.PushBack(&pendingEntry{key: key, p: &c})
	return nil
}

// Take implements [PendingStore].
func (s *MemoryPending) Take(ctx context.Context, key string) (*Pending, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.byKey[key]
	if !ok {
		return nil, fmt.Errorf("oidc: pending sign-in: %w", auth.ErrNotFound)
	}
	s.order.Remove(e)
	delete(s.byKey, key)
	p := e.Value.(*pendingEntry).p
	if !p.Expires.After(s.now()) {
		return nil, fmt.Errorf("oidc: pending sign-in expired: %w", auth.ErrNotFound)
	}
	return p, nil
}

// Len returns how many records are kept (expired ones included until
// they are dropped).
func (s *MemoryPending) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.order.Len()
}

// replayCache remembers the IDs (jti) of logout tokens until they expire,
// so that a captured token cannot sign anyone out twice. It is bounded:
// when full of unexpired IDs it refuses new ones (fail closed), which only
// a provider signing a flood of tokens could cause.
type replayCache struct {
	mu   sync.Mutex
	max  int
	seen map[string]time.Time // jti -> forget after
}

func newReplayCache(max int) *replayCache {
	return &replayCache{max: max, seen: map[string]time.Time{}}
}

// errReplayCacheFull is an outage, not the provider's fault.
var errReplayCacheFull = fmt.Errorf("oidc: too many recent logout tokens: %w", auth.ErrUnavailable)

// first records id until until and reports whether it is new.
func (c *replayCache) first(_ context.Context, id string, until, now time.Time) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.seen[id]; ok && t.After(now) {
		return false, nil
	}
	if len(c.seen) >= c.max {
		for k, t := range c.seen {
			if !t.After(now) {
				delete(c.seen, k)
			}
		}
		if len(c.seen) >= c.max {
			return false, errReplayCacheFull
		}
	}
	c.seen[id] = until
	return true, nil
}
