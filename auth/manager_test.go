package auth_test

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/backends/memory"
	"github.com/appauth/appauth/internal/testkit"
)

func TestNewManagerRefusesBadPeppers(t *testing.T) {
	store, dir := memory.NewStore(), memory.NewDirectory()
	long := bytes.Repeat([]byte("k"), 32)
	tests := map[string]*auth.Options{
		"nil options":  nil,
		"no pepper":    {},
		"short pepper": {Peppers: []auth.Pepper{{ID: "k1", Key: long[:31]}}},
		"empty ID":     {Peppers: []auth.Pepper{{Key: long}}},
		"bad ID":       {Peppers: []auth.Pepper{{ID: "k 1", Key: long}}},
		"duplicate ID": {Peppers: []auth.Pepper{{ID: "k1", Key: long}, {ID: "k1", Key: long}}},
		"negative TTL": {Peppers: []auth.Pepper{{ID: "k1", Key: long}}, CacheTTL: -time.Second},
		// e.g. a *throttle.Throttle left nil by a config branch: it would
		// panic on every attempt.
		"nil Limiter pointer": {Peppers: []auth.Pepper{{ID: "k1", Key: long}}, Limiter: (*testkit.Limiter)(nil)},
	}
	for name, opts := range tests {
		t.Run(name, func(t *testing.T) {
			m, err := auth.NewManager(store, dir, opts)
			if err == nil {
				m.Close()
				t.Fatal("NewManager succeeded")
			}
			if !strings.HasPrefix(err.Error(), "auth: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
	if _, err := auth.NewManager(nil, dir, &auth.Options{Peppers: []auth.Pepper{{ID: "k1", Key: long}}}); err == nil {
		t.Error("nil store accepted")
	}
	if _, err := auth.NewManager(store, nil, &auth.Options{Peppers: []auth.Pepper{{ID: "k1", Key: long}}}); err == nil {
		t.Error("nil directory accepted")
	}
}

func TestIssueAndAuthenticate(t *testing.T) {
	e := newEnv(t, nil)
	ap, secret := e.issue(t, e.alice, "  My iPhone ")
	if ap.Name != "My iPhone" || ap.UserID != "u-alice" || ap.Login != "alice" || ap.ID == "" {
		t.Errorf("issued %+v", ap)
	}
	if !regexp.MustCompile(`^aap(-[2-9a-hjkmnp-z]{8}){4}$`).MatchString(secret) {
		t.Errorf("secret %q has an unexpected format", secret)
	}
	if !strings.HasSuffix(strings.ReplaceAll(secret, "-", ""), ap.Hint) || len(ap.Hint) != 4 {
		t.Errorf("hint %q is not the secret's last 4 characters", ap.Hint)
	}
	// Any case and grouping the person may type.
	for _, typed := range []string{secret, strings.ToUpper(secret), strings.ReplaceAll(secret, "-", ""), strings.ReplaceAll(secret, "-", " ")} {
		p, err := e.auth(t, "Alice", typed)
		if err != nil {
			t.Fatalf("Authenticate(%q): %v", typed, err)
		}
		if p.User.ID != "u-alice" || p.Method != auth.MethodAppPassword || p.CredentialID != ap.ID || !p.HasScope(auth.ScopeFiles) {
			t.Errorf("principal %+v", p)
		}
	}
	stored, err := e.store.Credential(t.Context(), "u-alice", ap.ID)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(stored.Hash, []byte(secret)) || len(stored.Hash) != 32 || stored.KeyID != "k1" {
		t.Errorf("stored hash %x key %q", stored.Hash, stored.KeyID)
	}
}

func TestRefusedBeforeAnyLookup(t *testing.T) {
	e := newEnv(t, nil)
	_, secret := e.issue(t, e.alice, "phone")
	swapped := []byte(secret)
	for i := 4; ; i++ { // swap the first two neighbours that differ
		if swapped[i] != swapped[i+1] && swapped[i+1] != '-' {
			swapped[i], swapped[i+1] = swapped[i+1], swapped[i]
			break
		}
	}
	cases := map[string]auth.Attempt{
		"empty password":     {Username: "alice"},
		"empty both":         {},
		"empty username":     {Password: secret},
		"1 MiB password":     {Username: "alice", Password: strings.Repeat("a", 1<<20)},
		"1 MiB username":     {Username: strings.Repeat("a", 1<<20), Password: secret},
		"non-UTF-8":          {Username: "alice", Password: "aap-\xff\xfe" + secret[6:]},
		"checksum typo":      {Username: "alice", Password: testkit.Typo(secret)},
		"transposition":      {Username: "alice", Password: string(swapped)},
		"account password":   {Username: "alice", Password: "account-password-of-alice"},
		"NUL in password":    {Username: "alice", Password: secret + "\x00"},
		"truncated secret":   {Username: "alice", Password: secret[:len(secret)-1]},
		"other prefix (aas)": {Username: "alice", Password: "aas" + secret[3:]},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			before := e.store.Lookups.Load()
			p, err := e.m.Authenticate(t.Context(), c)
			if !errors.Is(err, auth.ErrInvalidCredentials) || p != nil {
				t.Fatalf("got %v, %v; want ErrInvalidCredentials", p, err)
			}
			if n := e.store.Lookups.Load() - before; n != 0 {
				t.Errorf("%d store lookups for input refused by its format", n)
			}
		})
	}
	if e.dir.lookups.Load() != 0 {
		t.Errorf("refused inputs reached the directory %d times", e.dir.lookups.Load())
	}
}

// TestSameErrorForEveryRefusal checks that every kind of refusal returns the
// same error after the same work (one store lookup, no directory call), so
// neither the answer nor the time it takes tells them apart. Only the audit
// log says why.
func TestSameErrorForEveryRefusal(t *testing.T) {
	e := newEnv(t, func(o *auth.Options) { o.CacheSize = -1 })
	_, expSecret, err := e.m.IssueAppPassword(t.Context(), e.alice, auth.IssueRequest{Name: "short-lived", ExpiresAt: e.clock.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	revoked, revokedSecret := e.issue(t, e.alice, "revoked")
	_, good := e.issue(t, e.alice, "good")
	_, bobs := e.issue(t, e.bob, "bob's")
	if err := e.m.RevokeAppPassword(t.Context(), "u-alice", revoked.ID); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(2 * time.Hour) // expires exp
	other, err := authCodecSecret(t, e)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]auth.Attempt{
		"unknown user":                {Username: "mallory", Password: good},
		"wrong password":              {Username: "alice", Password: other},
		"revoked":                     {Username: "alice", Password: revokedSecret},
		"expired":                     {Username: "alice", Password: expSecret},
		"another user's app password": {Username: "alice", Password: bobs},
	}
	for name, c := range cases {
		before := e.store.Lookups.Load()
		p, err := e.m.Authenticate(t.Context(), c)
		if err != auth.ErrInvalidCredentials || p != nil {
			t.Errorf("%s: got %v, %v; want exactly ErrInvalidCredentials", name, p, err)
		}
		if n := e.store.Lookups.Load() - before; n != 1 {
			t.Errorf("%s: %d store lookups, want 1 like every other refusal", name, n)
		}
	}
	for _, reason := range []string{"unknown", "wrong_user", "expired"} {
		if !strings.Contains(e.logs.String(), `"reason":"`+reason+`"`) {
			t.Errorf("the audit log does not say %q", reason)
		}
	}
	if e.dir.lookups.Load() != 0 {
		t.Errorf("refusals reached the directory %d times (a wrong app password must never cause an LDAP bind or search)", e.dir.lookups.Load())
	}
}

// authCodecSecret returns a well-formed app password that was never issued:
// one issued by a Manager with another pepper.
func authCodecSecret(t *testing.T, e *env) (string, error) {
	other, err := auth.NewManager(memory.NewStore(), e.dir, &auth.Options{Peppers: []auth.Pepper{{ID: "x", Key: bytes.Repeat([]byte("x"), 32)}}})
	if err != nil {
		return "", err
	}
	defer other.Close()
	_, s, err := other.IssueAppPassword(t.Context(), e.alice, auth.IssueRequest{Name: "x"})
	return s, err
}

func TestNegativeCache(t *testing.T) {
	e := newEnv(t, nil)
	stale, err := authCodecSecret(t, e)
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		if _, err := e.auth(t, "alice", stale); !errors.Is(err, auth.ErrInvalidCredentials) {
			t.Fatal(err)
		}
	}
	if n := e.store.Lookups.Load(); n != 1 {
		t.Errorf("100 retries of a stale password made %d store lookups, want 1", n)
	}
	e.clock.Add(6 * time.Second)
	e.auth(t, "alice", stale)
	if n := e.store.Lookups.Load(); n != 2 {
		t.Errorf("after the negative TTL: %d lookups, want 2", n)
	}
}

func TestRevokeTakesEffectAtOnce(t *testing.T) {
	e := newEnv(t, nil)
	ap, secret := e.issue(t, e.alice, "phone")
	_, other := e.issue(t, e.alice, "laptop")
	if _, err := e.auth(t, "alice", secret); err != nil { // now cached
		t.Fatal(err)
	}
	if err := e.m.RevokeAppPassword(t.Context(), "u-bob", ap.ID); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("bob revoking alice's password: %v, want ErrNotFound", err)
	}
	if _, err := e.m.RenameAppPassword(t.Context(), "u-bob", ap.ID, "mine"); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("bob renaming alice's password: %v, want ErrNotFound", err)
	}
	if _, err := e.auth(t, "alice", secret); err != nil {
		t.Fatalf("alice's password stopped working after bob's attempts: %v", err)
	}
	if err := e.m.RevokeAppPassword(t.Context(), "u-alice", ap.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.auth(t, "alice", secret); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("revoked password: %v, want ErrInvalidCredentials", err)
	}
	if _, err := e.auth(t, "alice", other); err != nil {
		t.Errorf("revoking one password broke another: %v", err)
	}
	if err := e.m.RevokeAppPassword(t.Context(), "u-alice", ap.ID); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("second revoke: %v, want ErrNotFound", err)
	}
	n, err := e.m.RevokeAllAppPasswords(t.Context(), "u-alice")
	if err != nil || n != 1 {
		t.Errorf("RevokeAll = %d, %v", n, err)
	}
	if _, err := e.auth(t, "alice", other); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("after RevokeAll: %v", err)
	}
}

