package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/appauth/appauth/internal/browser"
	"github.com/appauth/appauth/internal/testenv"
	"github.com/appauth/appauth/internal/testkit"
)

// roundRobin is a reverse proxy on loopback that sends each request to the
// next node, forwards the client's address in X-Forwarded-For, and skips a
// node it cannot connect to (a killed one), as a load balancer's health
// check would.
type roundRobin struct {
	mu     sync.Mutex
	nodes  []*url.URL
	next   int
	served map[string]int // node host -> requests it answered
	proxy  *httputil.ReverseProxy
}

func newRoundRobin(nodes ...string) *roundRobin {
	rr := &roundRobin{served: map[string]int{}}
	for _, n := range nodes {
		rr.set(len(rr.nodes), n)
	}
	rr.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(rr.pick())
			pr.SetXForwarded()
			pr.Out.Host = pr.In.Host
		},
		Transport: rr,
	}
	return rr
}

// set makes node i the server at base.
func (rr *roundRobin) set(i int, base string) {
	u, err := url.Parse(base)
	if err != nil {
		panic(err)
	}
	rr.mu.Lock()
	defer rr.mu.Unlock()
	if i == len(rr.nodes) {
		rr.nodes = append(rr.nodes, u)
	}
	rr.nodes[i] = u
}

func (rr *roundRobin) pick() *url.URL {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	u := rr.nodes[rr.next%len(rr.nodes)]
	rr.next++
	return u
}

// RoundTrip sends req to its node, or, when that node refuses the
// connection (the request never reached it), to the next ones.
func (rr *roundRobin) RoundTrip(req *http.Request) (*http.Response, error) {
	for try := 0; ; try++ {
		resp, err := http.DefaultTransport.RoundTrip(req)
		var op *net.OpError
		if err == nil || !errors.As(err, &op) || op.Op != "dial" || try >= 3 {
			if err == nil {
				rr.mu.Lock()
				rr.served[req.URL.Host]++
				rr.mu.Unlock()
			}
			return resp, err
		}
		next := rr.pick()
		req = req.Clone(req.Context())
		req.URL.Scheme, req.URL.Host = next.Scheme, next.Host
		if req.GetBody != nil {
			if req.Body, err = req.GetBody(); err != nil {
				return nil, err
			}
		}
	}
}

// ServeHTTP buffers the (small) body, so that a request can be sent again
// to another node when the first cannot be reached.
func (rr *roundRobin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	rr.proxy.ServeHTTP(w, r)
}

// clientFrom returns an HTTP client whose connections come from the
// loopback address ip, so that the nodes see a client address of its own
// behind the proxy (127.0.0.1, the proxy's, is the only trusted one).
func clientFrom(t *testing.T, ip string, jar http.CookieJar) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Jar: jar, Timeout: 30 * time.Second}
}

