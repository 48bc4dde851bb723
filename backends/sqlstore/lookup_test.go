package sqlstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/internal/testenv"
)

// fakeHash is a distinct 32-byte hash per n.
func fakeHash(n int) []byte {
	h := sha256.Sum256([]byte(fmt.Sprint("credential ", n)))
	return h[:]
}

// fakeDB answers lookups from rows and records every query; the first
// query blocks until release is closed when block is set.
type fakeDB struct {
	rows    map[string]row
	block   bool
	started chan struct{} // closed when the first query starts
	release chan struct{}
	err     error

	mu      sync.Mutex
	queries [][][]byte
	ctxs    []context.Context
}

func newFakeDB(n int, block bool) *fakeDB {
	f := &fakeDB{rows: map[string]row{}, block: block, started: make(chan struct{}), release: make(chan struct{})}
	for i := range n {
		f.rows[string(fakeHash(i))] = row{ID: fmt.Sprint("id-", i), Kind: string(auth.KindAppPassword), UserID: "u", Hash: fakeHash(i), Scopes: "files"}
	}
	return f
}

func (f *fakeDB) query(ctx context.Context, hashes [][]byte) ([]row, error) {
	f.mu.Lock()
	first := len(f.queries) == 0
	f.queries = append(f.queries, hashes)
	f.ctxs = append(f.ctxs, ctx)
	f.mu.Unlock()
	if first && f.block {
		close(f.started)
		<-f.release
	}
	if f.err != nil {
		return nil, f.err
	}
	var out []row
	for _, h := range hashes {
		if r, ok := f.rows[string(h)]; ok {
			r.Hash = bytes.Clone(r.Hash)
			out = append(out, r)
		}
	}
	return out, nil
}

func (f *fakeDB) coalescer(slots int) *coalescer {
	return &coalescer{
		one:   func(ctx context.Context, h []byte) ([]row, error) { return f.query(ctx, [][]byte{h}) },
		many:  f.query,
		slots: slots,
	}
}

func (f *fakeDB) sizes() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	var n []int
	for _, q := range f.queries {
		n = append(n, len(q))
	}
	return n
}

// waitQueued makes c signal each lookup that joins its queue.
func waitQueued(c *coalescer) chan struct{} {
	ch := make(chan struct{}, maxQueued)
	c.queued = func() { ch <- struct{}{} }
	return ch
}

// waitIdle waits until c has no query in flight and nothing queued.
func waitIdle(t *testing.T, c *coalescer) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		c.mu.Lock()
		idle := c.running == 0 && len(c.queue) == 0
		c.mu.Unlock()
		if idle {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the coalescer did not become idle in 10s")
		}
	}
}

type result struct {
	cred *auth.StoredCredential
	err  error
}

// TestLoneLookupIsNotDelayed: a lookup that finds a free slot is sent at
// once as a one-hash query, on the caller's goroutine.
func TestLoneLookupIsNotDelayed(t *testing.T) {
	f := newFakeDB(3, false)
	c := f.coalescer(1)
	got, err := c.get(t.Context(), fakeHash(1))
	if err != nil || got.ID != "id-1" {
		t.Fatalf("get = %+v, %v", got, err)
	}
	if _, err := c.get(t.Context(), fakeHash(7)); !errors.Is(err, sql.ErrNoRows) {
		t.Fatalf("unknown hash: %v, want sql.ErrNoRows", err)
	}
	if s := f.sizes(); !slices.Equal(s, []int{1, 1}) {
		t.Fatalf("query sizes %v, want [1 1]", s)
	}
	if c.running != 0 || len(c.queue) != 0 {
		t.Fatalf("slot not released: running %d, queued %d", c.running, len(c.queue))
	}
}

