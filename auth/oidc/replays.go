package oidc

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/appauth/appauth/auth"
)

// kindLogoutJTI names sharedReplays' records in the TransientStore.
const kindLogoutJTI = "oidc/logout-jti"

// jtiCache remembers the IDs of the logout tokens already used.
type jtiCache interface {
	// first records id until until and reports whether it is new; an
	// error (an outage) means it cannot tell.
	first(ctx context.Context, id string, until, now time.Time) (bool, error)
}

var (
	_ jtiCache = (*replayCache)(nil)
	_ jtiCache = (*sharedReplays)(nil)
)

// sharedReplays is a jtiCache on an [auth.TransientStore]: recording an ID
// is one PutTransient, which of two servers succeeds for one only, so a
// token replayed to another server is refused. Every 100th record also
// deletes the expired ones.
type sharedReplays struct {
	ts   auth.TransientStore
	puts atomic.Uint64
}

func (s *sharedReplays) first(ctx context.Context, id string, until, now time.Time) (bool, error) {
	if s.puts.Add(1)%100 == 0 {
		if _, err := s.ts.DeleteExpiredTransients(ctx, kindLogoutJTI, now); err != nil {
			return false, fmt.Errorf("oidc: purge used logout tokens: %w", unavailable(err))
		}
	}
	// A hash: the store's records do not reveal the tokens' IDs.
	key := sha256.Sum256([]byte("appauth/oidc logout jti v1\x00" + id))
	err := s.ts.PutTransient(ctx, kindLogoutJTI, key[:], []byte{1}, until, now)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, auth.ErrAlreadyExists):
		return false, nil
	}
	return false, fmt.Errorf("oidc: record the logout token: %w", unavailable(err))
}
