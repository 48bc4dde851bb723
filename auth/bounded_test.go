package auth

import (
	"context"
	"testing"
	"time"
)

// ctxStore records the context of its CredentialByHash calls; it honours
// its context, so the bounded store calls it directly.
type ctxStore struct {
	Store
	got context.Context
}

func (s *ctxStore) CredentialByHash(ctx context.Context, _ []byte) (*StoredCredential, error) {
	s.got = ctx
	return nil, ErrNotFound
}

func (s *ctxStore) HonorsContext() bool { return true }

// TestBoundedStoreDeadline checks the deadline a direct store call runs
// under: the caller's context as it is when its deadline comes first (no
// context and timer of its own per call), else one that ends after the
// timeout.
func TestBoundedStoreDeadline(t *testing.T) {
	const timeout = 5 * time.Second
	s := &ctxStore{}
	b := newBoundedStore(s, timeout)
	sooner, cancel := context.WithTimeout(t.Context(), timeout/2)
	defer cancel()
	later, cancel := context.WithTimeout(t.Context(), time.Hour)
	defer cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
	}{{"sooner deadline", sooner}, {"later deadline", later}, {"no deadline", t.Context()}} {
		start := time.Now()
		b.CredentialByHash(tc.ctx, nil)
		d, ok := s.got.Deadline()
		switch {
		case !ok:
			t.Errorf("%s: the store call has no deadline", tc.name)
		case tc.ctx == sooner && s.got != sooner:
			t.Errorf("%s: the store got a context of its own, want the caller's", tc.name)
		case d.After(start.Add(timeout).Add(time.Second)): // slack for a slow machine
			t.Errorf("%s: the store call's deadline is %s away, want at most %s", tc.name, d.Sub(start), timeout)
		}
	}
}
