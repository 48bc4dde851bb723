package auth_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/internal/testkit"
)

// TestClippedClientInfoKeepsNoHeader: what the Manager keeps of a
// client's address and user agent until it writes them (the pending audit
// records, one per credential, address and client, and the last-used
// queue) is a copy of the clipped part, not a slice of the header: a
// credential's holder sending a new 1 MiB User-Agent per request must not
// pin a megabyte per pending record.
func TestClippedClientInfoKeepsNoHeader(t *testing.T) {
	e, _ := infoEnv(t, nil)
	_, secret := e.issue(t, e.alice, "phone")
	ctx := t.Context()
	const uses, size = 64, 1 << 20
	use := func(i int) {
		ua := fmt.Sprintf("%d ", i) + strings.Repeat("x", size)
		if _, err := e.m.Authenticate(ctx, auth.Attempt{Username: "alice", Password: secret, RemoteAddr: "192.0.2.1", UserAgent: ua}); err != nil {
			t.Fatal(err)
		}
	}
	use(-1) // the first verify caches the credential
	before := testkit.LiveHeap()
	for i := range uses {
		use(i)
	}
	if grown := int64(testkit.LiveHeap()) - int64(before); grown > uses*size/8 {
		t.Fatalf("%d uses with distinct %d-byte user agents left %d more bytes live (pending records pin the headers)", uses, size, grown)
	}
	e.m.FlushUses(ctx, true)
}

// TestHugeClientInfoIsBounded: the address, user agent and login a client
// sends reach the audit log and the event hook bounded, whichever edge
// passed them on unbounded (a 1 MiB User-Agent with a bogus session cookie,
// a 1 MiB login at the sign-in): an anonymous client cannot make one
// request a megabyte of log, nor a credential's holder keep a megabyte per
// use in the pending audit records.
func TestHugeClientInfoIsBounded(t *testing.T) {
	var mu sync.Mutex
	var events []auth.Event
	e, logs := infoEnv(t, func(o *auth.Options) {
		o.OnEvent = func(ev auth.Event) { mu.Lock(); events = append(events, ev); mu.Unlock() }
	})
	_, secret := e.issue(t, e.alice, "phone")
	huge := strings.Repeat("\x01A", 512<<10) // 1 MiB, and 5 MiB once escaped
	ctx := t.Context()
	e.m.AuthenticateSession(ctx, "not-a-session", huge, huge)
	e.m.Authenticate(ctx, auth.Attempt{Username: "alice", Password: "wrong", RemoteAddr: huge, UserAgent: huge})
	e.m.Authenticate(ctx, auth.Attempt{Username: "alice", Password: secret, RemoteAddr: huge, UserAgent: huge + "1"})
	e.m.AuthenticateToken(ctx, secret, huge, huge+"2")
	e.m.VerifyAccountPassword(ctx, e.dir, auth.Attempt{Username: huge, Password: "x", RemoteAddr: huge, UserAgent: huge})
	e.m.VerifyAccountPassword(ctx, e.dir, auth.Attempt{Username: "alice", Password: "wrong", RemoteAddr: huge, UserAgent: huge})
	e.m.IssueAppPassword(ctx, e.alice, auth.IssueRequest{Name: "tablet", RemoteAddr: huge, UserAgent: huge})
	e.m.CreateSession(ctx, e.alice, huge, huge)
	e.m.FlushUses(ctx, true)

	const bound = 4 << 10
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	sc.Buffer(nil, 64<<20)
	lines := 0
	for sc.Scan() {
		lines++
		if n := len(sc.Bytes()); n > bound {
			t.Errorf("a log line of %d bytes: %.120s...", n, sc.Text())
		}
	}
	if lines < 8 {
		t.Errorf("%d log lines, want one per decision", lines)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, ev := range events {
		if n := len(ev.Login) + len(ev.RemoteAddr) + len(ev.UserAgent); n > bound {
			t.Errorf("a %s %s event holding %d bytes of client input", ev.Type, ev.Kind, n)
		}
	}
}

// contextDirectory is a memory directory that ends a lookup when its
// context is done, as the LDAP directory does (it closes the connection).
type contextDirectory struct{ *countingDirectory }

func (d contextDirectory) LookupUser(ctx context.Context, login string) (*auth.User, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: search: %w", auth.ErrUnavailable, err)
	}
	return d.countingDirectory.LookupUser(ctx, login)
}

