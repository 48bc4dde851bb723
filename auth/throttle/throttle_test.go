package throttle_test

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/throttle"
	"github.com/appauth/appauth/internal/testkit"
)

func newThrottle(t *testing.T, c *testkit.Clock, edit func(*throttle.Options)) *throttle.Throttle {
	t.Helper()
	o := &throttle.Options{Now: c.Now}
	if edit != nil {
		edit(o)
	}
	th, err := throttle.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return th
}

func newClock() *testkit.Clock {
	return testkit.NewClock(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC))
}

// retryAfter returns the wait Allow imposes, 0 if it allows.
func retryAfter(t *testing.T, th *throttle.Throttle, c auth.Attempt) time.Duration {
	t.Helper()
	err := th.Allow(t.Context(), c)
	if err == nil {
		return 0
	}
	var te *auth.ThrottleError
	if !errors.As(err, &te) || !errors.Is(err, auth.ErrThrottled) {
		t.Fatalf("Allow: %v, want a *auth.ThrottleError", err)
	}
	return te.RetryAfter
}

func guess(user, addr string, i int) auth.Attempt {
	return auth.Attempt{Username: user, Password: fmt.Sprintf("guess-%d", i), RemoteAddr: addr}
}

func TestThrottleBackoff(t *testing.T) {
	c := newClock()
	th := newThrottle(t, c, nil)
	// Spread over logins so that only the address limit applies.
	for i := range 9 {
		th.Done(guess(fmt.Sprint("user", i), "192.0.2.1", i), false)
	}
	if d := retryAfter(t, th, guess("x", "192.0.2.1", 0)); d != 0 {
		t.Fatalf("after 9 failures: wait %v, want none", d)
	}
	want := time.Second
	for i := 9; i < 30; i++ {
		th.Done(guess(fmt.Sprint("user", i), "192.0.2.1", i), false)
		if d := retryAfter(t, th, guess("x", "192.0.2.1", 0)); d != want {
			t.Fatalf("after %d failures: wait %v, want %v", i+1, d, want)
		}
		if d := retryAfter(t, th, guess("x", "192.0.2.2", 0)); d != 0 {
			t.Fatalf("another address waits %v", d)
		}
		c.Add(want)
		want = min(2*want, 15*time.Minute)
	}
	// Failures are forgotten a day after the last one.
	th.Done(guess("y", "192.0.2.1", 99), false)
	c.Add(24 * time.Hour)
	for i := range 9 {
		th.Done(guess("z", "192.0.2.1", 100+i), false)
	}
	if d := retryAfter(t, th, guess("x", "192.0.2.1", 0)); d != 0 {
		t.Errorf("a day later, 9 new failures: wait %v, want none", d)
	}
}

func TestThrottleSuccessResetsAddress(t *testing.T) {
	c := newClock()
	th := newThrottle(t, c, nil)
	for i := range 9 {
		th.Done(guess("alice", "192.0.2.1", i), false)
	}
	th.Done(auth.Attempt{Username: "alice", RemoteAddr: "192.0.2.1"}, true)
	for i := range 9 {
		th.Done(guess("alice", "192.0.2.1", 100+i), false)
	}
	if d := retryAfter(t, th, guess("alice", "192.0.2.1", 0)); d != 0 {
		t.Errorf("9 failures, a success, 9 failures: wait %v, want none", d)
	}
	th.Done(guess("alice", "192.0.2.1", 200), false)
	if d := retryAfter(t, th, guess("alice", "192.0.2.1", 0)); d == 0 {
		t.Error("10 failures after the success: not throttled")
	}
}

func TestThrottleRepeatedFailureCountsOnce(t *testing.T) {
	th := newThrottle(t, newClock(), nil)
	stale := auth.Attempt{Username: "alice", Password: "revoked-app-password", RemoteAddr: "192.0.2.1"}
	for range 1000 {
		th.Done(stale, false)
	}
	if d := retryAfter(t, th, stale); d != 0 {
		t.Errorf("a device retrying one stale password is throttled (%v)", d)
	}
}

func TestThrottleIPv6Prefix(t *testing.T) {
	th := newThrottle(t, newClock(), nil)
	for i := range 10 {
		th.Done(guess(fmt.Sprint("u", i), fmt.Sprintf("[2001:db8:0:1::%x]:443", i+1), i), false)
	}
	if d := retryAfter(t, th, guess("v", "2001:db8:0:1:ffff::1", 0)); d == 0 {
		t.Error("10 failures from one /64: another address of it is not throttled")
	}
	if d := retryAfter(t, th, guess("v", "2001:db8:0:2::1", 0)); d != 0 {
		t.Errorf("the next /64 waits %v", d)
	}
	// An IPv4-mapped IPv6 address is its IPv4 address.
	for i := range 10 {
		th.Done(guess(fmt.Sprint("u", i), "::ffff:192.0.2.9", i), false)
	}
	if d := retryAfter(t, th, guess("v", "192.0.2.9:80", 0)); d == 0 {
		t.Error("failures from ::ffff:192.0.2.9 do not count for 192.0.2.9")
	}

	th = newThrottle(t, newClock(), func(o *throttle.Options) { o.IPv4PrefixLen = 24 })
	for i := range 10 {
		th.Done(guess(fmt.Sprint("u", i), fmt.Sprintf("192.0.2.%d", i), i), false)
	}
	if d := retryAfter(t, th, guess("v", "192.0.2.200", 0)); d == 0 {
		t.Error("IPv4PrefixLen 24: the /24 is not throttled")
	}
}

