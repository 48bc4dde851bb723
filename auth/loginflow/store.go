package loginflow

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Flow is one pending Login Flow v2 as a [Store] keeps it. It holds no
// token and no secret: the tokens only as keyed hashes, the app password
// only sealed to a key that is derived from the poll token.
type Flow struct {
	// LoginHash and PollHash are the keyed hashes of the login and poll
	// tokens (32 bytes each); each is unique.
	LoginHash, PollHash []byte
	// Client names the program that started the flow, from its User-Agent.
	Client string
	// Server is the base URL the client is told to use, fixed when the
	// flow starts so that it matches the login URL's scheme and host.
	Server string
	// PublicKey is the X25519 public key whose private key is derived from
	// the poll token: the granted app password is sealed to it.
	PublicKey []byte
	// ExpiresAt is when the flow ends, granted or not.
	ExpiresAt time.Time

	// Set by a grant.
	Granted bool
	// UserID and AppPasswordID name the issued app password, so that it is
	// revoked when the flow expires before the client collects it.
	UserID, AppPasswordID string
	// LoginName is the username the client is to use.
	LoginName string
	// Sealed is the app password, sealed to PublicKey (HPKE).
	Sealed []byte
}

// ErrFull is returned by [Store.Add] when the store holds its maximum of
// pending flows.
var ErrFull = errors.New("loginflow: too many pending flows")

// Store keeps pending flows. Every method returns auth.ErrNotFound (wrapped
// or not) for a flow that is not there, and must be safe for concurrent
// use. Flows past their ExpiresAt may be kept until DeleteExpired, but Get
// and Take must not return them.
type Store interface {
	// Add stores a new flow, or returns ErrFull; expired flows that were
	// never granted do not count.
	Add(ctx context.Context, f *Flow, now time.Time) error
	// Get returns the unexpired flow whose LoginHash is loginHash.
	Get(ctx context.Context, loginHash []byte, now time.Time) (*Flow, error)
	// Grant records the grant (the Granted, UserID, AppPasswordID,
	// LoginName and Sealed fields of g) on the unexpired, not yet granted
	// flow whose LoginHash is g.LoginHash. Of two grants of one flow only
	// one succeeds; the other gets auth.ErrNotFound.
	Grant(ctx context.Context, g *Flow, now time.Time) error
	// Take removes and returns the unexpired granted flow whose PollHash
	// is pollHash. For a pending (not granted) flow it returns ErrPending
	// and keeps it.
	Take(ctx context.Context, pollHash []byte, now time.Time) (*Flow, error)
	// Delete removes the flow whose LoginHash is loginHash.
	Delete(ctx context.Context, loginHash []byte) error
	// DeleteExpired removes every flow that expired before now and returns
	// the granted ones among them, whose app passwords are then revoked;
	// with an error, it returns those it removed before the failure.
	DeleteExpired(ctx context.Context, now time.Time) ([]*Flow, error)
}

// ErrPending is returned by [Store.Take] for a flow not granted yet.
var ErrPending = errors.New("loginflow: not granted yet")

// MemoryStore is the in-memory [Store], bounded to a number of flows. It
// is the default; servers that share one database need a shared Store.
type MemoryStore struct {
	mu     sync.Mutex
	max    int
	byLog  map[string]*Flow
	byPoll map[string]*Flow
}

// NewMemoryStore returns a MemoryStore that holds at most max flows
// (max <= 0: 10,000).
func NewMemoryStore(max int) *MemoryStore {
	if max <= 0 {
		max = 10_000
	}
	return &MemoryStore{max: max, byLog: map[string]*Flow{}, byPoll: map[string]*Flow{}}
}

var _ Store = (*MemoryStore)(nil)

// Len returns the number of flows held, expired ones included.
func (s *MemoryStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byLog)
}

// Add implements [Store]. When full it first drops expired flows that were
// never granted (granted ones wait for DeleteExpired, which revokes their
// app passwords).
func (s *MemoryStore) Add(_ context.Context, f *Flow, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.byLog) >= s.max {
		for k, x := range s.byLog {
			if !x.Granted && !now.Before(x.ExpiresAt) {
				delete(s.byLog, k)
				delete(s.byPoll, string(x.PollHash))
			}
		}
		if len(s.byLog) >= s.max {
			return ErrFull
		}
	}
	if s.byLog[string(f.LoginHash)] != nil || s.byPoll[string(f.PollHash)] != nil {
		return errDuplicate
	}
	c := *f
	s.byLog[string(f.LoginHash)] = &c
	s.byPoll[string(f.PollHash)] = &c
	return nil
}

var errDuplicate = errors.New("loginflow: duplicate token hash")

// Get implements [Store].
func (s *MemoryStore) Get(_ context.Context, loginHash []byte, now time.Time) (*Flow, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.byLog[string(loginHash)]
	if f == nil || !now.Before(f.ExpiresAt) {
		return nil, errNotFound
	}
	c := *f
	return &c, nil
}

// Grant implements [Store].
func (s *MemoryStore) Grant(_ context.Context, g *Flow, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.byLog[string(g.LoginHash)]
	if f == nil || f.Granted || !now.Before(f.ExpiresAt) {
		return errNotFound
	}
	f.Granted, f.UserID, f.AppPasswordID, f.LoginName, f.Sealed = true, g.UserID, g.AppPasswordID, g.LoginName, g.Sealed
	return nil
}

// Take implements [Store].
func (s *MemoryStore) Take(_ context.Context, pollHash []byte, now time.Time) (*Flow, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.byPoll[string(pollHash)]
	switch {
	case f == nil || !now.Before(f.ExpiresAt):
		return nil, errNotFound
	case !f.Granted:
		return nil, ErrPending
	}
	delete(s.byLog, string(f.LoginHash))
	delete(s.byPoll, string(f.PollHash))
	return f, nil
}

// Delete implements [Store].
func (s *MemoryStore) Delete(_ context.Context, loginHash []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.byLog[string(loginHash)]
	if f == nil {
		return errNotFound
	}
	delete(s.byLog, string(f.LoginHash))
	delete(s.byPoll, string(f.PollHash))
	return nil
}

// DeleteExpired implements [Store].
func (s *MemoryStore) DeleteExpired(_ context.Context, now time.Time) ([]*Flow, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var granted []*Flow
	for k, f := range s.byLog {
		if now.Before(f.ExpiresAt) {
			continue
		}
		delete(s.byLog, k)
		delete(s.byPoll, string(f.PollHash))
		if f.Granted {
			granted = append(granted, f)
		}
	}
	return granted, nil
}
