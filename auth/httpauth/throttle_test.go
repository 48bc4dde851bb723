package httpauth_test

import (
	"net/http"
	"testing"

	"github.com/appauth/appauth/internal/token"
)

// TestTenThousandGuesses is the attack from SECURITY.md through the whole
// stack: well-formed app passwords (valid checksums, so each would cost a
// store lookup) from one address.
func TestTenThousandGuesses(t *testing.T) {
	e := newEnv(t, nil)
	secret := e.issue(t, e.alice)
	codec, err := token.New("aap")
	if err != nil {
		t.Fatal(err)
	}
	statuses := map[int]int{}
	firstRetry := ""
	for range 10_000 {
		guess, err := codec.Generate()
		if err != nil {
			t.Fatal(err)
		}
		w := e.do(request{authz: basic("alice", guess), remote: attacker})
		statuses[w.Code]++
		if w.Code == http.StatusTooManyRequests && firstRetry == "" {
			firstRetry = w.Header().Get("Retry-After")
			check(t, "throttled", w, http.StatusTooManyRequests, "Too Many Requests\n")
		}
	}
	if statuses[401] != 10 || statuses[429] != 9_990 {
		t.Errorf("statuses %v, want 10 x 401 then 9990 x 429", statuses)
	}
	if firstRetry != "1" {
		t.Errorf("first Retry-After %q, want 1", firstRetry)
	}
	if n := e.store.Lookups.Load(); n > 10 {
		t.Errorf("%d store lookups, want at most 10: throttled guesses reached the store", n)
	}
	check(t, "good login from another address, at once", e.do(request{authz: basic("alice", secret), remote: home}), 200, "alice app_password ")
	check(t, "good bearer from another address", e.do(request{authz: "Bearer " + secret, remote: "[2001:db8::1]:443"}), 200, "")
	// The attacker's address stays throttled for every secret this server
	// has not verified, even a valid one...
	check(t, "the attacker's address stays throttled", e.do(request{authz: basic("alice", e.issue(t, e.alice)), remote: attacker}), http.StatusTooManyRequests, "")
	// ...but a device behind the same address (a NAT) whose app password
	// was verified before keeps working.
	check(t, "a verified device behind the attacker's address", e.do(request{authz: basic("alice", secret), remote: attacker}), 200, "alice app_password ")
	check(t, "the same secret with another username", e.do(request{authz: basic("bob", secret), remote: attacker}), http.StatusTooManyRequests, "")
}