func TestThrottleUnparsableAddressesShareOneBucket(t *testing.T) {
	th := newThrottle(t, newClock(), nil)
	for i := range 10 {
		th.Done(guess(fmt.Sprint("u", i), "@", i), false)
	}
	if d := retryAfter(t, th, guess("v", "", 0)); d == 0 {
		t.Error("clients without an IP address are exempt from the throttle")
	}
}

// TestThrottleLogin is a distributed attack on one login: each address
// fails once, so only the per-login limit can stop it.
func TestThrottleLogin(t *testing.T) {
	c := newClock()
	th := newThrottle(t, c, nil)
	phone := "203.0.113.5"
	th.Done(auth.Attempt{Username: "alice", RemoteAddr: phone}, true)

	addr := func(i int) string { return netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}).String() }
	counted := 0
	for i := 0; ; i++ {
		c.Add(time.Second)
		d := retryAfter(t, th, guess("ALICE", addr(i), i))
		if d >= 23*time.Hour {
			break
		}
		if d > 0 {
			c.Add(d)
			continue
		}
		th.Done(guess("alice", addr(i), i), false)
		counted++
		if counted == 20 {
			if d := retryAfter(t, th, guess("alice", addr(100_000), 0)); d != time.Second {
				t.Errorf("after 20 failures on the login: a new address waits %v, want 1s", d)
			}
		}
	}
	if counted != 100 {
		t.Errorf("%d guesses evaluated before the lockout, want 100 (NIST: at most 100)", counted)
	}
	// The real user's known network is not locked out, and its failures
	// (a mistyped password) do not count against the login.
	if d := retryAfter(t, th, auth.Attempt{Username: "alice", RemoteAddr: phone}); d != 0 {
		t.Errorf("the user's trusted address waits %v", d)
	}
	if d := retryAfter(t, th, auth.Attempt{Username: "bob", RemoteAddr: "198.18.200.1"}); d != 0 {
		t.Errorf("another login waits %v", d)
	}
	c.Add(24 * time.Hour)
	if d := retryAfter(t, th, guess("alice", "198.18.200.2", 0)); d != 0 {
		t.Errorf("a day after the lockout: wait %v", d)
	}
}

func TestThrottleTrustedAddressFailuresDoNotCountForLogin(t *testing.T) {
	th := newThrottle(t, newClock(), func(o *throttle.Options) { o.AddressLimit = 1000 })
	th.Done(auth.Attempt{Username: "alice", RemoteAddr: "203.0.113.5"}, true)
	for i := range 50 {
		th.Done(guess("alice", "203.0.113.5", i), false)
	}
	if d := retryAfter(t, th, guess("alice", "198.18.0.1", 0)); d != 0 {
		t.Errorf("failures from the user's own network locked the login for others: wait %v", d)
	}
}

func TestThrottleMemoryBounded(t *testing.T) {
	c := newClock()
	th := newThrottle(t, c, func(o *throttle.Options) { o.MaxEntries = 100 })
	// A blocked login, a login with a trusted network, and a blocked address.
	for i := range 100 {
		th.Done(guess("target", fmt.Sprintf("198.18.0.%d", i), i), false)
	}
	th.Done(auth.Attempt{Username: "alice", RemoteAddr: "203.0.113.5"}, true)
	for i := range 20 {
		th.Done(guess(fmt.Sprint("spray", i), "192.0.2.1", i), false)
	}
	if th.Allow(t.Context(), guess("target", "198.18.1.1", 0)) == nil || th.Allow(t.Context(), guess("x", "192.0.2.1", 0)) == nil {
		t.Fatal("setup: target login or attacker address not blocked")
	}

	// Rotate 10,000 usernames and 10,000 addresses.
	for i := range 10_000 {
		th.Done(guess(fmt.Sprintf("user%d", i), netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).String(), i), false)
		th.Done(guess(fmt.Sprintf("v6user%d", i), fmt.Sprintf("2001:db8:%x::1", i), i), false)
	}
	if a, l, p := th.Size(); a > 100 || l > 100 || p > 100 {
		t.Errorf("after rotating 20,000 usernames and addresses: %d address, %d login and %d pair entries, want at most 100 each", a, l, p)
	}
	if th.Allow(t.Context(), guess("target", "198.18.1.1", 0)) == nil {
		t.Error("rotating usernames evicted the blocked login")
	}
	if th.Allow(t.Context(), guess("x", "192.0.2.1", 0)) == nil {
		t.Error("rotating addresses evicted the blocked address")
	}
	// alice's trusted network survives the flood of one-failure logins:
	// lock her login, and her network still gets in.
	for i := range 100 {
		c.Add(time.Hour)
		th.Done(guess("alice", fmt.Sprintf("198.19.0.%d", i), i), false)
	}
	if th.Allow(t.Context(), guess("alice", "198.19.1.1", 0)) == nil {
		t.Fatal("alice's login not locked")
	}
	if err := th.Allow(t.Context(), auth.Attempt{Username: "alice", RemoteAddr: "203.0.113.5"}); err != nil {
		t.Errorf("alice's trusted network was forgotten: %v", err)
	}
}

