package auth_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/backends/memory"
	"github.com/appauth/appauth/internal/testkit"
)

func TestIssueValidation(t *testing.T) {
	e := newEnv(t, func(o *auth.Options) { o.MaxAppPasswords = 3; o.MaxNameLength = 10 })
	ctx := t.Context()
	bad := map[string]struct {
		user *auth.User
		req  auth.IssueRequest
		want error
	}{
		"empty name":     {e.alice, auth.IssueRequest{Name: "  "}, auth.ErrInvalidInput},
		"long name":      {e.alice, auth.IssueRequest{Name: strings.Repeat("é", 11)}, auth.ErrInvalidInput},
		"control char":   {e.alice, auth.IssueRequest{Name: "a\nb"}, auth.ErrInvalidInput},
		"non-UTF-8 name": {e.alice, auth.IssueRequest{Name: "\xff"}, auth.ErrInvalidInput},
		"bad scope":      {e.alice, auth.IssueRequest{Name: "x", Scopes: []string{"Files"}}, auth.ErrInvalidInput},
		"past expiry":    {e.alice, auth.IssueRequest{Name: "x", ExpiresAt: e.clock.Now()}, auth.ErrInvalidInput},
		"nil user":       {nil, auth.IssueRequest{Name: "x"}, auth.ErrInvalidInput},
		"no user ID":     {&auth.User{Login: "x"}, auth.IssueRequest{Name: "x"}, auth.ErrInvalidInput},
		"disabled user":  {&auth.User{ID: "x", Login: "x", Disabled: true}, auth.IssueRequest{Name: "x"}, auth.ErrInvalidCredentials},
	}
	for name, tc := range bad {
		_, secret, err := e.m.IssueAppPassword(ctx, tc.user, tc.req)
		if !errors.Is(err, tc.want) || secret != "" {
			t.Errorf("%s: got %q, %v; want %v", name, secret, err, tc.want)
		}
		var ie *auth.InputError
		if errors.As(err, &ie) != (tc.want == auth.ErrInvalidInput) {
			t.Errorf("%s: %v: an InputError exactly when the input is refused", name, err)
		} else if ie != nil && (ie.Message == "" || strings.Contains(ie.Message, "auth:")) {
			t.Errorf("%s: Message %q: want words to show, without the package prefix", name, ie.Message)
		}
	}
	if list, _ := e.m.ListAppPasswords(ctx, "u-alice"); len(list) != 0 {
		t.Errorf("refused requests stored %d app passwords", len(list))
	}
	ap, _, err := e.m.IssueAppPassword(ctx, e.alice, auth.IssueRequest{Name: strings.Repeat("é", 10), Scopes: []string{"files", "calendars", "files"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ap.Scopes, []string{"calendars", "files"}) {
		t.Errorf("scopes %v, want sorted without duplicates", ap.Scopes)
	}
	e.issue(t, e.alice, "2")
	e.issue(t, e.alice, "3")
	if _, _, err := e.m.IssueAppPassword(ctx, e.alice, auth.IssueRequest{Name: "4"}); !errors.Is(err, auth.ErrInvalidInput) {
		t.Errorf("fourth app password with a limit of 3: %v", err)
	}
	e.issue(t, e.bob, "bob") // the limit is per user
}

// TestIssueLimitUnderConcurrency: parallel requests cannot pass the limit
// together.
func TestIssueLimitUnderConcurrency(t *testing.T) {
	e := newEnv(t, func(o *auth.Options) { o.MaxAppPasswords = 5 })
	var wg sync.WaitGroup
	var issued, refused atomic.Int64
	for i := range 40 {
		wg.Go(func() {
			_, _, err := e.m.IssueAppPassword(context.Background(), e.alice, auth.IssueRequest{Name: fmt.Sprint("device ", i)})
			switch {
			case err == nil:
				issued.Add(1)
			case errors.Is(err, auth.ErrInvalidInput):
				refused.Add(1)
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	list, _ := e.m.ListAppPasswords(t.Context(), "u-alice")
	if issued.Load() != 5 || refused.Load() != 35 || len(list) != 5 {
		t.Errorf("40 parallel issues with a limit of 5: %d issued, %d refused, %d stored", issued.Load(), refused.Load(), len(list))
	}
}

func TestScopesAndExpiry(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	_, secret, err := e.m.IssueAppPassword(ctx, e.alice, auth.IssueRequest{
		Name: "calendar app", Scopes: []string{auth.ScopeCalendars}, ExpiresAt: e.clock.Now().Add(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.auth(t, "alice", secret)
	if err != nil {
		t.Fatal(err)
	}
	if !p.HasScope(auth.ScopeCalendars) || p.HasScope(auth.ScopeFiles) {
		t.Errorf("scopes %v", p.Scopes)
	}
	e.clock.Add(time.Hour)
	if _, err := e.auth(t, "alice", secret); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("expired (cached) password: %v", err)
	}
}

func TestRename(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	ap, secret := e.issue(t, e.alice, "phone")
	if _, err := e.auth(t, "alice", secret); err != nil {
		t.Fatal(err)
	}
	got, err := e.m.RenameAppPassword(ctx, "u-alice", ap.ID, " My iPhone ")
	if err != nil || got.Name != "My iPhone" || got.Hint != ap.Hint {
		t.Fatalf("Rename = %+v, %v", got, err)
	}
	if _, err := e.m.RenameAppPassword(ctx, "u-alice", ap.ID, ""); !errors.Is(err, auth.ErrInvalidInput) {
		t.Errorf("empty name: %v", err)
	}
	if _, err := e.m.RenameAppPassword(ctx, "u-alice", "nope", "x"); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("unknown id: %v", err)
	}
	list, _ := e.m.ListAppPasswords(ctx, "u-alice")
	if len(list) != 1 || list[0].Name != "My iPhone" {
		t.Errorf("listed %+v", list)
	}
	if _, err := e.auth(t, "alice", secret); err != nil {
		t.Errorf("renamed password: %v", err)
	}
}

func TestPepperRotation(t *testing.T) {
	store, dir := memory.NewStore(), memory.NewDirectory()
	alice := &auth.User{ID: "u-alice", Login: "alice"}
	dir.AddUser(*alice, "")
	k1 := auth.Pepper{ID: "k1", Key: bytes.Repeat([]byte{1}, 32)}
	k2 := auth.Pepper{ID: "k2", Key: bytes.Repeat([]byte{2}, 32)}
	old, err := auth.NewManager(store, dir, &auth.Options{Peppers: []auth.Pepper{k1}})
	if err != nil {
		t.Fatal(err)
	}
	_, oldSecret, _ := old.IssueAppPassword(t.Context(), alice, auth.IssueRequest{Name: "old"})
	old.Close()

	m, err := auth.NewManager(store, dir, &auth.Options{Peppers: []auth.Pepper{k1, k2}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ap, newSecret, _ := m.IssueAppPassword(t.Context(), alice, auth.IssueRequest{Name: "new"})
	if c, _ := store.Credential(t.Context(), "u-alice", ap.ID); c.KeyID != "k2" {
		t.Errorf("new password hashed under %q, want the newest key k2", c.KeyID)
	}
	for _, s := range []string{oldSecret, newSecret, oldSecret} { // twice: cached too
		if _, err := m.Authenticate(t.Context(), auth.Attempt{Username: "alice", Password: s}); err != nil {
			t.Errorf("after rotation: %v", err)
		}
	}
	only2, _ := auth.NewManager(store, dir, &auth.Options{Peppers: []auth.Pepper{k2}})
	defer only2.Close()
	if _, err := only2.Authenticate(t.Context(), auth.Attempt{Username: "alice", Password: oldSecret}); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("retired key still verifies: %v", err)
	}
}

func TestLimiter(t *testing.T) {
	l := &testkit.Limiter{}
	e := newEnv(t, func(o *auth.Options) { o.Limiter = l; o.CacheSize = -1 })
	_, secret := e.issue(t, e.alice, "phone")
	e.auth(t, "alice", secret)
	e.auth(t, "mallory", secret)
	e.store.Fail(auth.ErrUnavailable)
	e.auth(t, "alice", secret) // an outage is not the client's failure
	e.store.Fail(nil)
	var results []bool
	for _, r := range l.Results() {
		results = append(results, r.Success)
	}
	if want := []bool{true, false}; !slices.Equal(results, want) {
		t.Errorf("Done calls %v, want %v", results, want)
	}
	l.Refuse(&auth.ThrottleError{RetryAfter: 30 * time.Second})
	before := e.store.Lookups.Load()
	_, err := e.auth(t, "alice", secret)
	var te *auth.ThrottleError
	if !errors.Is(err, auth.ErrThrottled) || !errors.As(err, &te) || te.RetryAfter != 30*time.Second {
		t.Errorf("throttled: %v", err)
	}
	if e.store.Lookups.Load() != before {
		t.Error("a throttled attempt reached the store")
	}
	l.Refuse(errors.New("limiter storage down"))
	if _, err := e.auth(t, "alice", secret); !errors.Is(err, auth.ErrUnavailable) {
		t.Errorf("limiter failure: %v, want ErrUnavailable (fail closed)", err)
	}
}

// TestNoSecretInLogs runs every operation with debug logging and an event
// hook and checks that no secret, in any form, appears in either.
func TestNoSecretInLogs(t *testing.T) {
	var events []auth.Event
	var mu sync.Mutex
	e := newEnv(t, func(o *auth.Options) {
		o.OnEvent = func(ev auth.Event) { mu.Lock(); events = append(events, ev); mu.Unlock() }
	})
	ctx := t.Context()
	ap, secret := e.issue(t, e.alice, "phone")
	_, sess, _ := e.m.CreateSession(ctx, e.alice, "192.0.2.1", "Firefox")
	e.auth(t, "alice", secret)
	e.auth(t, "bob", secret)
	e.auth(t, "alice", strings.ToUpper(secret))
	e.auth(t, "alice", testkit.Typo(secret))
	e.auth(t, "alice\x1b[31m\nfake=line", "account-password-of-alice")
	e.m.AuthenticateSession(ctx, sess, "", "")
	_, uncached := e.issue(t, e.alice, "tablet")
	e.store.Fail(errors.New("connection refused"))
	e.m.CreateSession(ctx, e.alice, "", "")
	e.auth(t, "alice", uncached)
	e.store.Fail(nil)
	e.m.RenameAppPassword(ctx, "u-alice", ap.ID, "x")
	e.m.RevokeAppPassword(ctx, "u-alice", ap.ID)
	e.m.Close()

	logs := e.logs.String()
	if strings.Contains(logs, "\x1b") || regexp.MustCompile(`\n\s*fake=line`).MatchString(logs) {
		t.Error("control characters from a username reached the log unescaped")
	}
	mu.Lock()
	for _, ev := range events {
		logs += ev.Login + ev.Reason + ev.UserAgent + ev.RemoteAddr + ev.CredentialID
		if ev.Err != nil {
			logs += ev.Err.Error()
		}
	}
	mu.Unlock()
	for _, s := range []string{secret, uncached, sess, "account-password-of-alice"} {
		for _, form := range []string{s, strings.ReplaceAll(s, "-", ""), s[len(s)-12:]} {
			if strings.Contains(strings.ToLower(logs), strings.ToLower(form)) {
				t.Errorf("log output contains a secret (%q)", form)
			}
		}
	}
	for _, want := range []string{`"event":"issued"`, `"event":"authenticated"`, `"reason":"wrong_user"`, `"reason":"malformed"`, `"event":"revoked"`, `"event":"unavailable"`, `"credential_id":"` + ap.ID} {
		if !strings.Contains(logs, want) {
			t.Errorf("audit log lacks %s", want)
		}
	}
}

// TestCacheHitsSkipTheLimiter: an exact cache hit of a verified app
// password does not ask the Limiter (whose lock every verify would share)
// unless it fails after all; then it is counted, or throttled, like any
// failure.
func TestCacheHitsSkipTheLimiter(t *testing.T) {
	l := &testkit.Limiter{}
	e := newEnv(t, func(o *auth.Options) { o.Limiter = l })
	_, secret := e.issue(t, e.alice, "phone")
	for range 5 { // one miss, four hits
		if _, err := e.auth(t, "alice", secret); err != nil {
			t.Fatal(err)
		}
	}
	if a, r := l.Allowed(), l.Results(); len(a) != 1 || len(r) != 1 || !r[0].Success {
		t.Fatalf("after a miss and 4 hits the Limiter saw %d attempts and %d outcomes, want the miss only", len(a), len(r))
	}
	// A hit that fails (alice's secret with bob's name) is a failure like any.
	if _, err := e.auth(t, "bob", secret); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Fatalf("wrong user: %v", err)
	}
	if r := l.Results(); len(r) != 2 || r[1].Success || r[1].Attempt.Username != "bob" {
		t.Fatalf("after a failing hit, %d Done calls, want a second one, a failure for bob", len(r))
	}
	// Throttled: the hit still gets in (a NAT shared with a guesser), a
	// failing hit is the 429.
	l.Refuse(&auth.ThrottleError{RetryAfter: time.Minute})
	if _, err := e.auth(t, "alice", secret); err != nil {
		t.Errorf("a cached secret behind a throttled address: %v", err)
	}
	if _, err := e.auth(t, "bob", secret); !errors.Is(err, auth.ErrThrottled) {
		t.Errorf("a failing hit while throttled: %v, want ErrThrottled", err)
	}
	if r := l.Results(); len(r) != 2 {
		t.Errorf("%d Done calls, want 2: refused attempts were reported to the Limiter", len(r))
	}
}

// TestCacheBoundedAcrossShards: the sharded cache keeps every credential
// while it has room and stays within CacheSize plus one per shard (32)
// when more are verified.
func TestCacheBoundedAcrossShards(t *testing.T) {
	const size = 64
	e := newEnv(t, func(o *auth.Options) { o.CacheSize = size; o.MaxAppPasswords = 4 * size; o.Logger = nil })
	for i := range 4 * size {
		_, secret := e.issue(t, e.alice, fmt.Sprint("device ", i))
		if _, err := e.auth(t, "alice", secret); err != nil {
			t.Fatal(err)
		}
		if n := e.m.CachedCredentials(); i < size && n != i+1 {
			t.Fatalf("after %d verifies, %d cached: evicted before the cache was full", i+1, n)
		} else if n > size+32 {
			t.Fatalf("after %d verifies, %d cached, want at most %d", i+1, n, size+32)
		}
	}
}