// TestVerifyRacingRevoke checks that once Revoke returns, no verify that
// starts afterwards succeeds, even with verifies running all along.
func TestVerifyRacingRevoke(t *testing.T) {
	e := newEnv(t, nil)
	for round := range 20 {
		ap, secret := e.issue(t, e.alice, "phone")
		var revoked atomic.Bool
		var wg sync.WaitGroup
		var late atomic.Int64
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 200; i++ {
					after := revoked.Load()
					_, err := e.m.Authenticate(context.Background(), auth.Attempt{Username: "alice", Password: secret})
					if after && err == nil {
						late.Add(1)
					}
				}
			}()
		}
		if err := e.m.RevokeAppPassword(t.Context(), "u-alice", ap.ID); err != nil {
			t.Fatal(err)
		}
		revoked.Store(true)
		wg.Wait()
		if late.Load() != 0 {
			t.Fatalf("round %d: %d verifies succeeded after revoke returned", round, late.Load())
		}
	}
}

func TestStoreOutageIsUnavailable(t *testing.T) {
	e := newEnv(t, func(o *auth.Options) { o.CacheSize = -1 })
	_, secret := e.issue(t, e.alice, "phone")
	for _, storeErr := range []error{auth.ErrUnavailable, errors.New("driver: connection reset"), context.DeadlineExceeded} {
		e.store.Fail(storeErr)
		_, err := e.auth(t, "alice", secret)
		if !errors.Is(err, auth.ErrUnavailable) || errors.Is(err, auth.ErrInvalidCredentials) {
			t.Errorf("store error %v: got %v, want ErrUnavailable", storeErr, err)
		}
		if _, err := e.m.ListAppPasswords(t.Context(), "u-alice"); err == nil {
			t.Errorf("ListAppPasswords hid a store error")
		}
	}
	e.store.Fail(nil)
	if _, err := e.auth(t, "alice", secret); err != nil {
		t.Errorf("after the outage: %v", err)
	}
}

