package loginflow_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/loginflow"
	"github.com/appauth/appauth/backends/memory"
	"github.com/appauth/appauth/backends/sqlstore"
	"github.com/appauth/appauth/internal/testkit"
)

// TestSharedStoreAcrossServers: three servers (each its Manager and
// Flows) on one store through SharedStore: a flow started on the first is
// granted on the second and collected by a poll on the third, once; of two
// grants on two servers one wins; a granted flow that expires is purged by
// any server, which revokes its app password. With a MemoryStore per
// server (the default) the second server does not know the flow.
func TestSharedStoreAcrossServers(t *testing.T) {
	store := memory.NewStore()
	dir := memory.NewDirectory()
	alice := auth.User{ID: "u-alice", Login: "alice"}
	if err := dir.AddUser(alice, "alice's account password"); err != nil {
		t.Fatal(err)
	}
	clock := testkit.NewClock(start)
	key := bytes.Repeat([]byte("k"), 32)
	type server struct {
		f   *loginflow.Flows
		srv *httptest.Server
	}
	newServer := func(fs loginflow.Store) server {
		m := testkit.NewManager(t, store, dir, &auth.Options{Now: clock.Now})
		f, err := loginflow.New(m, &loginflow.Options{Key: key, Store: fs, Now: clock.Now, PurgeInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		srv := httptest.NewServer(f)
		t.Cleanup(srv.Close)
		return server{f, srv}
	}
	var s []server
	for range 3 {
		s = append(s, newServer(loginflow.NewSharedStore(store)))
	}
	begin := func(on server) *testkit.LoginFlowClient {
		t.Helper()
		c := &testkit.LoginFlowClient{HTTP: on.srv.Client(), UserAgent: davx5UA}
		if err := c.Initiate(on.srv.URL); err != nil {
			t.Fatal(err)
		}
		return c
	}
	pollOn := func(c *testkit.LoginFlowClient, on server) int {
		t.Helper()
		c.PollEndpoint = on.srv.URL + "/login/v2/poll"
		status, res, err := c.Poll()
		if status == http.StatusOK && (err != nil || res.AppPassword == "") {
			t.Fatalf("poll: %v %+v", err, res)
		}
		return status
	}

	c := begin(s[0])
	if got := pollOn(c, s[2]); got != http.StatusNotFound {
		t.Fatalf("poll on the third server before the grant: %d, want 404", got)
	}
	if _, err := s[1].f.Grant(t.Context(), loginToken(t, c.Login), &alice, "alice", auth.IssueRequest{}); err != nil {
		t.Fatalf("grant on the second server of a flow started on the first: %v", err)
	}
	if got := pollOn(c, s[2]); got != http.StatusOK {
		t.Fatalf("poll on the third server after the grant: %d, want 200", got)
	}
	if got := pollOn(c, s[0]); got != http.StatusNotFound {
		t.Errorf("a replayed poll on the first server: %d, want 404", got)
	}

	// Two grants of one flow on two servers: one wins, one app password.
	c = begin(s[2])
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for _, on := range []server{s[0], s[1], s[0], s[1]} {
		wg.Go(func() {
			if _, err := on.f.Grant(t.Context(), loginToken(t, c.Login), &alice, "alice", auth.IssueRequest{}); err == nil {
				mu.Lock()
				won++
				mu.Unlock()
			} else if !errors.Is(err, auth.ErrNotFound) {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if won != 1 {
		t.Errorf("%d of 4 grants on two servers succeeded, want 1", won)
	}

	// That granted flow is never collected: after its lifetime any server's
	// purge revokes its app password.
	m := testkit.NewManager(t, store, dir, &auth.Options{Now: clock.Now})
	before, _ := m.ListAppPasswords(t.Context(), alice.ID)
	clock.Add(21 * time.Minute)
	if n, err := s[1].f.Purge(t.Context()); err != nil || n != 1 {
		t.Fatalf("Purge on the second server = %d, %v; want 1 revoked", n, err)
	}
	after, _ := m.ListAppPasswords(t.Context(), alice.ID)
	if len(before) != 2 || len(after) != 1 {
		t.Errorf("app passwords before and after the purge: %d, %d; want 2, 1", len(before), len(after))
	}

	// The baseline: with a MemoryStore per server the flow is unknown on
	// the other server.
	a, b := newServer(loginflow.NewMemoryStore(0)), newServer(loginflow.NewMemoryStore(0))
	c = begin(a)
	if _, err := b.f.Grant(t.Context(), loginToken(t, c.Login), &alice, "alice", auth.IssueRequest{}); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("baseline: grant on another server with memory stores: %v, want ErrNotFound", err)
	}
}

// TestSharedRequestLimit: RequestsPerMinute holds for the servers sharing
// a SharedStore together: one address spreading flow starts over two
// servers gets the limit once, not once per server, and the next minute's
// window opens again. With a MemoryStore per server each would allow it.
func TestSharedRequestLimit(t *testing.T) {
	store := memory.NewStore()
	clock := testkit.NewClock(start)
	const perMin = 3
	var servers []*httptest.Server
	for range 2 {
		m := testkit.NewManager(t, store, memory.NewDirectory(), &auth.Options{Now: clock.Now})
		f, err := loginflow.New(m, &loginflow.Options{Key: bytes.Repeat([]byte("k"), 32), Store: loginflow.NewSharedStore(store),
			RequestsPerMinute: perMin, Now: clock.Now, PurgeInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		srv := httptest.NewServer(f)
		t.Cleanup(srv.Close)
		servers = append(servers, srv)
	}
	startOn := func(i int) int {
		t.Helper()
		resp, err := servers[i%2].Client().Post(servers[i%2].URL+"/index.php/login/v2", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := range perMin {
		if got := startOn(i); got != http.StatusOK {
			t.Fatalf("start %d: %d, want 200", i+1, got)
		}
	}
	for i := perMin; i < perMin+2; i++ {
		if got := startOn(i); got != http.StatusTooManyRequests {
			t.Fatalf("start %d, spread over both servers: %d, want 429", i+1, got)
		}
	}
	clock.Add(time.Minute)
	if got := startOn(0); got != http.StatusOK {
		t.Fatalf("a start in the next minute: %d, want 200", got)
	}
}

// TestSharedStartLimit: the per-address start limit holds for the servers
// sharing a SharedStore (here on SQLite) together: one address spreading
// its starts over two servers gets the default 10 once, not once per
// server; another address still starts, the capped address's flows are
// still polled, and after the lifetime it starts again.
func TestSharedStartLimit(t *testing.T) {
	store, err := sqlstore.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "appauth.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	dir := memory.NewDirectory()
	alice := auth.User{ID: "u-alice", Login: "alice"}
	if err := dir.AddUser(alice, "alice's account password"); err != nil {
		t.Fatal(err)
	}
	clock := testkit.NewClock(start)
	var flows []*loginflow.Flows
	var servers []*httptest.Server
	for range 2 {
		m := testkit.NewManager(t, store, dir, &auth.Options{Now: clock.Now})
		f, err := loginflow.New(m, &loginflow.Options{Key: bytes.Repeat([]byte("k"), 32), Store: loginflow.NewSharedStore(store),
			ClientAddr: testkit.Resolver(t, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, ""),
			Now:        clock.Now, PurgeInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		srv := httptest.NewServer(f)
		t.Cleanup(srv.Close)
		flows, servers = append(flows, f), append(servers, srv)
	}
	startOn := func(i int, from string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("POST", servers[i%2].URL+"/index.php/login/v2", nil)
		if from != "" {
			req.Header.Set("X-Forwarded-For", from)
		}
		resp, err := servers[i%2].Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	var first *testkit.LoginFlowClient
	for i := range 10 {
		if i == 0 {
			first = &testkit.LoginFlowClient{HTTP: servers[0].Client(), UserAgent: davx5UA}
			if err := first.Initiate(servers[0].URL); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if resp := startOn(i, ""); resp.StatusCode != http.StatusOK {
			t.Fatalf("start %d: %d, want 200", i+1, resp.StatusCode)
		}
	}
	for i := 10; i < 12; i++ {
		if resp := startOn(i, ""); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("start %d, spread over both servers: %d Retry-After %q, want 429 with Retry-After",
				i+1, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	if resp := startOn(1, "203.0.113.9"); resp.StatusCode != http.StatusOK {
		t.Errorf("a start from another address: %d, want 200", resp.StatusCode)
	}
	first.PollEndpoint = servers[1].URL + "/login/v2/poll"
	if status, _, _ := first.Poll(); status != http.StatusNotFound {
		t.Errorf("a poll of the capped address's pending flow: %d, want 404", status)
	}
	if _, err := flows[1].Grant(t.Context(), loginToken(t, first.Login), &alice, "alice", auth.IssueRequest{}); err != nil {
		t.Fatal(err)
	}
	if status, res, err := first.Poll(); status != http.StatusOK || err != nil || res.AppPassword == "" {
		t.Errorf("a poll of the capped address's granted flow: %d %v", status, err)
	}
	clock.Add(20 * time.Minute)
	if resp := startOn(0, ""); resp.StatusCode != http.StatusOK {
		t.Errorf("a start once the lifetime has passed: %d, want 200", resp.StatusCode)
	}
}

// faultyTransients is a real TransientStore with one fault injected: the
// call that fails names (method and kind, "TakeTransient loginflow/poll")
// fails as an outage while fail is set.
type faultyTransients struct {
	auth.TransientStore
	fails string
	fail  atomicBool
}

func (s *faultyTransients) fault(call string) error {
	if s.fail.Load() && call == s.fails {
		return fmt.Errorf("%w: injected: %s", auth.ErrUnavailable, call)
	}
	return nil
}

func (s *faultyTransients) PutTransient(ctx context.Context, kind string, key, value []byte, expires, now time.Time) error {
	if err := s.fault("PutTransient " + kind); err != nil {
		return err
	}
	return s.TransientStore.PutTransient(ctx, kind, key, value, expires, now)
}

func (s *faultyTransients) TakeTransient(ctx context.Context, kind string, key []byte, now time.Time) ([]byte, error) {
	if err := s.fault("TakeTransient " + kind); err != nil {
		return nil, err
	}
	return s.TransientStore.TakeTransient(ctx, kind, key, now)
}

func (s *faultyTransients) DeleteExpiredTransients(ctx context.Context, kind string, now time.Time) ([][]byte, error) {
	if err := s.fault("DeleteExpiredTransients " + kind); err != nil {
		return nil, err
	}
	return s.TransientStore.DeleteExpiredTransients(ctx, kind, now)
}

// sharedFixture is one server on a SharedStore over ts, with alice.
func sharedFixture(t *testing.T, store *memory.Store, ts auth.TransientStore) (*auth.Manager, *loginflow.Flows, *httptest.Server, *testkit.Clock, auth.User) {
	t.Helper()
	m, clock, alice := aliceManager(t, store)
	f, err := loginflow.New(m, &loginflow.Options{Key: bytes.Repeat([]byte("k"), 32), Store: loginflow.NewSharedStore(ts),
		Now: clock.Now, PurgeInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return m, f, srv, clock, alice
}

// TestSharedPurgeRevokesWhatItRemoved: a purge that removed a granted,
// never collected flow and then fails on the next kind of record (the
// store times out) still revokes that flow's app password: the flow is
// gone, so no later purge could.
func TestSharedPurgeRevokesWhatItRemoved(t *testing.T) {
	store := memory.NewStore()
	ts := &faultyTransients{TransientStore: store, fails: "DeleteExpiredTransients loginflow/poll"}
	m, f, srv, clock, alice := sharedFixture(t, store, ts)
	grantedFlow(t, f, srv, &alice)
	clock.Add(21 * time.Minute)
	ts.fail.Store(true)
	if _, err := f.Purge(t.Context()); !errors.Is(err, auth.ErrUnavailable) {
		t.Errorf("Purge with the store failing half-way: %v, want ErrUnavailable", err)
	}
	ts.fail.Store(false)
	if _, err := f.Purge(t.Context()); err != nil {
		t.Fatal(err)
	}
	if aps, err := m.ListAppPasswords(t.Context(), alice.ID); err != nil || len(aps) != 0 {
		t.Errorf("app passwords of the purged, never collected flow: %d (%v), want 0", len(aps), err)
	}
}

// TestSharedPollDeliversATakenFlow: a poll that has taken the granted
// flow delivers it even when removing the poll token's record then fails
// (it expires with the flow, and leads nowhere once the flow is taken):
// a 503 there would lose the app password, leaving it issued and
// undelivered, never purged.
func TestSharedPollDeliversATakenFlow(t *testing.T) {
	store := memory.NewStore()
	ts := &faultyTransients{TransientStore: store, fails: "TakeTransient loginflow/poll"}
	m, f, srv, _, alice := sharedFixture(t, store, ts)
	c := grantedFlow(t, f, srv, &alice)
	ts.fail.Store(true)
	status, res, err := c.Poll()
	if status != http.StatusOK || err != nil || res.AppPassword == "" {
		t.Fatalf("poll of the granted flow while removing its poll record fails: %d %v", status, err)
	}
	if _, err := m.Authenticate(t.Context(), auth.Attempt{Username: res.LoginName, Password: res.AppPassword, RemoteAddr: "192.0.2.1"}); err != nil {
		t.Errorf("the delivered app password: %v", err)
	}
	ts.fail.Store(false)
	if status, _, _ := c.Poll(); status != http.StatusNotFound {
		t.Errorf("a second poll: %d, want 404", status)
	}
}

// TestSharedStoreOutageRetryAfter: with a SharedStore that cannot answer,
// starts and polls are refused by the request count (which asks the store
// first) with 503 and Retry-After, as every other store outage is, so a
// polling client waits and tries again rather than giving up.
func TestSharedStoreOutageRetryAfter(t *testing.T) {
	store := memory.NewStore()
	ts := &faultyTransients{TransientStore: store, fails: "PutTransient loginflow/rate"}
	_, _, srv, _, _ := sharedFixture(t, store, ts)
	ts.fail.Store(true)
	for _, path := range []string{"/index.php/login/v2", "/login/v2/poll"} {
		resp, err := srv.Client().Post(srv.URL+path, "application/x-www-form-urlencoded", strings.NewReader("token=nope"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Errorf("POST %s while the shared store is down: %d, Retry-After %q; want 503 with Retry-After",
				path, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
}
