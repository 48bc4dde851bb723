package radiusrest_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/radiusrest"
	"github.com/appauth/appauth/auth/throttle"
	"github.com/appauth/appauth/backends/memory"
	"github.com/appauth/appauth/internal/testkit"
)

// fakeAuth is an auth.Authenticator that records attempts and answers
// with p and err.
type fakeAuth struct {
	mu       sync.Mutex
	attempts []auth.Attempt
	p        *auth.Principal
	err      error
}

func (f *fakeAuth) Authenticate(_ context.Context, a auth.Attempt) (*auth.Principal, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attempts = append(f.attempts, a)
	return f.p, f.err
}

func post(t *testing.T, h http.Handler, secret string, body string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/radius/", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if secret != "" {
		r.Header.Set(radiusrest.SecretHeader, secret)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func form(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v.Encode()
}

func TestStatuses(t *testing.T) {
	good := form("User-Name", "alice", "User-Password", "pw")
	for _, tc := range []struct {
		name   string
		p      *auth.Principal
		err    error
		secret string
		body   string
		want   int
		called bool
	}{
		{"accept", &auth.Principal{}, nil, restSecret, good, 204, true},
		{"network scope", &auth.Principal{Scopes: []string{auth.ScopeNetwork}}, nil, restSecret, good, 204, true},
		{"other scope", &auth.Principal{Scopes: []string{auth.ScopeCalendars}}, nil, restSecret, good, 401, true},
		{"invalid", nil, auth.ErrInvalidCredentials, restSecret, good, 401, true},
		{"throttled", nil, auth.ErrThrottled, restSecret, good, 429, true},
		{"unavailable", nil, auth.ErrUnavailable, restSecret, good, 503, true},
		{"unexpected error", nil, errors.New("boom"), restSecret, good, 503, true},
		{"no secret", &auth.Principal{}, nil, "", good, 403, false},
		{"wrong secret", &auth.Principal{}, nil, restSecret + "x", good, 403, false},
		{"secret prefix", &auth.Principal{}, nil, restSecret[:len(restSecret)-1], good, 403, false},
		{"no password (CHAP)", &auth.Principal{}, nil, restSecret, form("User-Name", "alice", "CHAP-Password", "x"), 400, false},
		{"no user", &auth.Principal{}, nil, restSecret, form("User-Password", "pw"), 400, false},
		{"two passwords", &auth.Principal{}, nil, restSecret, form("User-Name", "alice", "User-Password", "a", "User-Password", "b"), 400, false},
		{"bad escape", &auth.Principal{}, nil, restSecret, "User-Name=alice&User-Password=%zz", 400, false},
		{"huge value", &auth.Principal{}, nil, restSecret, form("User-Name", "alice", "User-Password", strings.Repeat("x", 300)), 400, false},
		{"huge body", &auth.Principal{}, nil, restSecret, good + "&Filler=" + strings.Repeat("x", 1<<20), 400, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fa := &fakeAuth{p: tc.p, err: tc.err}
			h, err := radiusrest.New(fa, restSecret, nil)
			if err != nil {
				t.Fatal(err)
			}
			if w := post(t, h, tc.secret, tc.body); w.Code != tc.want {
				t.Fatalf("status %d, want %d", w.Code, tc.want)
			}
			if called := len(fa.attempts) > 0; called != tc.called {
				t.Fatalf("Authenticate called: %v, want %v", called, tc.called)
			}
		})
	}
}

// TestNilPrincipalIs503: an Authenticator that breaks its contract (no
// principal and no error) is an internal failure, answered like an outage
// (fail: no RADIUS answer, which the NAS retries) and logged, not a panic.
func TestNilPrincipalIs503(t *testing.T) {
	var logs testkit.Buffer
	h, err := radiusrest.New(&fakeAuth{}, restSecret, &radiusrest.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if w := post(t, h, restSecret, form("User-Name", "alice", "User-Password", "pw")); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", w.Code)
	}
	if !strings.Contains(logs.String(), "no principal") {
		t.Fatalf("no log line for the broken contract; log:\n%s", logs.String())
	}
}

func TestMethodAndContentType(t *testing.T) {
	fa := &fakeAuth{p: &auth.Principal{}}
	h, _ := radiusrest.New(fa, restSecret, nil)
	r := httptest.NewRequest(http.MethodGet, "/radius/?User-Name=alice&User-Password=pw", nil)
	r.Header.Set(radiusrest.SecretHeader, restSecret)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d", w.Code)
	}
	r = httptest.NewRequest(http.MethodPost, "/radius/", strings.NewReader(`{"User-Name":"alice"}`))
	r.Header.Set(radiusrest.SecretHeader, restSecret)
	r.Header.Set("Content-Type", "application/json")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusBadRequest || len(fa.attempts) != 0 {
		t.Fatalf("JSON body: %d, %d attempts", w.Code, len(fa.attempts))
	}
}

