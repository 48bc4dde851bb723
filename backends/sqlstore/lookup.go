package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/appauth/appauth/auth"
)

// Coalescing of concurrent cache misses.
//
// On a cache miss the Manager asks CredentialByHash, one indexed SELECT. On
// PostgreSQL most of the cost of that SELECT is not the index lookup but
// the statement around it: a round trip, the server's per-statement work,
// and the system calls and context switches on both sides. So at most
// [Options.MaxConcurrentLookups] lookups run at once; a lookup that finds
// them all busy waits in a queue, and the next one to finish sends
// everything queued (up to maxBatch distinct hashes) as one query (see
// dialect.byHashes). There is no timer: a lookup that finds a
// free slot runs at once on its caller's goroutine, exactly as a single
// SELECT, so a lone request is never delayed, and a queued one waits at
// most for one query ahead of it.

// Defaults and bounds of the coalescing.
const (
	// DefaultMaxConcurrentLookups is [Options.MaxConcurrentLookups] on
	// PostgreSQL when zero: half of [DefaultMaxOpenConns]. Up to 8
	// concurrent misses each send their own SELECT at once, so a cold
	// verify keeps pace with a raw SELECT (BENCHMARKS.md, 8 workers: with
	// 2, six of them waited for a slot, and verifies ran at 0.64–0.84 of
	// the SELECT's throughput, 0.75–1.03 with 8); beyond 8, misses share
	// queries, and a burst of misses never holds more than half the pool.
	// The price is PostgreSQL's CPU in a storm of misses: in
	// BENCHMARKS.md's cold pass (16 clients) a query now carries about 1.1
	// lookups, not 2–5, and PostgreSQL spends 1.3–2 times the CPU per cold
	// request that it spent with 2 (1 shares the most). Set it lower where
	// many servers share one database and its CPU is what runs out.
	DefaultMaxConcurrentLookups = 8
	// maxBatch bounds the hashes of one query.
	maxBatch = 64
	// maxQueued bounds the lookups waiting for a slot: when the database
	// hangs, the ones behind it fail at once (ErrUnavailable) instead of
	// piling up. Each waiter's own deadline (the Manager's StoreTimeout)
	// ends its wait long before that in practice.
	maxQueued = 4096
)

// coalescer shares lookup queries among concurrent callers.
type coalescer struct {
	// one looks up one hash; many up to maxBatch distinct hashes. Either
	// returns the rows found, in any order.
	one  func(ctx context.Context, hash []byte) ([]row, error)
	many func(ctx context.Context, hashes [][]byte) ([]row, error)

	slots int

	mu      sync.Mutex
	running int       // queries in flight (slots taken)
	queue   []*lookup // waiting for a slot, oldest first

	// Counters for [Store.LookupStats].
	lookups, queries, batched atomic.Uint64

	// queued, if set (tests), is called after a lookup joined the queue.
	queued func()
}

// lookup is one queued CredentialByHash call.
type lookup struct {
	hash []byte
	// deadline is its caller's context's; zero: none.
	deadline time.Time
	done     chan lookupResult // buffered: the sender never waits
	// Under coalescer.mu: the batch that took it, or that its caller gave
	// up before any did.
	batch *batch
	gone  bool
}

type lookupResult struct {
	cred *auth.StoredCredential
	err  error
}

// batch is one query for queued lookups. Its context is cancelled once
// every caller in it has stopped waiting, and ends at the latest of their
// deadlines: no caller's cancellation fails another's lookup, and no query
// outlives all of them (on PostgreSQL, a query on a hung server ends at
// its context's deadline, not at a cancellation: see pgconn.go).
type batch struct {
	lookups []*lookup
	hashes  [][]byte // their distinct hashes
	ctx     context.Context
	cancel  context.CancelFunc
	waiting atomic.Int32
}

