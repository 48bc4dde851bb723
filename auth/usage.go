package auth

import (
	"context"
	"sync"
	"time"
)

// usageQueue holds coalesced last-used updates until the background flusher
// writes them: at most one pending update per credential. A sync.Map keeps
// the common case (an update for this credential is already queued) free of
// locks, which matters when verifies run in parallel without a cache.
type usageQueue struct {
	pending sync.Map // credential ID -> *Usage
}

// add queues u unless an update for the same credential, less than
// interval older, is already queued. That case, the common one (every
// cache miss calls add), allocates nothing: u goes to the heap only when
// it is stored.
func (q *usageQueue) add(u Usage, interval time.Duration) {
	old, loaded := q.pending.Load(u.ID)
	if loaded && u.At.Sub(old.(*Usage).At) < interval {
		return
	}
	p := new(Usage)
	*p = u
	for {
		if !loaded {
			if old, loaded = q.pending.LoadOrStore(u.ID, p); !loaded {
				return
			}
		}
		if u.At.Sub(old.(*Usage).At) < interval || q.pending.CompareAndSwap(u.ID, old, p) {
			return
		}
		old, loaded = q.pending.Load(u.ID)
	}
}

// peek returns the pending update for id, if any.
func (q *usageQueue) peek(id string) (Usage, bool) {
	if v, ok := q.pending.Load(id); ok {
		return *v.(*Usage), true
	}
	return Usage{}, false
}

// len returns how many updates are pending.
func (q *usageQueue) len() int {
	n := 0
	q.pending.Range(func(_, _ any) bool { n++; return true })
	return n
}

// flush writes everything pending in one batch. On failure the batch is put
// back (newer updates that arrived meanwhile win) for the next attempt.
func (q *usageQueue) flush(ctx context.Context, s Store) error {
	var batch []Usage
	q.pending.Range(func(id, v any) bool {
		if q.pending.CompareAndDelete(id, v) {
			batch = append(batch, *v.(*Usage))
		}
		return true
	})
	if len(batch) == 0 {
		return nil
	}
	err := s.RecordUsage(ctx, batch)
	if err != nil {
		for _, u := range batch {
			q.pending.LoadOrStore(u.ID, &u)
		}
	}
	return err
}
