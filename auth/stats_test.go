package auth_test

import (
	"sync"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
)

// TestVerifyEventsCarryDurationAndCache: verify decisions say how long they
// took and whether the cache answered; the store's outage is named.
func TestVerifyEventsCarryDurationAndCache(t *testing.T) {
	var mu sync.Mutex
	var got []auth.Event
	e := newEnv(t, func(o *auth.Options) {
		o.OnEvent = func(ev auth.Event) { mu.Lock(); got = append(got, ev); mu.Unlock() }
	})
	_, secret := e.issue(t, e.alice, "phone")
	_, bobs := e.issue(t, e.bob, "laptop")
	for range 2 {
		if _, err := e.auth(t, "alice", secret); err != nil {
			t.Fatal(err)
		}
	}
	e.store.Fail(auth.ErrUnavailable)
	if _, err := e.auth(t, "bob", bobs); err == nil {
		t.Fatal("authenticated during an outage")
	}
	want := []struct {
		typ    auth.EventType
		cache  auth.CacheOutcome
		reason string
	}{
		{auth.EventIssued, auth.CacheNone, ""},
		{auth.EventIssued, auth.CacheNone, ""},
		{auth.EventAuthenticated, auth.CacheMiss, ""},
		{auth.EventAuthenticated, auth.CacheHit, ""},
		{auth.EventUnavailable, auth.CacheMiss, "store"},
	}
	if len(got) != len(want) {
		t.Fatalf("events = %+v, want %d", got, len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Type != w.typ || g.Cache != w.cache || g.Reason != w.reason {
			t.Errorf("event %d = %s cache=%s reason=%q, want %s cache=%s reason=%q", i, g.Type, g.Cache, g.Reason, w.typ, w.cache, w.reason)
		}
		// Every verify decision but a cache hit (a sample of which is
		// measured, see TestHitDurationsAreSampled) carries its duration.
		if verify := g.Type != auth.EventIssued; verify != (g.Duration > 0) && g.Cache != auth.CacheHit {
			t.Errorf("event %d (%s): Duration = %v", i, g.Type, g.Duration)
		}
	}
	if s := e.m.Stats(); s.CachedCredentials != 1 || s.GraceServed != 0 {
		t.Errorf("Stats = %+v, want one cached credential, nothing served in grace", s)
	}
}

// TestStatsGraceServed: requests served from the last good directory
// answer while the directory is down are counted, and only those.
func TestStatsGraceServed(t *testing.T) {
	e := newEnv(t, nil)
	_, secret := e.issue(t, e.alice, "phone")
	if _, err := e.auth(t, "alice", secret); err != nil {
		t.Fatal(err)
	}
	if n := e.m.Stats().GraceServed; n != 0 {
		t.Fatalf("GraceServed = %d with the directory up", n)
	}
	e.dir.down.Store(true)
	e.clock.Add(10 * time.Minute) // past OwnerCheckInterval, within the grace period
	for range 3 {
		if _, err := e.auth(t, "alice", secret); err != nil {
			t.Fatalf("within the grace period: %v", err)
		}
	}
	if n := e.m.Stats().GraceServed; n != 3 {
		t.Errorf("GraceServed = %d, want 3", n)
	}
}

// TestHitDurationsAreSampled: a cache hit's duration is measured about
// once in 64 (a clock read is a tenth of a hit), a miss's always.
func TestHitDurationsAreSampled(t *testing.T) {
	var mu sync.Mutex
	var hits, timed, misses, missesTimed int
	e := newEnv(t, func(o *auth.Options) {
		o.OnEvent = func(ev auth.Event) {
			mu.Lock()
			defer mu.Unlock()
			if ev.Type != auth.EventAuthenticated {
				return
			}
			switch ev.Cache {
			case auth.CacheHit:
				hits++
				if ev.Duration > 0 {
					timed++
				}
			case auth.CacheMiss:
				misses++
				if ev.Duration > 0 {
					missesTimed++
				}
			}
		}
	})
	_, secret := e.issue(t, e.alice, "phone")
	for range 6400 {
		if _, err := e.auth(t, "alice", secret); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if misses != 1 || missesTimed != 1 || hits != 6399 {
		t.Fatalf("%d misses (%d timed), %d hits; want 1 timed miss and 6399 hits", misses, missesTimed, hits)
	}
	if timed == 0 || timed > hits/8 {
		t.Errorf("%d of %d hits carry a duration, want about one in 64", timed, hits)
	}
}