// TestQueuedLookupsShareOneQuery: lookups that find every slot busy are
// answered together by the next query, each its own credential; duplicates
// are asked once, unknown hashes are ErrNoRows.
func TestQueuedLookupsShareOneQuery(t *testing.T) {
	f := newFakeDB(10, true)
	c := f.coalescer(1)
	queued := waitQueued(c)
	first := make(chan result, 1)
	go func() { cr, err := c.get(t.Context(), fakeHash(0)); first <- result{cr, err} }()
	<-f.started

	// 8 known (hash 3 twice), 1 unknown.
	asks := []int{1, 2, 3, 3, 4, 5, 6, 7, 99}
	results := make([]chan result, len(asks))
	for i, n := range asks {
		results[i] = make(chan result, 1)
		go func() { cr, err := c.get(t.Context(), fakeHash(n)); results[i] <- result{cr, err} }()
	}
	for range asks {
		<-queued
	}
	close(f.release)
	if r := <-first; r.err != nil || r.cred.ID != "id-0" {
		t.Fatalf("first: %+v, %v", r.cred, r.err)
	}
	var threes []*auth.StoredCredential
	for i, n := range asks {
		r := <-results[i]
		if n == 99 {
			if !errors.Is(r.err, sql.ErrNoRows) {
				t.Errorf("unknown hash: %v, want sql.ErrNoRows", r.err)
			}
			continue
		}
		if r.err != nil || r.cred.ID != fmt.Sprint("id-", n) || !bytes.Equal(r.cred.Hash, fakeHash(n)) || !slices.Equal(r.cred.Scopes, []string{"files"}) {
			t.Errorf("lookup of %d: %+v, %v", n, r.cred, r.err)
		}
		if n == 3 {
			threes = append(threes, r.cred)
		}
	}
	if len(threes) == 2 && (threes[0] == threes[1] || &threes[0].Hash[0] == &threes[1].Hash[0] || &threes[0].Scopes[0] == &threes[1].Scopes[0]) {
		t.Error("two lookups of one hash share memory; each caller must get its own copy")
	}
	if s := f.sizes(); !slices.Equal(s, []int{1, 8}) {
		t.Fatalf("query sizes %v, want [1 8]: the 9 queued lookups (8 distinct hashes) in one query", s)
	}
}

// TestBatchesAreBounded: more distinct hashes than maxBatch queue up;
// they go out in queries of at most maxBatch.
func TestBatchesAreBounded(t *testing.T) {
	n := 2*maxBatch + 1
	f := newFakeDB(n+1, true)
	c := f.coalescer(1)
	queued := waitQueued(c)
	var wg sync.WaitGroup
	wg.Go(func() { c.get(t.Context(), fakeHash(n)) })
	<-f.started
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			cr, err := c.get(t.Context(), fakeHash(i))
			if err == nil && cr.ID != fmt.Sprint("id-", i) {
				err = fmt.Errorf("got %s", cr.ID)
			}
			errs <- err
		})
	}
	for range n {
		<-queued
	}
	close(f.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if s := f.sizes(); !slices.Equal(s, []int{1, maxBatch, maxBatch, 1}) {
		t.Fatalf("query sizes %v, want [1 %d %d 1]", s, maxBatch, maxBatch)
	}
}

