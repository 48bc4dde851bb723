//go:build !race

package auth

import (
	"testing"
	"time"
)

// TestUsageQueueAddQueuedAllocatesNothing: a last use of a credential whose
// update is already queued, and recent enough, changes nothing and
// allocates nothing (every cache miss queues one). Not under the race
// detector, whose allocation counts mean nothing.
func TestUsageQueueAddQueuedAllocatesNothing(t *testing.T) {
	var q usageQueue
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	u := Usage{UserID: "u-alice", ID: string([]byte("c1")), At: at, Addr: "192.0.2.7", Client: "DAVx5"}
	q.add(u, time.Minute)
	later := u
	later.At = at.Add(time.Second)
	if n := testing.AllocsPerRun(100, func() { q.add(later, time.Minute) }); n != 0 {
		t.Errorf("add of an already queued credential: %v allocations, want 0", n)
	}
	if got, _ := q.peek(u.ID); !got.At.Equal(at) {
		t.Errorf("queued update at %s, want the first (%s)", got.At, at)
	}
}
