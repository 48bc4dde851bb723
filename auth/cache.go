package auth

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// hashKey is an HMAC-SHA256 under the newest pepper: the cache key.
type hashKey [32]byte

// cacheEntry is a verified credential. cred is never modified once cached.
type cacheEntry struct {
	cred    *StoredCredential
	fetched int64 // unix nanos
	// lastUsed is the newest use already queued for the store (unix nanos);
	// the gate that coalesces last-used writes.
	lastUsed atomic.Int64
	// use is the audit record this credential's successful uses are
	// currently counted in (see auditQueue): a hit from the same address
	// and client only increments it.
	use atomic.Pointer[useRecord]
}

// cacheShards is the number of independently locked parts of each cache.
// Verifies of different credentials on different cores take different
// locks, so the hit path shares no mutex; a power of two.
const cacheShards = 32

// credShard is one part of a credCache, padded so that two shards' locks
// never share a cache line.
type credShard struct {
	mu      sync.RWMutex
	entries map[hashKey]*cacheEntry
	byID    map[string]hashKey
	neg     map[hashKey]int64 // expiry, unix nanos
	_       [64]byte
}

// credCache is a bounded positive cache and a short negative cache, split
// into shards by the key's first byte (an HMAC: uniform). When a shard is
// full, it evicts an arbitrary entry: cheap, and good enough for a working
// set that fits.
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
		s.entries, s.byID, s.neg = map[hashKey]*cacheEntry{}, map[string]hashKey{}, map[hashKey]int64{}
	}
	return c
}

func (c *credCache) shard(k *hashKey) *credShard { return &c.shards[k[0]%cacheShards] }

// get returns the fresh entry for k, or whether k is known not to exist.
func (c *credCache) get(k hashKey, now int64) (e *cacheEntry, unknown bool) {
	if c.max <= 0 {
		return nil, false
	}
	s := c.shard(&k)
	s.mu.RLock()
	e, exp := s.entries[k], int64(0)
	if e == nil {
		exp = s.neg[k]
	}
	s.mu.RUnlock()
	if e != nil && now-e.fetched < c.ttl {
		return e, false
	}
	return nil, e == nil && now < exp
}

func (c *credCache) generation() uint64 { return c.gen.Load() }

// put caches cred under k unless an invalidation happened since gen, and
// returns the entry to use for this request either way.
func (c *credCache) put(k hashKey, cred *StoredCredential, now int64, gen uint64) *cacheEntry {
	e := &cacheEntry{cred: cred, fetched: now}
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
	if old := s.entries[k]; old != nil {
		// Keep the write gate: the store may not have the newest use yet.
		e.lastUsed.Store(max(e.lastUsed.Load(), old.lastUsed.Load()))
		e.use.Store(old.use.Load())
	} else if c.n.Load() >= int64(c.max) && len(s.entries) > 0 {
		for victim, ve := range s.entries {
			delete(s.entries, victim)
			delete(s.byID, ve.cred.ID)
			break
		}
	} else {
		c.n.Add(1)
	}
	if _, ok := s.neg[k]; ok {
		delete(s.neg, k)
		c.nNeg.Add(-1)
	}
	s.entries[k] = e
	s.byID[cred.ID] = k
	return e
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
		if ids == nil {
			for k, e := range s.entries {
				if e.cred.UserID == userID {
					delete(s.entries, k)
					delete(s.byID, e.cred.ID)
					c.n.Add(-1)
				}
			}
		}
		for _, id := range ids {
			if k, ok := s.byID[id]; ok {
				delete(s.entries, k)
				delete(s.byID, id)
				c.n.Add(-1)
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
		c.n.Add(-int64(len(s.entries)))
		c.nNeg.Add(-int64(len(s.neg)))
		clear(s.entries)
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
		creds, unknown = creds+len(s.entries), unknown+len(s.neg)
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
	if _, ok := s.entries[login]; !ok {
		if c.n.Load() >= int64(c.max) && len(s.entries) > 0 {
			for victim := range s.entries {
				delete(s.entries, victim)
				break
			}
		} else {
			c.n.Add(1)
		}
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