func TestThrottleOptionsValidated(t *testing.T) {
	for name, o := range map[string]throttle.Options{
		"IPv4PrefixLen":       {IPv4PrefixLen: 33},
		"IPv6PrefixLen":       {IPv6PrefixLen: 129},
		"negative limit":      {AddressLimit: -1},
		"lockout below limit": {LoginLimit: 50, LoginLockout: 10},
		"MaxDelay":            {BaseDelay: time.Hour, MaxDelay: time.Minute},
		"ForgetAfter":         {ForgetAfter: time.Minute},
	} {
		if _, err := throttle.New(&o); err == nil {
			t.Errorf("%s: accepted %+v", name, o)
		}
	}
	if _, err := throttle.New(nil); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

// TestThrottleBackoffNeverOverflows: long after the limit, the doubled
// delay stays at MaxDelay; it must not wrap around to no delay at all.
func TestThrottleBackoffNeverOverflows(t *testing.T) {
	c := newClock()
	th := newThrottle(t, c, nil)
	for i := range 80 {
		th.Done(guess(fmt.Sprint("user", i), "192.0.2.1", i), false)
		if i < 9 {
			continue
		}
		if d := retryAfter(t, th, guess("x", "192.0.2.1", 0)); d <= 0 || d > 15*time.Minute {
			t.Fatalf("after %d failures: wait %v, want 1s-15m", i+1, d)
		}
		c.Add(15 * time.Minute)
	}
}

// TestThrottleOneAttemptAtTheEdge: one failure short of the limit, parallel
// attempts from the address go one at a time, so they cannot all slip in
// before the first of them fails; an attempt whose outcome never comes (an
// outage) holds the next one back for a bounded time only.
func TestThrottleOneAttemptAtTheEdge(t *testing.T) {
	c := newClock()
	th := newThrottle(t, c, nil)
	for i := range 9 {
		th.Done(guess(fmt.Sprint("user", i), "192.0.2.1", i), false)
	}
	if d := retryAfter(t, th, guess("a", "192.0.2.1", 100)); d != 0 {
		t.Fatalf("first attempt at the edge: wait %v, want none", d)
	}
	for i := range 5 { // in flight together with the first
		if d := retryAfter(t, th, guess("b", "192.0.2.1", 101+i)); d <= 0 || d > time.Second {
			t.Fatalf("parallel attempt %d at the edge: wait %v, want up to 1s", i, d)
		}
	}
	if d := retryAfter(t, th, guess("c", "192.0.2.2", 0)); d != 0 {
		t.Errorf("another address waits %v", d)
	}
	th.Done(guess("a", "192.0.2.1", 100), false) // the first fails: now blocked
	if d := retryAfter(t, th, guess("b", "192.0.2.1", 101)); d != time.Second {
		t.Fatalf("after the 10th failure: wait %v, want 1s", d)
	}
	c.Add(time.Second)
	if d := retryAfter(t, th, guess("b", "192.0.2.1", 101)); d != 0 {
		t.Fatalf("after the block: wait %v, want none", d)
	}
	// Its outcome is never reported: the next attempt waits, but not forever.
	if d := retryAfter(t, th, guess("d", "192.0.2.1", 102)); d == 0 {
		t.Fatal("second attempt in flight at the edge was let through")
	}
	c.Add(10 * time.Second)
	if d := retryAfter(t, th, guess("d", "192.0.2.1", 102)); d != 0 {
		t.Errorf("an unreported attempt still holds the address back: wait %v", d)
	}
	// A success of another login does not let anything through.
	th.Done(auth.Attempt{Username: "d", RemoteAddr: "192.0.2.1"}, true)
	th.Done(guess("e", "192.0.2.1", 103), false)
	if d := retryAfter(t, th, guess("f", "192.0.2.1", 104)); d != 2*time.Second {
		t.Errorf("the 11th failure after a success of another login: wait %v, want 2s (the count kept)", d)
	}
}