// get returns the credential whose hash is hash, or an error for
// translate.
func (c *coalescer) get(ctx context.Context, hash []byte) (*auth.StoredCredential, error) {
	c.lookups.Add(1)
	c.mu.Lock()
	if c.running < c.slots {
		c.running++
		c.mu.Unlock()
		c.queries.Add(1)
		rows, err := c.one(ctx, hash)
		c.release()
		if err != nil {
			return nil, err
		}
		return pick(rows, hash, false)
	}
	if len(c.queue) >= maxQueued {
		c.mu.Unlock()
		return nil, fmt.Errorf("%w: %d credential lookups already waiting", auth.ErrUnavailable, len(c.queue))
	}
	l := &lookup{hash: hash, done: make(chan lookupResult, 1)}
	l.deadline, _ = ctx.Deadline()
	c.queue = append(c.queue, l)
	queued := c.queued
	c.mu.Unlock()
	if queued != nil {
		queued()
	}
	select {
	case r := <-l.done:
		return r.cred, r.err
	case <-ctx.Done():
	}
	c.mu.Lock()
	if l.batch == nil {
		l.gone = true // dropped by the next take
	} else if l.batch.waiting.Add(-1) == 0 {
		l.batch.cancel()
	}
	c.mu.Unlock()
	select {
	case r := <-l.done: // answered at the same moment
		return r.cred, r.err
	default:
	}
	return nil, ctx.Err()
}

// release hands the caller's slot to the queue, or frees it.
func (c *coalescer) release() {
	if b := c.take(); b != nil {
		go c.drain(b)
	}
}

// take returns the next batch from the queue, keeping the slot, or frees
// the slot and returns nil when nothing is queued.
func (c *coalescer) take() *batch {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ls []*lookup
	var hashes [][]byte
	n := 0
	for _, l := range c.queue {
		if l.gone {
			n++
			continue
		}
		if !hasHash(hashes, l.hash) {
			if len(hashes) == maxBatch {
				break
			}
			hashes = append(hashes, l.hash)
		}
		ls = append(ls, l)
		n++
	}
	c.queue = c.queue[:copy(c.queue, c.queue[n:])]
	if len(ls) == 0 {
		c.running--
		return nil
	}
	b := &batch{lookups: ls, hashes: hashes}
	if d := latest(ls); d.IsZero() {
		b.ctx, b.cancel = context.WithCancel(context.Background())
	} else {
		b.ctx, b.cancel = context.WithDeadline(context.Background(), d)
	}
	b.waiting.Store(int32(len(ls)))
	for _, l := range ls {
		l.batch = b
	}
	return b
}

// latest returns the latest deadline of ls, or zero if one has none.
func latest(ls []*lookup) time.Time {
	var d time.Time
	for _, l := range ls {
		if l.deadline.IsZero() {
			return time.Time{}
		}
		if l.deadline.After(d) {
			d = l.deadline
		}
	}
	return d
}

// hasHash reports whether hashes holds hash. Batches are small.
func hasHash(hashes [][]byte, hash []byte) bool {
	for _, h := range hashes {
		if bytes.Equal(h, hash) {
			return true
		}
	}
	return false
}

// drain runs batches on one slot until the queue is empty.
func (c *coalescer) drain(b *batch) {
	for ; b != nil; b = c.take() {
		c.run(b)
	}
}

// run sends one batch's query and answers each of its lookups.
func (c *coalescer) run(b *batch) {
	defer b.cancel()
	c.queries.Add(1)
	c.batched.Add(uint64(len(b.lookups)))
	var rows []row
	var err error
	if len(b.hashes) == 1 {
		rows, err = c.one(b.ctx, b.hashes[0])
	} else {
		rows, err = c.many(b.ctx, b.hashes)
	}
	for i, l := range b.lookups {
		r := lookupResult{err: err}
		if err == nil {
			// Every caller gets its own copy: the Manager keeps what it
			// is given in its cache.
			r.cred, r.err = pick(rows, l.hash, i > 0)
		}
		l.done <- r
	}
}

// pick returns the row whose hash is hash as a credential (its hash cloned
// if clone), or ErrNotFound.
func pick(rows []row, hash []byte, clone bool) (*auth.StoredCredential, error) {
	for i := range rows {
		if bytes.Equal(rows[i].Hash, hash) {
			c := rows[i].credential()
			if clone {
				c.Hash = bytes.Clone(c.Hash)
			}
			return c, nil
		}
	}
	return nil, sql.ErrNoRows
}
