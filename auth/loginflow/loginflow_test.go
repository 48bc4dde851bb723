package loginflow_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/loginflow"
	"github.com/appauth/appauth/backends/memory"
	"github.com/appauth/appauth/internal/testkit"
)

const davx5UA = "DAVx5/4.4.2-ose (2024/10/01; dav4jvm; okhttp/4.12.0) Android/15"

var start = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type fixture struct {
	m     *auth.Manager
	f     *loginflow.Flows
	store *loginflow.MemoryStore
	clock *testkit.Clock
	srv   *httptest.Server
	alice auth.User
}

// newFixture serves Flows at / on loopback, trusting loopback as a proxy
// so tests can speak for many client addresses with X-Forwarded-For.
func newFixture(t *testing.T, opts *loginflow.Options) *fixture {
	t.Helper()
	m, clock, alice := aliceManager(t, memory.NewStore())
	var o loginflow.Options
	if opts != nil {
		o = *opts
	}
	store := loginflow.NewMemoryStore(o.MaxPending)
	o.Key, o.Store, o.Now, o.PurgeInterval = bytes.Repeat([]byte("k"), 32), store, clock.Now, -1
	o.ClientAddr = testkit.Resolver(t, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, "")
	f, err := loginflow.New(m, &o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return &fixture{m: m, f: f, store: store, clock: clock, srv: srv, alice: alice}
}

// aliceManager is a Manager on store and a memory directory holding alice,
// on a clock at start: what every fixture of these tests serves Flows with.
func aliceManager(t *testing.T, store auth.Store) (*auth.Manager, *testkit.Clock, auth.User) {
	t.Helper()
	dir := memory.NewDirectory()
	alice := auth.User{ID: "u-alice", Login: "alice"}
	if err := dir.AddUser(alice, "alice's account password"); err != nil {
		t.Fatal(err)
	}
	clock := testkit.NewClock(start)
	return testkit.NewManager(t, store, dir, &auth.Options{Now: clock.Now}), clock, alice
}

// grantedFlow starts a flow on srv as DAVx5 and grants it to alice through
// f, for the tests of what becomes of a granted flow; it returns the client
// that started it, to poll.
func grantedFlow(t *testing.T, f *loginflow.Flows, srv *httptest.Server, alice *auth.User) *testkit.LoginFlowClient {
	t.Helper()
	c := &testkit.LoginFlowClient{HTTP: srv.Client(), UserAgent: davx5UA}
	if err := c.Initiate(srv.URL); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Grant(t.Context(), loginToken(t, c.Login), alice, "alice", auth.IssueRequest{}); err != nil {
		t.Fatal(err)
	}
	return c
}

func (x *fixture) client() *flowClient {
	return &flowClient{LoginFlowClient: testkit.LoginFlowClient{HTTP: x.srv.Client(), UserAgent: davx5UA}}
}

type flowClient struct{ testkit.LoginFlowClient }

// loginToken is the last path segment of the login URL.
func loginToken(t *testing.T, login string) string {
	t.Helper()
	u, err := url.Parse(login)
	if err != nil {
		t.Fatal(err)
	}
	tok, ok := strings.CutPrefix(u.Path, "/login/v2/flow/")
	if !ok || tok == "" {
		t.Fatalf("login URL %q is not {base}/login/v2/flow/{token}", login)
	}
	return tok
}

func (x *fixture) grant(t *testing.T, c *flowClient) *auth.AppPassword {
	t.Helper()
	ap, err := x.f.Grant(t.Context(), loginToken(t, c.Login), &x.alice, "alice", auth.IssueRequest{})
	if err != nil {
		t.Fatalf("Grant: %v", err)
	}
	return ap
}

func (x *fixture) appPasswords(t *testing.T) []*auth.AppPassword {
	t.Helper()
	aps, err := x.m.ListAppPasswords(t.Context(), x.alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	return aps
}

func (x *fixture) authenticates(t *testing.T, password string) bool {
	t.Helper()
	_, err := x.m.Authenticate(t.Context(), auth.Attempt{Username: "alice", Password: password, RemoteAddr: "192.0.2.1"})
	return err == nil
}

// The answer to the flow's start is exactly what the clients parse, and
// DAVx⁵'s one poll after the grant gets the app password, which works.
func TestDAVx5OneShotPoll(t *testing.T) {
	x := newFixture(t, nil)
	c := x.client()
	if err := c.Initiate(x.srv.URL + "/"); err != nil {
		t.Fatal(err)
	}
	if want := x.srv.URL + "/login/v2/poll"; c.PollEndpoint != want {
		t.Errorf("poll endpoint %q, want %q", c.PollEndpoint, want)
	}
	if !strings.HasPrefix(c.Login, x.srv.URL+"/login/v2/flow/") {
		t.Errorf("login URL %q", c.Login)
	}
	client, err := x.f.Pending(t.Context(), loginToken(t, c.Login))
	if err != nil || client != davx5UA {
		t.Fatalf("Pending = %q, %v; want the User-Agent %q", client, err, davx5UA)
	}
	ap := x.grant(t, c)
	if ap.Name != davx5UA {
		t.Errorf("app password named %q, want the client %q", ap.Name, davx5UA)
	}
	status, res, err := c.Poll()
	if err != nil || status != http.StatusOK {
		t.Fatalf("poll after grant: %d, %v", status, err)
	}
	if res.Server != x.srv.URL || res.LoginName != "alice" {
		t.Errorf("poll answer server %q login %q, want %q alice", res.Server, res.LoginName, x.srv.URL)
	}
	if !x.authenticates(t, res.AppPassword) {
		t.Error("the delivered app password does not authenticate")
	}
	// Single use: a replayed poll and the used login URL are gone.
	if status, _, _ := c.Poll(); status != http.StatusNotFound {
		t.Errorf("replayed poll: %d, want 404", status)
	}
	if _, err := x.f.Pending(t.Context(), loginToken(t, c.Login)); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("Pending after the poll: %v, want ErrNotFound", err)
	}
	if _, err := x.f.Grant(t.Context(), loginToken(t, c.Login), &x.alice, "alice", auth.IssueRequest{}); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("second Grant: %v, want ErrNotFound", err)
	}
	if n := len(x.appPasswords(t)); n != 1 {
		t.Errorf("%d app passwords, want 1", n)
	}
	if n := x.store.Len(); n != 0 {
		t.Errorf("store holds %d flows after the poll, want 0", n)
	}
}

