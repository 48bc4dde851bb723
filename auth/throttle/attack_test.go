package throttle_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
)

// TestThrottleNATSuccessesDoNotResetGuesses: an attacker behind the same
// NAT address as the victim's phone guesses at the victim's login, and
// successes keep arriving from that address (the attacker's own account and
// the victim's phone). However often the attacker retries, at most
// LoginLockout guesses at the victim are evaluated within ForgetAfter.
func TestThrottleNATSuccessesDoNotResetGuesses(t *testing.T) {
	c := newClock()
	th := newThrottle(t, c, nil)
	const nat = "198.51.100.7"
	evaluated, refused := 0, 0
	start := c.Now()
	for i := 0; c.Now().Sub(start) < 23*time.Hour; i++ {
		// Every few guesses, both the attacker's own account and the
		// victim's phone sign in successfully from the same address.
		if i%3 == 0 {
			for _, login := range []string{"mallory", "alice"} {
				ok := auth.Attempt{Username: login, Password: "right", RemoteAddr: nat}
				if th.Allow(t.Context(), ok) == nil {
					th.Done(ok, true)
				}
			}
		}
		g := guess("alice", nat, i)
		if err := th.Allow(t.Context(), g); err != nil {
			refused++
		} else {
			evaluated++
			th.Done(g, false)
		}
		c.Add(time.Minute)
	}
	if refused == 0 {
		t.Fatal("no guess refused")
	}
	if evaluated > 100 {
		t.Errorf("%d guesses at one login from one address evaluated in 23h, want at most LoginLockout (100)", evaluated)
	}
	t.Logf("%d guesses evaluated, %d refused", evaluated, refused)
}

// TestThrottleTrustedPrefixHasABound: an address the victim signed in from
// (trusted for the login) still gets at most LoginLockout guesses at it.
func TestThrottleTrustedPrefixHasABound(t *testing.T) {
	c := newClock()
	th := newThrottle(t, c, nil)
	const home = "203.0.113.5"
	th.Done(auth.Attempt{Username: "alice", RemoteAddr: home}, true)
	evaluated := 0
	for i := range 200 {
		g := guess("alice", home, i)
		if th.Allow(t.Context(), g) == nil {
			evaluated++
			th.Done(g, false)
			// The victim's device keeps signing in from home.
			th.Done(auth.Attempt{Username: "alice", RemoteAddr: home}, true)
		}
		c.Add(15 * time.Minute / 2)
	}
	if evaluated > 100 {
		t.Errorf("%d of 200 guesses from a trusted address evaluated within ForgetAfter, want at most 100", evaluated)
	}
}

// TestThrottleBurst: 60 parallel attempts from one fresh address, none of
// them reported yet: at most AddressLimit are allowed.
func TestThrottleBurst(t *testing.T) {
	th := newThrottle(t, newClock(), nil)
	var mu sync.Mutex
	allowed := 0
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Go(func() {
			if th.Allow(t.Context(), guess(fmt.Sprint("user", i), "192.0.2.1", i)) == nil {
				mu.Lock()
				allowed++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if allowed > 10 {
		t.Errorf("%d of 60 parallel attempts allowed, want at most AddressLimit (10)", allowed)
	}
	// The same at one login from many addresses: at most LoginLimit.
	th = newThrottle(t, newClock(), nil)
	allowed = 0
	for i := range 60 {
		if th.Allow(t.Context(), guess("alice", fmt.Sprintf("198.18.0.%d", i), i)) == nil {
			allowed++
		}
	}
	if allowed > 20 {
		t.Errorf("%d of 60 concurrent attempts at one login allowed, want at most LoginLimit (20)", allowed)
	}
}

// TestThrottleLoginVariantsShareOneCount: case and width variants of a
// login are one login for the throttle.
func TestThrottleLoginVariantsShareOneCount(t *testing.T) {
	th := newThrottle(t, newClock(), nil)
	variants := []string{"sam", "SAM", "Sam", "ｓａｍ", "ＳＡＭ"}
	for i := range 20 {
		th.Done(guess(variants[i%len(variants)], fmt.Sprintf("198.18.0.%d", i), i), false)
	}
	for _, v := range variants {
		if d := retryAfter(t, th, guess(v, "198.18.1.1", 1000)); d == 0 {
			t.Errorf("20 failures spread over the variants of sam: %q not throttled", v)
		}
	}
}
