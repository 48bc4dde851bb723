package auth

import (
	"encoding/binary"
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// hashKey is an HMAC-SHA256 under the newest pepper: the cache key.
type hashKey [32]byte

// cacheEntry is a verified credential. key and cred are never modified
// once cached.
type cacheEntry struct {
	key     hashKey
	cred    *StoredCredential
	fetched int64 // unix nanos
	// quickUntil is when a cache hit stops answering for this credential
	// alone (unix nanos): never for a session, exactMargin before an
	// expiry, where the exact clock decides (see hotNow).
	quickUntil int64
	// lastUsed is the newest use already queued for the store (unix nanos);
	// the gate that coalesces last-used writes.
	lastUsed atomic.Int64
	// use is the audit record this credential's successful uses are
	// currently counted in (see auditQueue): a hit from the same address
	// and client only increments it.
	use atomic.Pointer[useRecord]
	// hot is the Principal of the last success and the owner answer it
	// was built from, returned again while that answer is current.
	hot atomic.Pointer[hotPrincipal]
}

// hotPrincipal is a Principal shared by the requests of one credential
// while its owner's directory answer (owner) stays current.
type hotPrincipal struct {
	owner *userEntry
	p     *Principal
}

// cacheShards is the number of independently locked parts of each cache.
// Writers of different credentials take different locks; readers of the
// credential cache take none; a power of two.
const cacheShards = 32

// credShard is one part of a credCache, padded so that two shards never
// share a cache line. Readers probe table without a lock; writers hold mu.
type credShard struct {
	table atomic.Pointer[credTable]
	// hits counts the successes answered from this shard (see
	// [Stats].CachedSuccesses): striped, so that cores share no counter.
	hits atomic.Uint64
	mu   sync.RWMutex // writers of table; byID; neg
	byID map[string]hashKey
	neg  map[hashKey]int64 // expiry, unix nanos
	_    [64]byte
}

func quickUntil(cred *StoredCredential) int64 {
	switch {
	case cred.Kind != KindAppPassword:
		return math.MinInt64
	case cred.ExpiresAt.IsZero():
		return math.MaxInt64
	}
	until := cred.ExpiresAt.Add(-exactMargin)
	if until.After(time.Unix(0, math.MaxInt64)) {
		return math.MaxInt64 // beyond what UnixNano can say
	}
	if until.Before(time.Unix(0, math.MinInt64)) {
		return math.MinInt64
	}
	return until.UnixNano()
}

// credTable is an open-addressing hash table of cache entries that readers
// probe with atomic loads only: a writer (under the shard's lock) fills,
// replaces or tombstones one slot at a time, and when live entries and
// tombstones fill three quarters of it, builds a new table and swaps it in
// whole. A reader that loaded the table before a write may miss that
// write, as it would had it read a moment earlier; one that begins after
// the write returns sees it.
type credTable struct {
	slots []atomic.Pointer[cacheEntry]
	live  int // entries; writers only
	used  int // entries and tombstones; writers only
}

// tombstone marks a deleted slot: probes go on past it.
var tombstone = &cacheEntry{}

func newCredTable(size int) *credTable {
	n := 8
	for n*3/4 <= size {
		n *= 2
	}
	return &credTable{slots: make([]atomic.Pointer[cacheEntry], n)}
}

// home is k's first slot. The key is an HMAC: any 8 of its bytes are uniform.
func (t *credTable) home(k *hashKey) int {
	return int(binary.LittleEndian.Uint64(k[8:16]) & uint64(len(t.slots)-1))
}

// get returns the entry for k, or nil. It takes no lock: there is always
// an empty slot, which ends the probe.
func (t *credTable) get(k *hashKey) *cacheEntry {
	mask := len(t.slots) - 1
	for i := t.home(k); ; i = (i + 1) & mask {
		e := t.slots[i].Load()
		if e == nil {
			return nil
		}
		if e != tombstone && e.key.equal(k) {
			return e
		}
	}
}

// equal is k == *o, in four word comparisons instead of a call.
func (k *hashKey) equal(o *hashKey) bool {
	le := binary.LittleEndian
	return le.Uint64(k[0:]) == le.Uint64(o[0:]) && le.Uint64(k[8:]) == le.Uint64(o[8:]) &&
		le.Uint64(k[16:]) == le.Uint64(o[16:]) && le.Uint64(k[24:]) == le.Uint64(o[24:])
}

// find returns k's slot, or -1 and the first free slot (tombstone or
// empty) of its probe. Writers only.
func (t *credTable) find(k *hashKey) (at, free int) {
	mask := len(t.slots) - 1
	free = -1
	for i := t.home(k); ; i = (i + 1) & mask {
		e := t.slots[i].Load()
		switch {
		case e == nil:
			if free < 0 {
				free = i
			}
			return -1, free
		case e == tombstone:
			if free < 0 {
				free = i
			}
		case e.key == *k:
			return i, -1
		}
	}
}

func (t *credTable) remove(i int) {
	t.slots[i].Store(tombstone)
	t.live--
}

// credCache is a bounded positive cache and a short negative cache, split
// into shards by the key's first byte (an HMAC: uniform). When the cache is
// full, an insert evicts an arbitrary entry of its shard: cheap, and good
// enough for a working set that fits.
type credCache struct {
	max    int // over all shards
	ttl    int64
	negTTL int64
	shards [cacheShards]credShard
	// n and nNeg count entries over all shards, to bound the whole cache
	// (a full cache evicts from the shard it inserts into; an empty shard
	// takes one entry beyond the bound, so at most cacheShards more).
	n, nNeg atomic.Int64
	// gen changes on every invalidation; a lookup that began before it must
	// not cache what it read, or a revoked credential could come back.
	// invalidate bumps it before it takes any shard's lock, and put checks
	// it under the shard's lock (see put).
	gen atomic.Uint64
}

func newCredCache(max int, ttl, negTTL time.Duration) *credCache {
	c := &credCache{max: max, ttl: int64(ttl), negTTL: int64(negTTL)}
	for i := range c.shards {
		s := &c.shards[i]
		s.table.Store(newCredTable(0))
		s.byID, s.neg = map[string]hashKey{}, map[hashKey]int64{}
	}
	return c
}

func (c *credCache) shard(k *hashKey) *credShard { return &c.shards[k[0]%cacheShards] }

// get returns the fresh entry for k, or whether k is known not to exist.
// A hit takes no lock.
func (c *credCache) get(k *hashKey, now int64) (e *cacheEntry, unknown bool) {
	if c.max <= 0 {
		return nil, false
	}
	s := c.shard(k)
	if e = s.table.Load().get(k); e != nil {
		if now-e.fetched < c.ttl {
			return e, false
		}
		return nil, false
	}
	s.mu.RLock()
	exp := s.neg[*k]
	s.mu.RUnlock()
	return nil, now < exp
}

// hit counts a success answered by e (see [Stats].CachedSuccesses).
func (c *credCache) hit(e *cacheEntry) { c.shard(&e.key).hits.Add(1) }

// hits returns the successes answered from the cache since it was made.
func (c *credCache) hits() uint64 {
	var n uint64
	for i := range c.shards {
		n += c.shards[i].hits.Load()
	}
	return n
}

func (c *credCache) generation() uint64 { return c.gen.Load() }

// put caches cred under k unless an invalidation happened since gen, and
// returns the entry to use for this request either way.
func (c *credCache) put(k hashKey, cred *StoredCredential, now int64, gen uint64) *cacheEntry {
	e := &cacheEntry{key: k, cred: cred, fetched: now, quickUntil: quickUntil(cred)}
	e.lastUsed.Store(cred.LastUsedAt.UnixNano())
	if c.max <= 0 {
		return e
	}
	s := c.shard(&k)
	s.mu.Lock()
	defer s.mu.Unlock()
	// An invalidation bumps gen before it locks this shard: either it has
	// not reached this shard yet (and will drop what is put now), or gen
	// already differs here.
	if gen != c.gen.Load() {
		return e
	}
	t := s.table.Load()
	at, free := t.find(&k)
	if at >= 0 {
		// Keep the write gate: the store may not have the newest use yet.
		old := t.slots[at].Load()
		e.lastUsed.Store(max(e.lastUsed.Load(), old.lastUsed.Load()))
		e.use.Store(old.use.Load())
		t.slots[at].Store(e)
		s.byID[cred.ID] = k
		return e
	}
	if c.n.Load() >= int64(c.max) && t.live > 0 {
		// Evict the first entry after k's home: arbitrary, as keys are.
		mask := len(t.slots) - 1
		for i := t.home(&k); ; i = (i + 1) & mask {
			if v := t.slots[i].Load(); v != nil && v != tombstone {
				delete(s.byID, v.cred.ID)
				t.remove(i)
				break
			}
		}
		_, free = t.find(&k)
	} else {
		c.n.Add(1)
	}
	if _, ok := s.neg[k]; ok {
		delete(s.neg, k)
		c.nNeg.Add(-1)
	}
	if t.slots[free].Load() == nil {
		t.used++
	}
	t.slots[free].Store(e)
	t.live++
	if t.used >= len(t.slots)*3/4 {
		s.rebuild(t)
	}
	s.byID[cred.ID] = k
	return e
}

// rebuild swaps in a new table holding t's live entries, room for as many
// again, and no tombstones. Writers only; readers of t still find every
// entry they would have.
func (s *credShard) rebuild(t *credTable) {
	nt := newCredTable(2 * t.live)
	for i := range t.slots {
		if e := t.slots[i].Load(); e != nil && e != tombstone {
			_, free := nt.find(&e.key)
			nt.slots[free].Store(e)
			nt.live++
			nt.used++
		}
	}
	s.table.Store(nt)
}

func (c *credCache) putUnknown(k hashKey, now int64, gen uint64) {
	if c.max <= 0 {
		return
	}
	s := c.shard(&k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen != c.gen.Load() {
		return
	}
	// A stale entry for k (past ttl: revoked elsewhere) would hide the
	// negative one from get.
	t := s.table.Load()
	if at, _ := t.find(&k); at >= 0 {
		delete(s.byID, t.slots[at].Load().cred.ID)
		t.remove(at)
		c.n.Add(-1)
	}
	if _, ok := s.neg[k]; !ok {
		if c.nNeg.Load() >= int64(c.max) && len(s.neg) > 0 {
			for victim := range s.neg {
				delete(s.neg, victim)
				break
			}
		} else {
			c.nNeg.Add(1)
		}
	}
	s.neg[k] = now + c.negTTL
}

// invalidate drops the credentials with the given IDs, or all of userID's
// when ids is nil.
func (c *credCache) invalidate(userID string, ids ...string) {
	c.gen.Add(1)
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		t := s.table.Load()
		if ids == nil {
			for j := range t.slots {
				if e := t.slots[j].Load(); e != nil && e != tombstone && e.cred.UserID == userID {
					delete(s.byID, e.cred.ID)
					t.remove(j)
					c.n.Add(-1)
				}
			}
		}
		for _, id := range ids {
			if k, ok := s.byID[id]; ok {
				if at, _ := t.find(&k); at >= 0 {
					t.remove(at)
					c.n.Add(-1)
				}
				delete(s.byID, id)
			}
		}
		s.mu.Unlock()
	}
}

// clear drops every cached credential, known or unknown.
func (c *credCache) clear() {
	c.gen.Add(1)
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		c.n.Add(-int64(s.table.Load().live))
		c.nNeg.Add(-int64(len(s.neg)))
		s.table.Store(newCredTable(0))
		clear(s.byID)
		clear(s.neg)
		s.mu.Unlock()
	}
}