// The desktop client polls until the grant: 404s, then one 200.
func TestDesktopPollingThenGrant(t *testing.T) {
	x := newFixture(t, nil)
	c := x.client()
	c.UserAgent = "Mozilla/5.0 (Linux) mirall/3.7.3 (Nextcloud, debian-6.1.0 ClientArchitecture: x86_64 OsArchitecture: x86_64)"
	if err := c.Initiate(x.srv.URL); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if status, res, err := c.Poll(); status != http.StatusNotFound || res != nil || err != nil {
			t.Fatalf("poll %d before the grant: %d %v %v, want 404", i, status, res, err)
		}
		x.clock.Add(5 * time.Second)
	}
	x.grant(t, c)
	status, res, err := c.Poll()
	if status != http.StatusOK || err != nil || !x.authenticates(t, res.AppPassword) {
		t.Fatalf("poll after the grant: %d %v", status, err)
	}
	if status, _, _ := c.Poll(); status != http.StatusNotFound {
		t.Errorf("poll after the 200: %d, want 404", status)
	}
}

// Behind TLS (here: a trusted proxy saying so) every URL is https.
func TestHTTPSBehindProxy(t *testing.T) {
	x := newFixture(t, nil)
	req, _ := http.NewRequest("POST", x.srv.URL+"/index.php/login/v2", nil)
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("X-Forwarded-For", "198.51.100.7")
	req.Host = "dav.example.org"
	resp, err := x.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`"endpoint":"https://dav.example.org/login/v2/poll"`, `"login":"https://dav.example.org/login/v2/flow/`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("answer %s lacks %s", b, want)
		}
	}
}

func TestPublicURLWins(t *testing.T) {
	x := newFixture(t, &loginflow.Options{PublicURL: "https://cloud.example.org/dav"})
	c := x.client()
	if err := c.Initiate(x.srv.URL); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(c.Login, "https://cloud.example.org/dav/login/v2/flow/") || c.PollEndpoint != "https://cloud.example.org/dav/login/v2/poll" {
		t.Errorf("login %q poll %q", c.Login, c.PollEndpoint)
	}
}