func TestOwnerRecheck(t *testing.T) {
	e := newEnv(t, nil)
	_, secret := e.issue(t, e.alice, "phone")
	_, bobs := e.issue(t, e.bob, "phone")
	mustAuth := func(login, secret string, want error) {
		t.Helper()
		_, err := e.auth(t, login, secret)
		if !errors.Is(err, want) || (want == nil && err != nil) {
			t.Fatalf("Authenticate(%s) = %v, want %v", login, err, want)
		}
	}
	mustAuth("alice", secret, nil)
	if n := e.dir.lookups.Load(); n != 1 {
		t.Fatalf("%d directory lookups, want 1", n)
	}
	for range 100 {
		mustAuth("alice", secret, nil)
	}
	if n := e.dir.lookups.Load(); n != 1 {
		t.Errorf("%d directory lookups within the interval, want 1", n)
	}

	// Directory outage: the last good answer serves through the grace period.
	e.dir.down.Store(true)
	e.clock.Add(6 * time.Minute)
	mustAuth("alice", secret, nil)
	e.clock.Add(50 * time.Minute)
	mustAuth("alice", secret, nil)
	e.clock.Add(10 * time.Minute) // past the 1h grace since the last good answer
	mustAuth("alice", secret, auth.ErrUnavailable)
	mustAuth("bob", bobs, auth.ErrUnavailable) // never looked up: no known-good answer
	e.dir.down.Store(false)
	mustAuth("alice", secret, nil) // nothing was revoked by the outage
	mustAuth("bob", bobs, nil)

	// Disabled: refused once the re-check runs.
	if err := e.dir.SetDisabled("alice", true); err != nil {
		t.Fatal(err)
	}
	mustAuth("alice", secret, nil) // still within the interval
	e.clock.Add(5 * time.Minute)
	mustAuth("alice", secret, auth.ErrInvalidCredentials)
	if err := e.dir.SetDisabled("alice", false); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(5 * time.Minute)
	mustAuth("alice", secret, nil)

	// Deleted, then recreated with the same login but another ID: refused.
	if err := e.dir.DeleteUser("bob"); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(5 * time.Minute)
	mustAuth("bob", bobs, auth.ErrInvalidCredentials)
	e.dir.AddUser(auth.User{ID: "u-bob-2", Login: "bob"}, "x")
	e.clock.Add(5 * time.Minute)
	mustAuth("bob", bobs, auth.ErrInvalidCredentials)
}