// TestClientLeavingIsNoDirectoryOutage: a client that hangs up while its
// request re-checks the owner does not make the directory look down: the
// owner's answer is not kept as the last good one for another ownerRetry
// (which let a disabled user's device in for 30 more seconds, its holder
// choosing when), and no outage is reported.
func TestClientLeavingIsNoDirectoryOutage(t *testing.T) {
	var mu sync.Mutex
	var outages []auth.Event
	e := newEnv(t, nil)
	// A credential cached for longer than the owner's answer, so that the
	// re-check is the request's only call.
	m := testkit.NewManager(t, e.store, contextDirectory{e.dir}, &auth.Options{Peppers: []auth.Pepper{testPepper}, Now: e.clock.Now, CacheTTL: time.Hour,
		OnEvent: func(ev auth.Event) {
			if ev.Type == auth.EventUnavailable {
				mu.Lock()
				outages = append(outages, ev)
				mu.Unlock()
			}
		}})
	_, secret, err := m.IssueAppPassword(t.Context(), e.alice, auth.IssueRequest{Name: "phone"})
	if err != nil {
		t.Fatal(err)
	}
	a := auth.Attempt{Username: "alice", Password: secret, RemoteAddr: "192.0.2.7"}
	if _, err := m.Authenticate(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	if err := e.dir.SetDisabled("alice", true); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(6 * time.Minute) // the owner is due for a re-check
	gone, cancel := context.WithCancel(t.Context())
	cancel()
	m.Authenticate(gone, a) // the client has hung up meanwhile
	if _, err := m.Authenticate(t.Context(), a); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("disabled owner after a client left mid re-check: %v, want ErrInvalidCredentials", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, ev := range outages {
		t.Errorf("outage reported: %s %s: %v", ev.Reason, ev.Kind, ev.Err)
	}
}

// TestActiveSessionNotIdleWithLongLastUsedInterval: a session used every
// 10 minutes is not idle, whatever LastUsedInterval (how often its use is
// written) says: the idle check read the write gate, which moved only
// once per interval, so with an interval longer than SessionIdleTimeout
// an active session was signed out once the timeout had passed since
// sign-in.
func TestActiveSessionNotIdleWithLongLastUsedInterval(t *testing.T) {
	e := newEnv(t, func(o *auth.Options) {
		o.SessionIdleTimeout = 30 * time.Minute
		o.LastUsedInterval = time.Hour
	})
	ctx := t.Context()
	_, busy, err := e.m.CreateSession(ctx, e.alice, "", "")
	if err != nil {
		t.Fatal(err)
	}
	_, idle, _ := e.m.CreateSession(ctx, e.alice, "", "")
	for range 12 { // 2 h
		e.clock.Add(10 * time.Minute)
		if _, err := e.m.AuthenticateSession(ctx, busy, "", ""); err != nil {
			t.Fatalf("session used every 10 minutes refused at %v: %v", e.clock.Now(), err)
		}
	}
	if _, err := e.m.AuthenticateSession(ctx, idle, "", ""); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("idle session: %v", err)
	}
}

// TestNegativeCacheAfterAStaleEntry: a password revoked on another server
// (no change notification) is found gone once its cached entry is past
// CacheTTL, and then its retries cost no store query for
// NegativeCacheTTL, as any stale password's do: the stale entry left in
// the cache hid the negative one, so every retry of the old phone reached
// the store.
func TestNegativeCacheAfterAStaleEntry(t *testing.T) {
	e := newEnv(t, nil)
	other := testkit.NewManager(t, e.store, e.dir, &auth.Options{Peppers: []auth.Pepper{testPepper}, Now: e.clock.Now})
	ap, secret := e.issue(t, e.alice, "phone")
	if _, err := e.auth(t, "alice", secret); err != nil {
		t.Fatal(err)
	}
	if err := other.RevokeAppPassword(t.Context(), e.alice.ID, ap.ID); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(31 * time.Second) // past CacheTTL
	before := e.store.Lookups.Load()
	for range 100 {
		if _, err := e.auth(t, "alice", secret); !errors.Is(err, auth.ErrInvalidCredentials) {
			t.Fatalf("revoked elsewhere: %v", err)
		}
	}
	if n := e.store.Lookups.Load() - before; n != 1 {
		t.Errorf("100 retries of a password revoked elsewhere made %d store lookups, want 1", n)
	}
}