// TestThreeNodesBehindProxy runs three built servers on one PostgreSQL
// database behind a round-robin proxy and checks that what one server
// promises holds for the three together: the seed flow (sign in, create an
// app password, use it over DAV) across nodes; a Login Flow v2 onboarding
// (a Go client and Chromium, each step on whichever node the proxy picks)
// whose browser signs in through the real OpenID Connect provider; a revocation of an app
// password and of a session refused by every node (each asked directly,
// each with the credential cached before); the per-user session bound; a
// brute force spread over the nodes evaluated no more than one node's
// bound; a node killed mid-flow (the flow completes on the others); the
// node restarted, listening again and refusing what was revoked elsewhere;
// and a fourth node with another pepper refused at start.
func TestThreeNodesBehindProxy(t *testing.T) {
	dsn := testenv.Postgres(t)
	bin := buildServer(t)
	tmp := t.TempDir()
	// The proxy first: the provider must know its address.
	rr := newRoundRobin()
	front := httptest.NewServer(rr)
	t.Cleanup(front.Close)
	base := front.URL + "/"
	op := testenv.OIDC(t, testenv.OIDCClient{
		ID: "davserver", Secret: "client-secret-for-tests-0123456789",
		RedirectURIs: []string{base + "sso/callback"}, BackchannelLogoutURI: base + "sso/backchannel-logout",
	})
	oidcSecret := filepath.Join(tmp, "oidc-secret")
	if err := os.WriteFile(oidcSecret, []byte("client-secret-for-tests-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(tmp, "data") // the shared volume: pepper, users, DAV files
	args := []string{"-addr", "127.0.0.1:0", "-data", data, "-trusted-proxies", "127.0.0.1", "-forwarded-header", "X-Forwarded-For",
		"-public-url", front.URL}
	env := []string{"APPAUTH_POSTGRES=" + dsn, "APPAUTH_OIDC_ISSUER=" + op.Issuer, "APPAUTH_OIDC_CLIENT_ID=davserver",
		"APPAUTH_OIDC_CLIENT_SECRET_FILE=" + oidcSecret, "APPAUTH_OIDC_NAME=Example SSO"}
	nodes := []*serverProcess{startServerWith(t, bin, tmp, args, env)}
	user, password := bannerValue(nodes[0].banner, "username"), bannerValue(nodes[0].banner, "password")
	if user == "" || password == "" {
		t.Fatalf("first node's banner without demo credentials:\n%s", nodes[0].banner)
	}
	for range 2 {
		nodes = append(nodes, startServerWith(t, bin, tmp, args, env))
	}
	for i, n := range nodes {
		rr.set(i, n.base)
	}
	stderr := func() string {
		var b strings.Builder
		for i, n := range nodes {
			fmt.Fprintf(&b, "--- node %d:\n%s", i, lastLines(n.stderr.String(), 20))
		}
		return b.String()
	}

	// A fourth node whose pepper file holds another key under the same ID
	// refuses to start, although it could serve on its own.
	otherPepper := filepath.Join(tmp, "other-pepper")
	if err := os.WriteFile(otherPepper, []byte("1:"+hex.EncodeToString(bytes.Repeat([]byte{7}, 32))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Bounded: a node that starts anyway is killed, and the check fails.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(append([]string{}, args...), "-pepper-file", otherPepper)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "same pepper file") || strings.Contains(string(out), "Listening on") {
		t.Fatalf("a node with another pepper: %v\n%s\nwant a refused start naming the shared pepper file", err, out)
	}

	web := func(ip string) *webClient {
		jar, _ := cookiejar.New(nil)
		c := &webClient{t: t, base: base, hc: clientFrom(t, ip, jar)}
		var s struct {
			CSRFToken string `json:"csrfToken"`
		}
		c.call("POST", "api/v1/session", map[string]any{"username": user, "password": password}, http.StatusOK, &s)
		c.csrf = s.CSRFToken
		return c
	}
	propfind := func(hc *http.Client, base, secret string) int {
		t.Helper()
		req, _ := http.NewRequest("PROPFIND", base+"dav/files/"+user+"/", nil)
		req.Header.Set("Depth", "0")
		req.SetBasicAuth(user, secret)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	direct := &http.Client{Timeout: 30 * time.Second}
	// refusedEverywhere waits until every node, asked directly, answers
	// 401 to do, and returns how long the slowest took after the
	// revocation returned at revoked.
	refusedEverywhere := func(what string, revoked time.Time, do func(base string) int) time.Duration {
		t.Helper()
		var slowest time.Duration
		for i, n := range nodes {
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
				st := do(n.base)
				if st == http.StatusUnauthorized {
					slowest = max(slowest, time.Since(revoked))
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: node %d still answers %d 10s after the revocation\n%s", what, i, st, stderr())
				}
			}
		}
		return slowest
	}

	// The seed flow through the proxy: sign in, create, use on every node.
	phone := web("127.0.0.2")
	ap := phone.createAppPassword("Phone")
	device := clientFrom(t, "127.0.0.2", nil)
	for i := range 6 {
		if st := propfind(device, base, ap.Password); st != http.StatusMultiStatus {
			t.Fatalf("PROPFIND %d through the proxy with the new app password: %d, want 207\n%s", i, st, stderr())
		}
	}
	rr.mu.Lock()
	for i, n := range rr.nodes {
		if rr.served[n.Host] == 0 {
			t.Errorf("node %d answered no request through the proxy: %v", i, rr.served)
		}
	}
	rr.mu.Unlock()

	// The page's create form through the proxy: the secret is shown once
	// on whichever node the redirect reaches.
	shownOnceAcrossNodes(t, phone, rr, front.URL, propfind, stderr)

	// A Login Flow v2 onboarding through the proxy: the client starts it,
	// the browser signs in and grants on whichever nodes the proxy picks,
	// the client polls; every step may land on another node.
	// The browser signs in through the real provider (single sign-on: the
	// pending sign-in is put by one node, the provider's redirect lands on
	// another), then grants.
	tab := browser.New(t, chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"))
	flow := &testkit.LoginFlowClient{HTTP: clientFrom(t, "127.0.0.6", nil), UserAgent: uaDAVx5}
	if err := flow.Initiate(strings.TrimSuffix(base, "/")); err != nil {
		t.Fatal(err)
	}
	if status, _, _ := flow.Poll(); status != http.StatusNotFound {
		t.Fatalf("poll before the grant: %d, want 404", status)
	}
	step, cancel := context.WithTimeout(tab, 60*time.Second) // a bound on the step, not a timing assertion
	defer cancel()
	err = chromedp.Do(step,
		chromedp.Navigate(flow.Login),
		chromedp.Click(chromedp.ID("sso-signin")),
		chromedp.WaitVisible(`input[name="login"]`),
		chromedp.SetValue(`input[name="login"]`, user),
		chromedp.SetValue(`input[name="password"]`, "any password"),
		chromedp.Click(`button[type="submit"]`),
		chromedp.WaitVisible(chromedp.ID("grant-submit")),
		chromedp.Click(chromedp.ID("grant-submit")),
		chromedp.WaitVisible(chromedp.ID("grant-done")),
	)
	if err != nil {
		body, _ := chromedp.Run(tab, chromedp.Text(`body`))
		t.Fatalf("browser: single sign-on and grant through the proxy: %v\npage: %.500s\n%s", err, body, stderr())
	}
	status, granted, err := flow.Poll()
	if status != http.StatusOK || err != nil {
		t.Fatalf("poll after the grant: %d %v\n%s", status, err, stderr())
	}
	if status, _, _ := flow.Poll(); status != http.StatusNotFound {
		t.Errorf("replayed poll: %d, want 404", status)
	}
	for _, n := range nodes {
		if st := propfind(direct, n.base, granted.AppPassword); st != http.StatusMultiStatus && st != http.StatusForbidden {
			t.Errorf("the delivered app password on %s: %d, want it accepted (207, or 403 for its scope)", n.base, st)
		}
	}

	// An app password cached on every node, revoked through the proxy:
	// every node refuses it.
	for _, n := range nodes {
		if st := propfind(direct, n.base, ap.Password); st != http.StatusMultiStatus {
			t.Fatalf("PROPFIND on %s directly: %d, want 207", n.base, st)
		}
	}
	phone.call("DELETE", "api/v1/app-passwords/"+ap.ID, nil, http.StatusNoContent, nil)
	apDelay := refusedEverywhere("revoked app password", time.Now(), func(b string) int { return propfind(direct, b, ap.Password) })

	// A session revoked by another session of the same user: every node
	// refuses its cookie.
	laptop := web("127.0.0.3")
	listStatus := func(c *webClient, b string) int {
		req, _ := http.NewRequest("GET", b+"api/v1/sessions", nil)
		resp, err := c.hc.Do(req) // the jar sends the cookie to every port of 127.0.0.1
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, n := range nodes {
		if st := listStatus(laptop, n.base); st != http.StatusOK {
			t.Fatalf("the laptop's session on %s: %d, want 200", n.base, st)
		}
	}
	var sessions struct {
		Sessions []struct {
			ID      string `json:"id"`
			Current bool   `json:"current"`
		} `json:"sessions"`
	}
	laptop.call("GET", "api/v1/sessions", nil, http.StatusOK, &sessions)
	var laptopID string
	for _, s := range sessions.Sessions {
		if s.Current {
			laptopID = s.ID
		}
	}
	phone.call("DELETE", "api/v1/sessions/"+laptopID, nil, http.StatusNoContent, nil)
	sessionDelay := refusedEverywhere("revoked session", time.Now(), func(b string) int { return listStatus(laptop, b) })
	t.Logf("revocation refused by all 3 nodes after: app password %v, session %v", apDelay, sessionDelay)

	// The per-user session bound holds across nodes: with 53 sign-ins
	// live (phone, the browser, then 51 spread over the three), 50 remain.
	var last *webClient
	for range 51 {
		last = web("127.0.0.4")
	}
	last.call("GET", "api/v1/sessions", nil, http.StatusOK, &sessions)
	sessionCount := len(sessions.Sessions)
	t.Logf("session bound through the proxy: %d sessions after 53 live sign-ins", sessionCount)
	if sessionCount != 50 {
		t.Errorf("after 53 live sign-ins through the proxy: %d sessions, want 50 (MaxSessions)", sessionCount)
	}

	// A brute force of the account password from one address, round-robin
	// over the nodes: evaluated (401) no more than one node's AddressLimit
	// (10), plus at most one stale read per other node.
	attacker := clientFrom(t, "127.0.0.66", nil)
	evaluated, throttled := 0, 0
	for i := range 60 {
		body := fmt.Sprintf(`{"username":%q,"password":"wrong-guess-%d"}`, user, i)
		resp, err := attacker.Post(base+"api/v1/session", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusUnauthorized:
			evaluated++
		case http.StatusTooManyRequests:
			throttled++
		default:
			t.Fatalf("guess %d: %d, want 401 or 429", i, resp.StatusCode)
		}
	}
	t.Logf("brute force, 60 guesses from one address over 3 nodes: %d evaluated, %d throttled", evaluated, throttled)
	if evaluated > 10+2 {
		t.Errorf("%d guesses evaluated over 3 nodes, want at most one node's 10 (+2 stale reads)", evaluated)
	}
	// The owner, from an address that signed in before, still gets in.
	web("127.0.0.2")

	// A node killed mid-flow: signed in, node 1 dies, the app password is
	// created and used on the others.
	tablet := web("127.0.0.5")
	nodes[1].cmd.Process.Signal(syscall.SIGKILL)
	<-nodes[1].done
	ap2 := tablet.createAppPassword("Tablet")
	for i := range 4 {
		if st := propfind(device, base, ap2.Password); st != http.StatusMultiStatus {
			t.Fatalf("PROPFIND %d with node 1 killed: %d, want 207", i, st)
		}
	}

	// Node 1 restarted (on a new port): it listens again, and refuses a
	// password it had cached once another node revokes it.
	nodes[1] = startServerWith(t, bin, tmp, args, env)
	rr.set(1, nodes[1].base)
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(nodes[1].stderr.String(), "change notification: listening"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the restarted node does not listen for changes:\n%s", nodes[1].stderr)
		}
	}
	if st := propfind(direct, nodes[1].base, ap2.Password); st != http.StatusMultiStatus {
		t.Fatalf("the restarted node with the tablet's password: %d, want 207", st)
	}
	tablet.call("DELETE", "api/v1/app-passwords/"+ap2.ID, nil, http.StatusNoContent, nil)
	restartDelay := refusedEverywhere("revoked after the restart", time.Now(), func(b string) int { return propfind(direct, b, ap2.Password) })
	t.Logf("after the restart, revocation refused by all 3 nodes after %v", restartDelay)

	for _, n := range nodes {
		n.stop(t)
	}
	logs := stderr()
	for _, s := range []string{password, ap.Password, ap2.Password} {
		if strings.Contains(logs, s) {
			t.Error("a secret is in a node's log")
		}
	}
}