// A denied flow leaves nothing: no app password, no flow, polls 404.
func TestDenied(t *testing.T) {
	x := newFixture(t, nil)
	c := x.client()
	if err := c.Initiate(x.srv.URL); err != nil {
		t.Fatal(err)
	}
	if err := x.f.Deny(t.Context(), loginToken(t, c.Login)); err != nil {
		t.Fatal(err)
	}
	if status, _, _ := c.Poll(); status != http.StatusNotFound {
		t.Errorf("poll after deny: %d, want 404", status)
	}
	if _, err := x.f.Grant(t.Context(), loginToken(t, c.Login), &x.alice, "alice", auth.IssueRequest{}); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("Grant after deny: %v, want ErrNotFound", err)
	}
	if n := len(x.appPasswords(t)); n != 0 {
		t.Errorf("%d app passwords after deny, want 0", n)
	}
	if n := x.store.Len(); n != 0 {
		t.Errorf("store holds %d flows after deny", n)
	}
}

// After 20 minutes a flow cannot be granted or polled; a granted flow
// never collected has its app password revoked by Purge.
func TestExpired(t *testing.T) {
	x := newFixture(t, nil)
	pending, granted := x.client(), x.client()
	for _, c := range []*flowClient{pending, granted} {
		if err := c.Initiate(x.srv.URL); err != nil {
			t.Fatal(err)
		}
	}
	x.clock.Add(19 * time.Minute)
	ap := x.grant(t, granted)
	x.clock.Add(time.Minute)
	if _, err := x.f.Grant(t.Context(), loginToken(t, pending.Login), &x.alice, "alice", auth.IssueRequest{}); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("Grant at 20 minutes: %v, want ErrNotFound", err)
	}
	if status, _, _ := granted.Poll(); status != http.StatusNotFound {
		t.Errorf("poll of a granted flow at 20 minutes: %d, want 404", status)
	}
	n, err := x.f.Purge(t.Context())
	if err != nil || n != 1 {
		t.Fatalf("Purge = %d, %v; want 1 revoked", n, err)
	}
	if aps := x.appPasswords(t); len(aps) != 0 {
		t.Errorf("app password %s of the expired flow survives", ap.ID)
	}
	if n := x.store.Len(); n != 0 {
		t.Errorf("store holds %d expired flows after Purge", n)
	}
}

// Wrong, malformed and huge tokens get the pending flow's 404, and never
// reach a flow.
func TestWrongTokens(t *testing.T) {
	x := newFixture(t, nil)
	c := x.client()
	if err := c.Initiate(x.srv.URL); err != nil {
		t.Fatal(err)
	}
	x.grant(t, c)
	login := loginToken(t, c.Login)
	wrong := []string{
		"", "x", strings.Repeat("A", 43), login, // the login token is not a poll token
		c.Token[:42], c.Token + "A", strings.ToUpper(c.Token), strings.Repeat("A", 1<<20),
	}
	for _, tok := range wrong {
		if tok == c.Token {
			continue
		}
		other := &flowClient{LoginFlowClient: c.LoginFlowClient}
		other.Token = tok
		status, res, _ := other.Poll()
		if res != nil || (status != http.StatusNotFound && status != http.StatusBadRequest && status != http.StatusRequestEntityTooLarge) {
			t.Errorf("poll with a wrong token (%d bytes): %d %v", len(tok), status, res)
		}
	}
	for _, tok := range []string{c.Token, strings.Repeat("x", 1<<16), "../../x", ""} {
		if _, err := x.f.Pending(t.Context(), tok); !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("Pending(%.20q): %v, want ErrNotFound", tok, err)
		}
	}
	// The right one still works after all that.
	if status, res, err := c.Poll(); status != http.StatusOK || err != nil || !x.authenticates(t, res.AppPassword) {
		t.Errorf("the right poll after wrong ones: %d %v", status, err)
	}
}

