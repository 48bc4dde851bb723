package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/appauth/appauth/internal/stopwait"
)

// boundedStore runs every call of a [Store] under [Options.StoreTimeout]
// (or the caller's deadline if that comes first) and stops waiting at that
// deadline even when the store does not (a driver can wait on a hung
// server whatever its context says): the caller gets ErrUnavailable and
// the call ends, or not, on its own goroutine. Every failure that is not
// an answer (not found, already exists, refused input) becomes
// ErrUnavailable, so no store error is ever a 500 or a 401.
type boundedStore struct {
	s       Store
	timeout time.Duration
	// direct: the store honours its context (see ContextBounded), so calls
	// run on the caller's goroutine.
	direct bool
	// watch ends the contexts of calls at their deadline (or their
	// caller's end) without a timer per call.
	watch *watchdog
	// abandoned counts calls still running after their caller gave up;
	// past maxAbandoned a call fails at once instead of adding another.
	abandoned stopwait.Abandoned
}

// maxAbandoned bounds the goroutines a hung store can hold.
const maxAbandoned = 1000

var _ Store = (*boundedStore)(nil)

func newBoundedStore(s Store, timeout time.Duration) *boundedStore {
	cb, ok := s.(ContextBounded)
	return &boundedStore{s: s, timeout: timeout, direct: ok && cb.HonorsContext(), watch: newWatchdog(timeout)}
}

// bounded runs f under s's deadline.
func bounded[T any](ctx context.Context, s *boundedStore, op string, f func(context.Context) (T, error)) (T, error) {
	if s.direct {
		return direct(ctx, s, op, f)
	}
	var zero T
	ctx, c, err := s.begin(ctx, op)
	if err != nil {
		return zero, err
	}
	if c != nil {
		defer s.watch.stop(c)
	}
	v, err, done := stopwait.Do(ctx, &s.abandoned, f)
	if !done {
		cause := context.Cause(ctx)
		if c != nil {
			cause = c.Err() // Cause would ask the caller's context
		}
		return zero, fmt.Errorf("%w: store: %s: %w", ErrUnavailable, op, cause)
	}
	return v, storeError(op, err)
}

// direct is bounded for a store that honours its context: f runs on the
// caller's goroutine. f does not escape, so a caller's closure can stay
// on its stack (bounded's goroutine path makes its f escape).
func direct[T any](ctx context.Context, s *boundedStore, op string, f func(context.Context) (T, error)) (T, error) {
	ctx, c, err := s.begin(ctx, op)
	if err != nil {
		var zero T
		return zero, err
	}
	if c != nil {
		defer s.watch.stop(c)
	}
	v, err := f(ctx)
	return v, storeError(op, err)
}

// begin returns the context a call runs under: the caller's when its
// deadline comes first (a context of its own would cost the verify path
// for nothing), else a callCtx that the watchdog ends (see deadline.go),
// returned as c too: stop it when the call returns. It fails a call whose
// caller has given up already, or that would be one goroutine too many
// left on a hung store.
func (s *boundedStore) begin(ctx context.Context, op string) (_ context.Context, c *callCtx, err error) {
	if n := s.abandoned.Running(); n >= maxAbandoned {
		return nil, nil, fmt.Errorf("%w: store: %s: %d earlier calls have not returned", ErrUnavailable, op, n)
	}
	if ctx.Err() != nil {
		return nil, nil, fmt.Errorf("%w: store: %s: %w", ErrUnavailable, op, context.Cause(ctx))
	}
	if d, ok := ctx.Deadline(); ok && time.Until(d) <= s.timeout {
		return ctx, nil, nil
	}
	c = s.watch.start(ctx)
	return c, c, nil
}

// storeError makes every failure that is not an answer ErrUnavailable.
func storeError(op string, err error) error {
	if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrAlreadyExists) ||
		errors.Is(err, ErrInvalidInput) || errors.Is(err, ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: store: %s: %w", ErrUnavailable, op, err)
}

func (b *boundedStore) CreateCredential(ctx context.Context, c *StoredCredential) error {
	_, err := bounded(ctx, b, "create credential", func(ctx context.Context) (struct{}, error) {
		return struct{}{}, b.s.CreateCredential(ctx, c)
	})
	return err
}