// sizes returns how many credentials and unknown hashes are cached.
func (c *credCache) sizes() (creds, unknown int) {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		creds, unknown = creds+s.table.Load().live, unknown+len(s.neg)
		s.mu.RUnlock()
	}
	return creds, unknown
}

// userEntry is the last directory answer for one login.
type userEntry struct {
	user     *User       // nil: the login was not found
	due      int64       // unix nanos when the directory is to be asked again
	lastGood int64       // unix nanos of the last answer that found the user
	failing  bool        // the last re-check found the directory down
	checking atomic.Bool // a request is asking the directory about this login
	// replaced: a newer answer took this one's place in the cache, or it
	// was evicted; a Principal built from it is not reused.
	replaced atomic.Bool
}

// servable reports whether e's last good answer may still be used at now
// while the directory cannot answer.
func (e *userEntry) servable(now int64, grace time.Duration) bool {
	return e != nil && e.user != nil && now-e.lastGood < int64(grace)
}

// userShard is one part of a userCache, padded like credShard.
type userShard struct {
	mu      sync.RWMutex
	entries map[string]*userEntry
	_       [64]byte
}

// userCache remembers directory answers, bounded and sharded like
// credCache (by a seeded hash of the login).
type userCache struct {
	max    int // over all shards, exceeded by at most cacheShards (see credCache.n)
	n      atomic.Int64
	seed   maphash.Seed
	shards [cacheShards]userShard
}

func newUserCache(max int) *userCache {
	c := &userCache{max: max, seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].entries = map[string]*userEntry{}
	}
	return c
}

func (c *userCache) shard(login string) *userShard {
	return &c.shards[maphash.String(c.seed, login)%cacheShards]
}

func (c *userCache) get(login string) *userEntry {
	s := c.shard(login)
	s.mu.RLock()
	e := s.entries[login]
	s.mu.RUnlock()
	return e
}

func (c *userCache) put(login string, e *userEntry) {
	if c.max <= 0 {
		return
	}
	s := c.shard(login)
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.entries[login]; ok {
		old.replaced.Store(true)
	} else if c.n.Load() >= int64(c.max) && len(s.entries) > 0 {
		for victim, ve := range s.entries {
			ve.replaced.Store(true)
			delete(s.entries, victim)
			break
		}
	} else {
		c.n.Add(1)
	}
	s.entries[login] = e
}

// len returns how many directory answers are cached.
func (c *userCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.entries)
		s.mu.RUnlock()
	}
	return n
}
