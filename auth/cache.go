package auth

import (
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
}

// credCache is a bounded positive cache and a short negative cache. When full,
// it evicts an arbitrary entry: cheap, lock-free on hits, and good enough for a
// working set that fits.
type credCache struct {
	mu      sync.RWMutex
	max     int
	ttl     int64
	negTTL  int64
	entries map[hashKey]*cacheEntry
	byID    map[string]hashKey
	neg     map[hashKey]int64 // expiry, unix nanos
	// gen changes on every invalidation; a lookup that began before it must
	// not cache what it read, or a revoked credential could come back.
	gen uint64
}

func newCredCache(max int, ttl, negTTL time.Duration) *credCache {
	return &credCache{
		max:     max,
		ttl:     int64(ttl),
		negTTL:  int64(negTTL),
		entries: map[hashKey]*cacheEntry{},
		byID:    map[string]hashKey{},
		neg:     map[hashKey]int64{},
	}
}

// get returns the fresh entry for k, or whether k is known not to exist.
func (c *credCache) get(k hashKey, now int64) (e *cacheEntry, unknown bool) {
	if c.max <= 0 {
		return nil, false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if e := c.entries[k]; e != nil && now-e.fetched < c.ttl {
		return e, false
	}
	if exp, ok := c.neg[k]; ok && now < exp {
		return nil, true
	}
	return nil, false
}

func (c *credCache) generation() uint64 {
	if c.max <= 0 {
		return 0
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

// put caches cred under k unless an invalidation happened since gen, and
// returns the entry to use for this request either way.
func (c *credCache) put(k hashKey, cred *StoredCredential, now int64, gen uint64) *cacheEntry {
	e := &cacheEntry{cred: cred, fetched: now}
	e.lastUsed.Store(cred.LastUsedAt.UnixNano())
	if c.max <= 0 {
		return e
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return e
	}
	if old := c.entries[k]; old != nil {
		// Keep the write gate: the store may not have the newest use yet.
		e.lastUsed.Store(max(e.lastUsed.Load(), old.lastUsed.Load()))
	} else if len(c.entries) >= c.max {
		for victim, ve := range c.entries {
			delete(c.entries, victim)
			delete(c.byID, ve.cred.ID)
			break
		}
	}
	c.entries[k] = e
	c.byID[cred.ID] = k
	return e
}

func (c *credCache) putUnknown(k hashKey, now int64, gen uint64) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if len(c.neg) >= c.max {
		for victim := range c.neg {
			delete(c.neg, victim)
			break
		}
	}
	c.neg[k] = now + c.negTTL
}

// invalidate drops the credentials with the given IDs, or all of userID's
// when ids is nil.
func (c *credCache) invalidate(userID string, ids ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if ids == nil {
		for k, e := range c.entries {
			if e.cred.UserID == userID {
				delete(c.entries, k)
				delete(c.byID, e.cred.ID)
			}
		}
		return
	}
	for _, id := range ids {
		if k, ok := c.byID[id]; ok {
			delete(c.entries, k)
			delete(c.byID, id)
		}
	}
}

// clear drops every cached credential, known or unknown.
func (c *credCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.entries)
	clear(c.byID)
	clear(c.neg)
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

// userCache remembers directory answers, bounded like credCache.
type userCache struct {
	mu      sync.RWMutex
	max     int
	entries map[string]*userEntry
}

func (c *userCache) get(login string) *userEntry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.entries[login]
}

func (c *userCache) put(login string, e *userEntry) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[login]; !ok && len(c.entries) >= c.max {
		for victim := range c.entries {
			delete(c.entries, victim)
			break
		}
	}
	c.entries[login] = e
}