// TestAttemptAddress: the throttle counts a VPN client by its IP address
// and a Wi-Fi station (a MAC address anyone can choose) by its access
// point; the client names both.
func TestAttemptAddress(t *testing.T) {
	for _, tc := range []struct {
		name            string
		kv              []string
		addr, userAgent string
	}{
		{"vpn", []string{"Calling-Station-Id", "198.51.100.7", "NAS-IP-Address", "192.0.2.1"}, "198.51.100.7", "RADIUS 192.0.2.1 station 198.51.100.7"},
		{"wifi", []string{"Calling-Station-Id", "02-00-00-00-00-07", "NAS-IP-Address", "192.0.2.1", "NAS-Identifier", "ap-3"}, "192.0.2.1", "RADIUS ap-3 (192.0.2.1) station 02-00-00-00-00-07"},
		{"ipv6 nas", []string{"NAS-IPv6-Address", "2001:db8::1"}, "2001:db8::1", "RADIUS 2001:db8::1"},
		{"nothing", nil, "192.0.2.1", "RADIUS"}, // httptest's peer
	} {
		t.Run(tc.name, func(t *testing.T) {
			fa := &fakeAuth{p: &auth.Principal{}}
			h, _ := radiusrest.New(fa, restSecret, nil)
			post(t, h, restSecret, form(append([]string{"User-Name", "alice", "User-Password", "pw"}, tc.kv...)...))
			if len(fa.attempts) != 1 {
				t.Fatalf("%d attempts", len(fa.attempts))
			}
			a := fa.attempts[0]
			if a.Username != "alice" || a.Password != "pw" || a.RemoteAddr != tc.addr || a.UserAgent != tc.userAgent {
				t.Fatalf("attempt %+v", a)
			}
		})
	}
}

func TestNew(t *testing.T) {
	if _, err := radiusrest.New(&fakeAuth{}, "short", nil); err == nil {
		t.Error("a short secret was accepted")
	}
	if _, err := radiusrest.New(nil, restSecret, nil); err == nil {
		t.Error("a nil Authenticator was accepted")
	}
	// A Manager without a Limiter: RADIUS guesses would be unbounded.
	m := testkit.NewManager(t, memory.NewStore(), memory.NewDirectory(), nil)
	if _, err := radiusrest.New(m, restSecret, nil); err == nil || !strings.Contains(err.Error(), "Limiter") {
		t.Errorf("a Manager without a Limiter: %v", err)
	}
}

// FuzzHandler: whatever the body, the handler answers one of its statuses
// and accepts only what the Authenticator accepted.
func FuzzHandler(f *testing.F) {
	f.Add("User-Name=alice&User-Password=pw&Calling-Station-Id=02-00-00-00-00-07")
	f.Add("User-Name=%00&User-Password=%ff%fe")
	f.Add("a=b;c=d")
	fa := &fakeAuth{err: auth.ErrInvalidCredentials}
	h, _ := radiusrest.New(fa, restSecret, nil)
	f.Fuzz(func(t *testing.T, body string) {
		w := post(t, h, restSecret, body)
		switch w.Code {
		case 400, 401:
		default:
			t.Fatalf("status %d", w.Code)
		}
	})
}

// TestThrottledAndAudited: RADIUS attempts go through the Manager: wrong
// guesses from one access point are throttled (429, a reject) while a
// station behind another NAS still gets in, and every decision is an
// event with the attempt's address and client.
func TestThrottledAndAudited(t *testing.T) {
	dir := memory.NewDirectory()
	alice := auth.User{ID: "u-alice", Login: "alice"}
	if err := dir.AddUser(alice, accountPassword); err != nil {
		t.Fatal(err)
	}
	limiter, err := throttle.New(&throttle.Options{AddressLimit: 3})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var events []auth.Event
	m := testkit.NewManager(t, memory.NewStore(), dir, &auth.Options{Limiter: limiter, OnEvent: func(e auth.Event) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}})
	_, secret, err := m.IssueAppPassword(t.Context(), &alice, auth.IssueRequest{Name: "Wi-Fi", Scopes: []string{auth.ScopeNetwork}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := radiusrest.New(m, restSecret, nil)
	if err != nil {
		t.Fatal(err)
	}
	wifi := func(nas, password string) int {
		return post(t, h, restSecret, form("User-Name", "alice", "User-Password", password,
			"NAS-IP-Address", nas, "Calling-Station-Id", "02-00-00-00-00-07")).Code
	}
	// Well-formed, distinct wrong passwords: revoked ones (a typo fails the
	// checksum and a repeated one hits the negative cache; neither reaches
	// the Limiter, as neither costs anything).
	codes := []int{}
	for i := range 5 {
		old, wrong, err := m.IssueAppPassword(t.Context(), &alice, auth.IssueRequest{Name: fmt.Sprint("old ", i)})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.RevokeAppPassword(t.Context(), alice.ID, old.ID); err != nil {
			t.Fatal(err)
		}
		codes = append(codes, wifi("192.0.2.1", wrong))
	}
	if codes[0] != 401 || codes[len(codes)-1] != 429 {
		t.Fatalf("wrong guesses from one access point: %v, want 401s then 429", codes)
	}
	if got := wifi("192.0.2.2", secret); got != 204 {
		t.Fatalf("the right password from another access point: %d", got)
	}
	mu.Lock()
	defer mu.Unlock()
	var failed, throttled, ok int
	for _, e := range events {
		if e.Kind != auth.KindAppPassword || !strings.HasPrefix(e.UserAgent, "RADIUS ") || !strings.HasPrefix(e.RemoteAddr, "192.0.2.") {
			continue
		}
		switch e.Type {
		case auth.EventFailed:
			failed++
		case auth.EventThrottled:
			throttled++
		case auth.EventAuthenticated:
			ok++
		}
	}
	if failed == 0 || throttled == 0 || ok != 1 {
		t.Fatalf("events: %d failed, %d throttled, %d authenticated; want some, some, 1", failed, throttled, ok)
	}
}