func TestLastUsedIsCoalesced(t *testing.T) {
	e := newEnv(t, nil)
	ap, secret := e.issue(t, e.alice, "phone")
	// 10,000 verifies over 5 intervals, flushing every 50 verifies: if each
	// verify queued a write, there would be 200.
	const intervals, perInterval = 5, 2000
	for i := range intervals * perInterval {
		if _, err := e.auth(t, "alice", secret); err != nil {
			t.Fatal(err)
		}
		e.clock.Add(time.Minute / perInterval)
		if i%50 == 49 {
			if err := e.m.Flush(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if rows := e.store.UsageRows.Load(); rows < intervals || rows > intervals+1 {
		t.Errorf("%d verifies over %d intervals made %d last-used writes, want %d", intervals*perInterval, intervals, rows, intervals)
	}
	list, err := e.m.ListAppPasswords(t.Context(), "u-alice")
	if err != nil {
		t.Fatal(err)
	}
	if got := list[0]; got.ID != ap.ID || got.LastUsedAt.IsZero() || got.LastUsedAddr != "192.0.2.7" || got.LastUsedClient != "DAVx5/4.4" {
		t.Errorf("listed %+v", got)
	}
}

func TestCloseFlushesLastUsed(t *testing.T) {
	e := newEnv(t, nil)
	ap, secret := e.issue(t, e.alice, "phone")
	if _, err := e.auth(t, "alice", secret); err != nil {
		t.Fatal(err)
	}
	// A failed write is kept and retried.
	e.store.Fail(auth.ErrUnavailable)
	if err := e.m.Flush(t.Context()); !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("Flush with the store down: %v", err)
	}
	e.store.Fail(nil)
	if err := e.m.Close(); err != nil {
		t.Fatal(err)
	}
	c, err := e.store.Credential(t.Context(), "u-alice", ap.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !c.LastUsedAt.Equal(e.clock.Now()) || c.LastUsedAddr != "192.0.2.7" {
		t.Errorf("after Close the store has last used %v from %q", c.LastUsedAt, c.LastUsedAddr)
	}
}
