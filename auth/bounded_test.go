package auth

import (
	"context"
	"errors"
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

// blockingStore's CredentialByHash waits for its context to end, as a
// store on a hung server does, and reports its start on entered.
type blockingStore struct {
	Store
	direct  bool
	entered chan struct{}
}

func (s *blockingStore) CredentialByHash(ctx context.Context, _ []byte) (*StoredCredential, error) {
	s.entered <- struct{}{}
	<-ctx.Done()
	return nil, ctx.Err()
}

func (s *blockingStore) HonorsContext() bool { return s.direct }

// TestBoundedStoreHungCallEnds checks both ends of a store call that does
// not return by itself, on either path (direct: the store honours its
// context; or on a goroutine of its own): at the timeout, with
// ErrUnavailable, when the caller sets no deadline; and when the caller's
// context is cancelled first, with a timeout that would come far later
// (a client that disconnects ends its store call).
func TestBoundedStoreHungCallEnds(t *testing.T) {
	for _, direct := range []bool{true, false} {
		s := &blockingStore{direct: direct, entered: make(chan struct{}, 1)}

		const timeout = 50 * time.Millisecond
		b := newBoundedStore(s, timeout)
		start := time.Now()
		ended := make(chan error, 1)
		go func() {
			_, err := b.CredentialByHash(context.Background(), nil)
			ended <- err
		}()
		<-s.entered
		select {
		case err := <-ended:
			if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("direct %v: a hung call returned %v, want ErrUnavailable at the deadline", direct, err)
			}
			if d := time.Since(start); d < timeout {
				t.Errorf("direct %v: a hung call ended after %v, before its timeout %v", direct, d, timeout)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("direct %v: a hung call did not end at its timeout", direct)
		}

		b = newBoundedStore(s, time.Hour)
		ctx, cancel := context.WithCancel(t.Context())
		go func() {
			_, err := b.CredentialByHash(ctx, nil)
			ended <- err
		}()
		<-s.entered
		cancel()
		select {
		case err := <-ended:
			if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
				t.Errorf("direct %v: a cancelled call returned %v, want ErrUnavailable for the cancellation", direct, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("direct %v: a call whose caller was cancelled did not end", direct)
		}
	}
}

// doneStore asks its context for its Done channel, as every driver does,
// and answers at once.
type doneStore struct{ Store }

func (doneStore) CredentialByHash(ctx context.Context, _ []byte) (*StoredCredential, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	default:
		return nil, ErrNotFound
	}
}

func (doneStore) HonorsContext() bool { return true }

// TestBoundedStoreCallAllocs checks what bounding a direct call costs in
// allocations, the caller's context having no deadline (a server's request
// context): its context and Done channel, no timer, and nothing registered
// in the caller's context.
func TestBoundedStoreCallAllocs(t *testing.T) {
	b := newBoundedStore(doneStore{}, 5*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := testing.AllocsPerRun(1000, func() { b.CredentialByHash(ctx, nil) })
	if n > 2 {
		t.Errorf("a bounded direct call allocates %v times, want at most 2", n)
	}
}

// TestBoundedStoreCallContextEnds checks that a store call's own context
// ends when the call returns, as a context.WithTimeout's cancel ends it: a
// Store that leaves something waiting on ctx.Done() (a goroutine of its
// own) must not wait forever.
func TestBoundedStoreCallContextEnds(t *testing.T) {
	s := &ctxStore{}
	b := newBoundedStore(s, time.Hour)
	b.CredentialByHash(t.Context(), nil)
	select {
	case <-s.got.Done():
	default:
		t.Fatal("the store call's context is still live after the call returned")
	}
	if s.got.Err() == nil {
		t.Error("the store call's context has ended with no error")
	}
}