func (b *boundedStore) CredentialByHash(ctx context.Context, hash []byte) (*StoredCredential, error) {
	if b.direct { // the verify path: its closure stays on the stack
		return direct(ctx, b, "credential by hash", func(ctx context.Context) (*StoredCredential, error) {
			return b.s.CredentialByHash(ctx, hash)
		})
	}
	return bounded(ctx, b, "credential by hash", func(ctx context.Context) (*StoredCredential, error) {
		return b.s.CredentialByHash(ctx, hash)
	})
}

func (b *boundedStore) Credential(ctx context.Context, userID, id string) (*StoredCredential, error) {
	return bounded(ctx, b, "credential", func(ctx context.Context) (*StoredCredential, error) {
		return b.s.Credential(ctx, userID, id)
	})
}

func (b *boundedStore) ListCredentials(ctx context.Context, userID string, kind Kind) ([]*StoredCredential, error) {
	return bounded(ctx, b, "list credentials", func(ctx context.Context) ([]*StoredCredential, error) {
		return b.s.ListCredentials(ctx, userID, kind)
	})
}

func (b *boundedStore) UpdateCredential(ctx context.Context, c *StoredCredential) error {
	_, err := bounded(ctx, b, "update credential", func(ctx context.Context) (struct{}, error) {
		return struct{}{}, b.s.UpdateCredential(ctx, c)
	})
	return err
}

func (b *boundedStore) DeleteCredential(ctx context.Context, userID, id string) error {
	_, err := bounded(ctx, b, "delete credential", func(ctx context.Context) (struct{}, error) {
		return struct{}{}, b.s.DeleteCredential(ctx, userID, id)
	})
	return err
}

func (b *boundedStore) DeleteCredentials(ctx context.Context, userID string, kind Kind, except string) (int, error) {
	return bounded(ctx, b, "delete credentials", func(ctx context.Context) (int, error) {
		return b.s.DeleteCredentials(ctx, userID, kind, except)
	})
}

func (b *boundedStore) RecordUsage(ctx context.Context, usage []Usage) error {
	_, err := bounded(ctx, b, "record usage", func(ctx context.Context) (struct{}, error) {
		return struct{}{}, b.s.RecordUsage(ctx, usage)
	})
	return err
}

// claimJob asks the store's [JobClaimer], if it has one, whether to run
// job now; a store without one (one server) always runs it.
func (b *boundedStore) claimJob(ctx context.Context, name string, now time.Time, every time.Duration) (bool, error) {
	c, ok := b.s.(JobClaimer)
	if !ok {
		return true, nil
	}
	return bounded(ctx, b, "claim job", func(ctx context.Context) (bool, error) {
		return c.ClaimJob(ctx, name, now, every)
	})
}

// deleteUnused calls the store's [UnusedPurger], if it has one.
func (b *boundedStore) deleteUnused(ctx context.Context, kind Kind, cutoff time.Time) (int, bool, error) {
	p, ok := b.s.(UnusedPurger)
	if !ok {
		return 0, false, nil
	}
	n, err := bounded(ctx, b, "delete unused", func(ctx context.Context) (int, error) {
		return p.DeleteUnused(ctx, kind, cutoff)
	})
	return n, true, err
}

// deleteExpired calls the store's [ExpiredPurger], if it has one.
func (b *boundedStore) deleteExpired(ctx context.Context, now time.Time) (int, bool, error) {
	p, ok := b.s.(ExpiredPurger)
	if !ok {
		return 0, false, nil
	}
	n, err := bounded(ctx, b, "delete expired", func(ctx context.Context) (int, error) {
		return p.DeleteExpired(ctx, now)
	})
	return n, true, err
}

// federatedSessions calls the store's [FederatedSessionFinder], if it has one.
func (b *boundedStore) federatedSessions(ctx context.Context, f Federation) ([]*StoredCredential, bool, error) {
	p, ok := b.s.(FederatedSessionFinder)
	if !ok {
		return nil, false, nil
	}
	cs, err := bounded(ctx, b, "federated sessions", func(ctx context.Context) ([]*StoredCredential, error) {
		return p.FederatedSessions(ctx, f)
	})
	return cs, true, err
}
