package loginflow

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/appauth/appauth/auth"
)

// The kinds of the [SharedStore]'s records: a flow under its login hash,
// and its login hash under its poll hash.
const (
	kindFlow = "loginflow/flow"
	kindPoll = "loginflow/poll"
	kindRate = "loginflow/rate" // requests or starts of one address in one window
)

// SharedStore is a [Store] on an [auth.TransientStore] (backends/sqlstore
// and backends/memory implement it), so that every server sharing the
// database sees every flow: a flow started on one server is granted on a
// second and polled on a third. Each flow is two records (the flow under
// its login hash, the login hash under its poll hash), both expiring with
// the flow; a grant is a compare-and-swap and a poll a take, so each
// happens once across servers. Flows are not counted against a maximum:
// the per-address RequestsPerMinute and StartsPerLifetime, counted in the
// shared store too so that they hold for all servers together, bound how
// many one address can have pending, and expired ones are purged.
type SharedStore struct {
	ts auth.TransientStore
}

var _ Store = (*SharedStore)(nil)

// NewSharedStore returns a SharedStore on ts.
func NewSharedStore(ts auth.TransientStore) *SharedStore { return &SharedStore{ts: ts} }

// Add implements [Store].
func (s *SharedStore) Add(ctx context.Context, f *Flow, now time.Time) error {
	v, err := json.Marshal(f)
	if err != nil {
		return err
	}
	if err := s.ts.PutTransient(ctx, kindFlow, f.LoginHash, v, f.ExpiresAt, now); err != nil {
		return duplicate(err)
	}
	if err := s.ts.PutTransient(ctx, kindPoll, f.PollHash, f.LoginHash, f.ExpiresAt, now); err != nil {
		s.ts.TakeTransient(ctx, kindFlow, f.LoginHash, now)
		return duplicate(err)
	}
	return nil
}

func duplicate(err error) error {
	if errors.Is(err, auth.ErrAlreadyExists) {
		return errDuplicate
	}
	return err
}

// get returns the flow under loginHash and its encoding.
func (s *SharedStore) get(ctx context.Context, loginHash []byte, now time.Time) (*Flow, []byte, error) {
	v, err := s.ts.Transient(ctx, kindFlow, loginHash, now)
	if err != nil {
		return nil, nil, err
	}
	f, err := decodeFlow(v)
	return f, v, err
}

func decodeFlow(v []byte) (*Flow, error) {
	var f Flow
	if err := json.Unmarshal(v, &f); err != nil {
		return nil, fmt.Errorf("loginflow: a stored flow does not decode: %w", err)
	}
	return &f, nil
}

// Get implements [Store].
func (s *SharedStore) Get(ctx context.Context, loginHash []byte, now time.Time) (*Flow, error) {
	f, _, err := s.get(ctx, loginHash, now)
	return f, err
}

// Grant implements [Store]: the flow is swapped from its pending
// encoding to the granted one, so of two grants one wins.
func (s *SharedStore) Grant(ctx context.Context, g *Flow, now time.Time) error {
	f, old, err := s.get(ctx, g.LoginHash, now)
	if err != nil {
		return err
	}
	if f.Granted {
		return errNotFound
	}
	f.Granted, f.UserID, f.AppPasswordID, f.LoginName, f.Sealed = true, g.UserID, g.AppPasswordID, g.LoginName, g.Sealed
	v, err := json.Marshal(f)
	if err != nil {
		return err
	}
	return s.ts.SwapTransient(ctx, kindFlow, g.LoginHash, old, v, now)
}

// Take implements [Store]: the granted flow's record is taken, so of two
// polls one collects it.
func (s *SharedStore) Take(ctx context.Context, pollHash []byte, now time.Time) (*Flow, error) {
	loginHash, err := s.ts.Transient(ctx, kindPoll, pollHash, now)
	if err != nil {
		return nil, err
	}
	f, _, err := s.get(ctx, loginHash, now)
	if err != nil {
		return nil, err
	}
	if !f.Granted {
		return nil, ErrPending
	}
	v, err := s.ts.TakeTransient(ctx, kindFlow, loginHash, now)
	if err != nil {
		return nil, err
	}
	if f, err = decodeFlow(v); err != nil {
		return nil, err
	}
	// The flow is taken: deliver it whatever becomes of its poll record,
	// which leads nowhere now and expires with it (an error here would
	// lose the app password).
	s.ts.TakeTransient(ctx, kindPoll, pollHash, now)
	return f, nil
}

// Delete implements [Store].
func (s *SharedStore) Delete(ctx context.Context, loginHash []byte) error {
	// Delete takes the flow expired or not, as MemoryStore does: the zero
	// time is before every expiry.
	var now time.Time
	v, err := s.ts.TakeTransient(ctx, kindFlow, loginHash, now)
	if err != nil {
		return err
	}
	f, err := decodeFlow(v)
	if err != nil {
		return err
	}
	if _, err := s.ts.TakeTransient(ctx, kindPoll, f.PollHash, now); err != nil && !errors.Is(err, auth.ErrNotFound) {
		return err
	}
	return nil
}

// DeleteExpired implements [Store].
func (s *SharedStore) DeleteExpired(ctx context.Context, now time.Time) ([]*Flow, error) {
	vs, err := s.ts.DeleteExpiredTransients(ctx, kindFlow, now)
	if err != nil {
		return nil, err
	}
	var granted []*Flow
	for _, v := range vs {
		if f, err := decodeFlow(v); err == nil && f.Granted {
			granted = append(granted, f)
		}
	}
	for _, kind := range []string{kindPoll, kindRate} {
		if _, err := s.ts.DeleteExpiredTransients(ctx, kind, now); err != nil {
			return granted, err
		}
	}
	return granted, nil
}

// count adds a request to the count under key (an address's keyed hash
// for one window, which ends at end), unless n are counted already; the
// count is a compare-and-swap, so every server's requests add up. It
// reports false when the window is full.
func (s *SharedStore) count(ctx context.Context, key []byte, end, now time.Time, n int) (bool, error) {
	const tries = 8 // then the contention itself is the answer: refuse
	for range tries {
		err := s.ts.PutTransient(ctx, kindRate, key, binary.BigEndian.AppendUint32(nil, 1), end, now)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, auth.ErrAlreadyExists) {
			return false, err
		}
		old, err := s.ts.Transient(ctx, kindRate, key, now)
		switch {
		case errors.Is(err, auth.ErrNotFound):
			continue // expired meanwhile
		case err != nil:
			return false, err
		case len(old) != 4 || binary.BigEndian.Uint32(old) >= uint32(n):
			return false, nil
		}
		next := binary.BigEndian.AppendUint32(nil, binary.BigEndian.Uint32(old)+1)
		switch err := s.ts.SwapTransient(ctx, kindRate, key, old, next, now); {
		case err == nil:
			return true, nil
		case !errors.Is(err, auth.ErrNotFound):
			return false, err
		}
	}
	return false, nil
}
