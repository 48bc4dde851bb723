package auth

import (
	"context"
	"sync"
)

// usageQueue holds coalesced last-used updates until the background flusher
// writes them: at most one pending update per credential, the newest.
type usageQueue struct {
	mu      sync.Mutex
	pending map[string]Usage // by credential ID
}

func (q *usageQueue) add(u Usage) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.pending == nil {
		q.pending = map[string]Usage{}
	}
	if old, ok := q.pending[u.ID]; !ok || u.At.After(old.At) {
		q.pending[u.ID] = u
	}
}

// peek returns the pending update for id, if any.
func (q *usageQueue) peek(id string) (Usage, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	u, ok := q.pending[id]
	return u, ok
}

// flush writes everything pending in one batch. On failure the batch is put
// back (newer updates that arrived meanwhile win) for the next attempt.
func (q *usageQueue) flush(ctx context.Context, s Store) error {
	q.mu.Lock()
	batch := make([]Usage, 0, len(q.pending))
	for _, u := range q.pending {
		batch = append(batch, u)
	}
	q.pending = nil
	q.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	err := s.RecordUsage(ctx, batch)
	if err != nil {
		for _, u := range batch {
			q.add(u)
		}
	}
	return err
}
