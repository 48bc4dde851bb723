package settings_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/throttle"
)

// TestSignInAudited: failed and throttled web sign-ins, through the form
// and the JSON API, each leave an audit line naming the login and the
// client's address; a successful one too.
func TestSignInAudited(t *testing.T) {
	th, err := throttle.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(o *auth.Options) { o.Limiter = th }, nil)
	e.client().signIn("bob", bobPassword)
	c := e.client()
	for i := range 5 {
		if w := c.form("signin", "username", "alice", "password", fmt.Sprint("form-guess-", i)); w.Code != http.StatusUnauthorized {
			t.Fatalf("wrong password on the form: %d", w.Code)
		}
		if w := c.api("POST", "session", fmt.Sprintf(`{"username":"alice","password":"api-guess-%d"}`, i)); w.Code != http.StatusUnauthorized {
			t.Fatalf("wrong password on the API: %d", w.Code)
		}
	}
	if w := c.api("POST", "session", `{"username":"alice","password":"`+alicePassword+`"}`); w.Code != http.StatusTooManyRequests {
		t.Fatalf("after 10 failures: %d, want 429", w.Code)
	}
	lines := map[string]int{}
	for _, line := range strings.Split(e.logs.String(), "\n") {
		if strings.Contains(line, `"kind":"account_password"`) && strings.Contains(line, `"login":"alice"`) && strings.Contains(line, `"remote_addr":"192.0.2.10"`) {
			for _, ev := range []string{"failed", "throttled", "authenticated"} {
				if strings.Contains(line, `"event":"`+ev+`"`) {
					lines[ev]++
				}
			}
		}
		if strings.Contains(line, "guess-") || strings.Contains(line, alicePassword) {
			t.Errorf("a password in the log: %s", line)
		}
	}
	if lines["failed"] != 10 || lines["throttled"] != 1 {
		t.Errorf("audit lines naming alice and 192.0.2.10: %v, want 10 failed and 1 throttled\n%s", lines, e.logs.String())
	}
	if !strings.Contains(e.logs.String(), `"event":"authenticated","kind":"account_password","login":"bob"`) {
		t.Errorf("no audit line for bob's sign-in:\n%s", e.logs.String())
	}
}

// TestIssuedEventNamesTheClient: an app password created on the page or
// through the API is reported (to notifications, metrics) with the address
// and browser that created it.
func TestIssuedEventNamesTheClient(t *testing.T) {
	var mu sync.Mutex
	var issued []auth.Event
	e := newEnv(t, func(o *auth.Options) {
		o.OnEvent = func(ev auth.Event) {
			if ev.Type == auth.EventIssued && ev.Kind == auth.KindAppPassword {
				mu.Lock()
				issued = append(issued, ev)
				mu.Unlock()
			}
		}
	}, nil)
	c := e.client()
	c.signIn("alice", alicePassword)
	if w := c.api("POST", "app-passwords", `{"name":"phone"}`); w.Code != http.StatusCreated && w.Code != http.StatusOK {
		t.Fatalf("API create: %d %s", w.Code, w.Body)
	}
	if w := c.form("app-passwords", "name", "laptop"); w.Code != http.StatusSeeOther {
		t.Fatalf("page create: %d %s", w.Code, w.Body)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(issued) != 2 {
		t.Fatalf("%d issued events, want 2", len(issued))
	}
	for _, ev := range issued {
		if ev.RemoteAddr != "192.0.2.10" || ev.UserAgent != c.ua {
			t.Errorf("issued %q: from %q with %q, want 192.0.2.10 with %q", ev.Name, ev.RemoteAddr, ev.UserAgent, c.ua)
		}
	}
}