// TestQueuedCallerGivesUp: a caller whose context ends stops waiting at
// once and costs the others nothing; a query whose callers have all gone
// is cancelled.
func TestQueuedCallerGivesUp(t *testing.T) {
	f := newFakeDB(5, true)
	c := f.coalescer(1)
	queued := waitQueued(c)
	go c.get(t.Context(), fakeHash(0))
	<-f.started

	ctx, cancel := context.WithCancel(t.Context())
	gaveUp := make(chan error, 1)
	go func() { _, err := c.get(ctx, fakeHash(1)); gaveUp <- err }()
	<-queued
	other := make(chan result, 1)
	go func() { cr, err := c.get(t.Context(), fakeHash(2)); other <- result{cr, err} }()
	<-queued
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: %v, want context.Canceled", err)
	}
	close(f.release)
	if r := <-other; r.err != nil || r.cred.ID != "id-2" {
		t.Fatalf("the other caller: %+v, %v", r.cred, r.err)
	}
	if s := f.sizes(); !slices.Equal(s, []int{1, 1}) {
		t.Fatalf("query sizes %v, want [1 1]: the caller that gave up is not asked for", s)
	}

	// Every caller of a batch gives up while its query runs: the query's
	// context is cancelled.
	g := newFakeDB(5, true)
	c = g.coalescer(1)
	queued = waitQueued(c)
	go c.get(t.Context(), fakeHash(0))
	<-g.started
	ctx, cancel = context.WithCancel(t.Context())
	done := make(chan error, 2)
	for _, n := range []int{1, 2} {
		go func() { _, err := c.get(ctx, fakeHash(n)); done <- err }()
		<-queued
	}
	hold := make(chan struct{})
	var batchCtx context.Context
	c.many = func(ctx context.Context, hashes [][]byte) ([]row, error) {
		batchCtx = ctx
		close(hold)
		<-ctx.Done()
		return nil, ctx.Err()
	}
	close(g.release)
	<-hold
	cancel()
	for range 2 {
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled caller: %v", err)
		}
	}
	select {
	case <-batchCtx.Done():
	case <-time.After(10 * time.Second): // only a bound for a broken build
		t.Fatal("the batch query outlived all its callers")
	}
}

// TestQueryErrorReachesEveryCaller: a failed shared query fails each of
// its lookups with the query's error (translated to ErrUnavailable by the
// Store), not with "not found".
func TestQueryErrorReachesEveryCaller(t *testing.T) {
	f := newFakeDB(5, true)
	f.err = errors.New("connection reset")
	c := f.coalescer(1)
	queued := waitQueued(c)
	go c.get(t.Context(), fakeHash(0))
	<-f.started
	errs := make(chan error, 3)
	for _, n := range []int{1, 2, 3} {
		go func() { _, err := c.get(t.Context(), fakeHash(n)); errs <- err }()
		<-queued
	}
	close(f.release)
	for range 3 {
		if err := <-errs; err != f.err {
			t.Fatalf("err = %v, want the query's error", err)
		}
	}
}

// TestLookupQueueIsBounded: while the database hangs, lookups beyond
// maxQueued fail at once with ErrUnavailable instead of piling up.
func TestLookupQueueIsBounded(t *testing.T) {
	f := newFakeDB(1, true)
	c := f.coalescer(1)
	go c.get(t.Context(), fakeHash(0))
	<-f.started
	c.mu.Lock()
	for i := range maxQueued {
		c.queue = append(c.queue, &lookup{hash: fakeHash(i), done: make(chan lookupResult, 1)})
	}
	c.mu.Unlock()
	if _, err := c.get(t.Context(), fakeHash(1)); !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	close(f.release)
}