// Two grants racing for one flow issue one app password.
func TestConcurrentGrants(t *testing.T) {
	x := newFixture(t, nil)
	c := x.client()
	if err := c.Initiate(x.srv.URL); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range 8 {
		wg.Go(func() {
			if _, err := x.f.Grant(context.Background(), loginToken(t, c.Login), &x.alice, "alice", auth.IssueRequest{}); err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if ok != 1 {
		t.Errorf("%d grants succeeded, want 1", ok)
	}
	if n := len(x.appPasswords(t)); n != 1 {
		t.Errorf("%d app passwords remain, want 1 (the losers' are revoked)", n)
	}
}

func post(t *testing.T, x *fixture, path, from, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", x.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-For", from)
	resp, err := x.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// Many flows from many addresses fill the bound and no more: the next is
// 503 with Retry-After, and the flows already started still complete.
func TestManyFlowsFromManyAddresses(t *testing.T) {
	const bound = 200
	x := newFixture(t, &loginflow.Options{MaxPending: bound})
	c := x.client()
	if err := c.Initiate(x.srv.URL); err != nil {
		t.Fatal(err)
	}
	refused := 0
	for i := range bound + 50 {
		resp := post(t, x, "/index.php/login/v2", fmt.Sprintf("10.%d.%d.1", i/250, i%250), "")
		switch resp.StatusCode {
		case http.StatusOK:
		case http.StatusServiceUnavailable:
			refused++
			if resp.Header.Get("Retry-After") == "" {
				t.Fatal("503 without Retry-After")
			}
		default:
			t.Fatalf("flow %d: %d", i, resp.StatusCode)
		}
	}
	if n := x.store.Len(); n != bound {
		t.Errorf("store holds %d flows, want the bound %d", n, bound)
	}
	if refused != 51 { // the fixture's own flow took one place
		t.Errorf("%d flows refused, want 51", refused)
	}
	x.grant(t, c)
	if status, _, err := c.Poll(); status != http.StatusOK || err != nil {
		t.Errorf("an earlier flow under the flood: %d %v", status, err)
	}
	// Once they expire, new flows are taken again.
	x.clock.Add(20 * time.Minute)
	if resp := post(t, x, "/index.php/login/v2", "10.9.9.9", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("a flow after the flood expired: %d", resp.StatusCode)
	}
}

// Polls (and starts) from one address are limited per minute; another
// address is not affected, and the limit lifts after the minute.
func TestPollThrottled(t *testing.T) {
	x := newFixture(t, &loginflow.Options{RequestsPerMinute: 10})
	for i := range 10 {
		if resp := post(t, x, "/login/v2/poll", "203.0.113.5", "token=nope"); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("poll %d: %d, want 404", i, resp.StatusCode)
		}
	}
	resp := post(t, x, "/login/v2/poll", "203.0.113.5", "token=nope")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("11th poll: %d Retry-After %q, want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if resp := post(t, x, "/index.php/login/v2", "203.0.113.5", ""); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("a start from the throttled address: %d, want 429", resp.StatusCode)
	}
	if resp := post(t, x, "/login/v2/poll", "203.0.113.6", "token=nope"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("poll from another address: %d, want 404", resp.StatusCode)
	}
	x.clock.Add(time.Minute)
	if resp := post(t, x, "/login/v2/poll", "203.0.113.5", "token=nope"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("poll after the minute: %d, want 404", resp.StatusCode)
	}
}

// startFrom starts a flow from the client's own address (loopback, no
// X-Forwarded-For) and returns the response, body unread.
func startFrom(t *testing.T, srv *httptest.Server) *http.Response {
	t.Helper()
	resp, err := srv.Client().Post(srv.URL+"/index.php/login/v2", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// One address holds at most StartsPerLifetime (default 10) flow starts
// per lifetime, so a few addresses cannot fill MaxPending: the next start
// is 429 with Retry-After for the rest of the window, another address
// still starts, and the first address's flows are polled and delivered.
func TestStartsPerAddressBounded(t *testing.T) {
	x := newFixture(t, nil)
	var flows []*flowClient
	for i := range 10 {
		c := x.client()
		if err := c.Initiate(x.srv.URL); err != nil {
			t.Fatalf("start %d: %v", i+1, err)
		}
		flows = append(flows, c)
	}
	resp := startFrom(t, x.srv)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("11th start from one address: %d Retry-After %q, want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if wait, _ := strconv.Atoi(resp.Header.Get("Retry-After")); wait <= 60 {
		t.Errorf("Retry-After %d s, want the rest of the lifetime window (over a minute)", wait)
	}
	if resp := post(t, x, "/index.php/login/v2", "203.0.113.9", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("a start from another address: %d, want 200", resp.StatusCode)
	}
	if status, _, _ := flows[0].Poll(); status != http.StatusNotFound {
		t.Errorf("a poll of a pending flow of the capped address: %d, want 404", status)
	}
	x.grant(t, flows[1])
	if status, res, err := flows[1].Poll(); status != http.StatusOK || err != nil || res.AppPassword == "" {
		t.Errorf("a poll of a granted flow of the capped address: %d %v", status, err)
	}
}

// The start limit lifts when the lifetime window has passed.
func TestStartLimitLiftsAfterLifetime(t *testing.T) {
	x := newFixture(t, nil)
	for i := range 10 {
		if resp := startFrom(t, x.srv); resp.StatusCode != http.StatusOK {
			t.Fatalf("start %d: %d, want 200", i+1, resp.StatusCode)
		}
	}
	x.clock.Add(19 * time.Minute)
	if resp := startFrom(t, x.srv); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a start within the lifetime: %d, want 429", resp.StatusCode)
	}
	x.clock.Add(time.Minute)
	if resp := startFrom(t, x.srv); resp.StatusCode != http.StatusOK {
		t.Errorf("a start once the lifetime has passed: %d, want 200", resp.StatusCode)
	}
}

// The limiter's memory is bounded: beyond MaxAddresses new addresses are
// refused (fail closed), known ones keep their budget.
func TestLimiterBounded(t *testing.T) {
	x := newFixture(t, &loginflow.Options{MaxAddresses: 50})
	for i := range 50 {
		post(t, x, "/login/v2/poll", fmt.Sprintf("10.0.%d.1", i), "token=nope")
	}
	if resp := post(t, x, "/login/v2/poll", "10.1.0.1", "token=nope"); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("a 51st address: %d, want 429", resp.StatusCode)
	}
	if resp := post(t, x, "/login/v2/poll", "10.0.3.1", "token=nope"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("a known address: %d, want 404", resp.StatusCode)
	}
}

// The store never holds a token or the app password, only hashes and the
// sealed secret.
func TestStoreHoldsNoSecret(t *testing.T) {
	rec := &recordingStore{Store: loginflow.NewMemoryStore(0)}
	x := newFixture(t, nil)
	f, err := loginflow.New(x.m, &loginflow.Options{Key: bytes.Repeat([]byte("k"), 32), Store: rec, PurgeInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	srv := httptest.NewServer(f)
	defer srv.Close()
	c := grantedFlow(t, f, srv, &x.alice)
	rec.mu.Lock()
	seen := bytes.Join(rec.seen, []byte("|"))
	rec.mu.Unlock()
	_, res, err := c.Poll()
	if err != nil || res == nil {
		t.Fatalf("poll: %v", err)
	}
	for name, s := range map[string]string{"poll token": c.Token, "login token": loginToken(t, c.Login), "app password": res.AppPassword} {
		if bytes.Contains(seen, []byte(s)) {
			t.Errorf("the store was given the %s", name)
		}
	}
}

type recordingStore struct {
	loginflow.Store
	mu   sync.Mutex
	seen [][]byte
}

func (s *recordingStore) note(f *loginflow.Flow) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = append(s.seen, []byte(fmt.Sprintf("%q %q %q %q %q %q %q", f.LoginHash, f.PollHash, f.Client, f.Server, f.LoginName, f.Sealed, f.PublicKey)))
}

func (s *recordingStore) Add(ctx context.Context, f *loginflow.Flow, now time.Time) error {
	s.note(f)
	return s.Store.Add(ctx, f, now)
}

func (s *recordingStore) Grant(ctx context.Context, f *loginflow.Flow, now time.Time) error {
	s.note(f)
	return s.Store.Grant(ctx, f, now)
}

// A store that cannot answer is 503 with Retry-After, never a 404 that
// would make a polling client give up or a 200 without a password.
func TestStoreOutage(t *testing.T) {
	x := newFixture(t, nil)
	down := &failingStore{Store: loginflow.NewMemoryStore(0)}
	f, err := loginflow.New(x.m, &loginflow.Options{Key: bytes.Repeat([]byte("k"), 32), Store: down, PurgeInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	srv := httptest.NewServer(f)
	defer srv.Close()
	c := &testkit.LoginFlowClient{HTTP: srv.Client(), UserAgent: davx5UA}
	if err := c.Initiate(srv.URL); err != nil {
		t.Fatal(err)
	}
	down.fail.Store(true)
	if status, _, _ := c.Poll(); status != http.StatusServiceUnavailable {
		t.Errorf("poll while the store is down: %d, want 503", status)
	}
	if _, err := f.Grant(t.Context(), loginToken(t, c.Login), &x.alice, "alice", auth.IssueRequest{}); !errors.Is(err, auth.ErrUnavailable) {
		t.Errorf("Grant while the store is down: %v, want ErrUnavailable", err)
	}
	if n := len(x.appPasswords(t)); n != 0 {
		t.Errorf("%d app passwords issued by a failed grant", n)
	}
	if err := (&testkit.LoginFlowClient{HTTP: srv.Client()}).Initiate(srv.URL); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("start while the store is down: %v, want HTTP 503", err)
	}
}

type failingStore struct {
	loginflow.Store
	fail atomicBool
}

type atomicBool struct {
	mu sync.Mutex
	v  bool
}

func (b *atomicBool) Store(v bool) { b.mu.Lock(); b.v = v; b.mu.Unlock() }
func (b *atomicBool) Load() bool   { b.mu.Lock(); defer b.mu.Unlock(); return b.v }

var errDown = errors.New("store down")

func (s *failingStore) Add(ctx context.Context, f *loginflow.Flow, now time.Time) error {
	if s.fail.Load() {
		return errDown
	}
	return s.Store.Add(ctx, f, now)
}
func (s *failingStore) Get(ctx context.Context, h []byte, now time.Time) (*loginflow.Flow, error) {
	if s.fail.Load() {
		return nil, errDown
	}
	return s.Store.Get(ctx, h, now)
}
func (s *failingStore) Take(ctx context.Context, h []byte, now time.Time) (*loginflow.Flow, error) {
	if s.fail.Load() {
		return nil, errDown
	}
	return s.Store.Take(ctx, h, now)
}

// A client removes its own app password, and only with that password.
func TestRevokeOwnAppPassword(t *testing.T) {
	x := newFixture(t, nil)
	_, secret, err := x.m.IssueAppPassword(t.Context(), &x.alice, auth.IssueRequest{Name: "desktop"})
	if err != nil {
		t.Fatal(err)
	}
	_, other, err := x.m.IssueAppPassword(t.Context(), &x.alice, auth.IssueRequest{Name: "phone"})
	if err != nil {
		t.Fatal(err)
	}
	principal := func(ctx context.Context) (*auth.Principal, bool) {
		p, ok := ctx.Value(principalKey{}).(*auth.Principal)
		return p, ok
	}
	h := loginflow.RevokeHandler(x.m, principal)
	serve := func(method string, p *auth.Principal) int {
		r := httptest.NewRequest(method, "/ocs/v2.php/core/apppassword", nil)
		if p != nil {
			r = r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	p, err := x.m.Authenticate(t.Context(), auth.Attempt{Username: "alice", Password: secret})
	if err != nil {
		t.Fatal(err)
	}
	if code := serve("GET", p); code != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", code)
	}
	if code := serve("DELETE", &auth.Principal{User: x.alice, Method: auth.MethodSession, CredentialID: p.CredentialID}); code != http.StatusForbidden {
		t.Errorf("DELETE by a session: %d, want 403", code)
	}
	if code := serve("DELETE", nil); code != http.StatusForbidden {
		t.Errorf("DELETE without a principal: %d, want 403", code)
	}
	if code := serve("DELETE", p); code != http.StatusOK {
		t.Errorf("DELETE: %d, want 200", code)
	}
	if x.authenticates(t, secret) {
		t.Error("the removed app password still works")
	}
	if !x.authenticates(t, other) {
		t.Error("another app password was removed too")
	}
}

type principalKey struct{}

func TestNewRefusesShortKey(t *testing.T) {
	x := newFixture(t, nil)
	for _, o := range []*loginflow.Options{nil, {}, {Key: bytes.Repeat([]byte("k"), 31)}} {
		if _, err := loginflow.New(x.m, o); err == nil || !strings.Contains(err.Error(), "Key") {
			t.Errorf("New with a short key: %v", err)
		}
	}
}