// TestSharedLookupsOnTheDatabase runs queued lookups through the real
// batch statements of both dialects (PostgreSQL's array, SQLite's padded
// IN lists, sizes from 2 to past maxBatch) and checks every answer.
func TestSharedLookupsOnTheDatabase(t *testing.T) {
	for _, d := range []struct {
		name string
		open func(t *testing.T) (*Store, error)
	}{
		{"sqlite", func(t *testing.T) (*Store, error) {
			return OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "appauth.db"), &Options{MaxConcurrentLookups: 1})
		}},
		{"postgres", func(t *testing.T) (*Store, error) {
			return OpenPostgres(t.Context(), testenv.Postgres(t), &Options{MaxConcurrentLookups: 1})
		}},
	} {
		t.Run(d.name, func(t *testing.T) {
			s, err := d.open(t)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			const stored = maxBatch + 10
			for i := range stored {
				c := &auth.StoredCredential{ID: fmt.Sprint("id-", i), Kind: auth.KindAppPassword, UserID: fmt.Sprint("u-", i%7),
					Login: fmt.Sprint("user", i%7), Name: fmt.Sprint("device ", i), Scopes: []string{"files", "read-only"},
					Hash: fakeHash(i), KeyID: "1", Hint: "ABCD", CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)}
				if err := s.CreateCredential(t.Context(), c); err != nil {
					t.Fatal(err)
				}
			}
			// A slot held by a blocked lookup, so that the rest queue.
			one := s.lookups.one
			started, release := make(chan struct{}), make(chan struct{})
			var once sync.Once
			s.lookups.one = func(ctx context.Context, h []byte) ([]row, error) {
				if bytes.Equal(h, fakeHash(0)) {
					once.Do(func() { close(started); <-release })
				}
				return one(ctx, h)
			}
			queued := waitQueued(&s.lookups)
			for _, distinct := range []int{2, 3, 5, maxBatch, maxBatch + 1} {
				t.Run(fmt.Sprint(distinct, " distinct"), func(t *testing.T) {
					// The last subtest's batch may still be releasing its
					// slot: the blocked lookup must find it free.
					waitIdle(t, &s.lookups)
					once = sync.Once{}
					started, release = make(chan struct{}), make(chan struct{})
					firstDone := make(chan error, 1)
					go func() { _, err := s.CredentialByHash(t.Context(), fakeHash(0)); firstDone <- err }()
					<-started
					before := s.LookupStats()
					// distinct hashes from 1, the last one unknown, and
					// hash 1 asked twice.
					asks := []int{1}
					for i := 1; i < distinct; i++ {
						asks = append(asks, i)
					}
					asks = append(asks, stored+100)
					results := make([]chan result, len(asks))
					for i, n := range asks {
						results[i] = make(chan result, 1)
						go func() { cr, err := s.CredentialByHash(t.Context(), fakeHash(n)); results[i] <- result{cr, err} }()
						<-queued
					}
					close(release)
					if err := <-firstDone; err != nil {
						t.Fatal(err)
					}
					for i, n := range asks {
						r := <-results[i]
						if n >= stored {
							if !errors.Is(r.err, auth.ErrNotFound) {
								t.Errorf("unknown hash: %v, want ErrNotFound", r.err)
							}
							continue
						}
						want := fmt.Sprint("id-", n)
						if r.err != nil || r.cred.ID != want || !bytes.Equal(r.cred.Hash, fakeHash(n)) ||
							r.cred.Login != fmt.Sprint("user", n%7) || !slices.Equal(r.cred.Scopes, []string{"files", "read-only"}) ||
							!r.cred.CreatedAt.Equal(time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)) {
							t.Errorf("lookup of %d: %+v, %v", n, r.cred, r.err)
						}
					}
					after := s.LookupStats()
					wantQueries := uint64((distinct + maxBatch - 1) / maxBatch)
					if q, sh := after.Queries-before.Queries, after.Shared-before.Shared; q != wantQueries || sh != uint64(len(asks)) {
						t.Errorf("%d queued lookups took %d queries (%d shared), want %d (%d)", len(asks), q, sh, wantQueries, len(asks))
					}
				})
			}
		})
	}
}

// TestSQLiteLookupWaitsForASlotUnderItsContext: with every lookup slot
// taken, a lookup waits for one only until its context ends (an outage,
// ErrUnavailable), and takes the next one freed.
func TestSQLiteLookupWaitsForASlotUnderItsContext(t *testing.T) {
	s, err := OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "appauth.db"), &Options{MaxOpenConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	hash := fakeHash(1)
	if err := s.CreateCredential(t.Context(), &auth.StoredCredential{ID: "c1", Kind: auth.KindAppPassword, UserID: "alice", Login: "alice",
		Hash: hash, KeyID: "k1", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	slots := s.sqliteLookups.slots
	for range cap(slots) {
		slots <- struct{}{}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.CredentialByHash(ctx, hash); !errors.Is(err, auth.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("lookup with every slot taken: %v, want ErrUnavailable at its deadline", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.CredentialByHash(t.Context(), hash)
		done <- err
	}()
	<-slots
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("lookup after a slot was freed: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a lookup did not take the slot freed for it")
	}
}
