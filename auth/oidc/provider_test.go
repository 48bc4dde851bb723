package oidc_test

import (
	"encoding/json"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/oidc"
	"github.com/appauth/appauth/auth/settings"
	"github.com/appauth/appauth/backends/memory"
	"github.com/appauth/appauth/internal/testenv"
	"github.com/appauth/appauth/internal/testkit"
)

// proxiedSSO is the settings page at /account/ signing people in through
// the real OpenID provider (oidc-provider), as the users of a memory
// directory (alice). The Client makes every call to the provider through
// a loopback HTTP proxy, which counts the requests per path and can answer
// one path with a status of the test's choice instead of the provider.
type proxiedSSO struct {
	op    *testenv.OIDCProvider
	srv   *httptest.Server
	c     *oidc.Client
	m     *auth.Manager
	clock *testkit.Clock // the Client's
	proxy *faultProxy
	// tokenPath and jwksPath are the provider's token endpoint and key set.
	tokenPath, jwksPath string
	events              chan auth.Event // revocations by back-channel logout
}

func newProxiedSSO(t *testing.T) *proxiedSSO {
	t.Helper()
	s := &proxiedSSO{clock: testkit.NewClock(time.Now()), events: make(chan auth.Event, 16)}
	dir := memory.NewDirectory()
	if err := dir.AddUser(auth.User{ID: "u-alice", Login: "alice"}, "pw-alice"); err != nil {
		t.Fatal(err)
	}
	s.m = testkit.NewManager(t, memory.NewStore(), dir, &auth.Options{OnEvent: func(e auth.Event) {
		if e.Type == auth.EventRevoked && e.Reason == "backchannel_logout" {
			s.events <- e
		}
	}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String() + "/account/"
	s.op = testenv.OIDC(t, testenv.OIDCClient{
		ID: fakeClientID, Secret: fakeSecret, RedirectURIs: []string{base + "sso/callback"},
		BackchannelLogoutURI: base + "sso/backchannel-logout", BackchannelLogoutSessionRequired: true,
	})
	var disc struct {
		Token string `json:"token_endpoint"`
		JWKS  string `json:"jwks_uri"`
	}
	resp, err := http.Get(s.op.Issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&disc)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*string{&disc.Token, &disc.JWKS} {
		u, err := url.Parse(*p)
		if err != nil {
			t.Fatal(err)
		}
		*p = u.Path
	}
	s.tokenPath, s.jwksPath = disc.Token, disc.JWKS
	s.proxy = newFaultProxy(t)
	proxyURL, _ := url.Parse(s.proxy.srv.URL)
	s.c, err = oidc.New(t.Context(), s.m, dir, &oidc.Config{
		Issuer: s.op.Issuer, ClientID: fakeClientID, ClientSecret: fakeSecret, RedirectURL: base + "sso/callback",
		Now: s.clock.Now, Timeout: 5 * time.Second,
		HTTPClient: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	h, err := settings.New(s.m, nil, &settings.Options{Prefix: "/account/", SSO: s.c})
	if err != nil {
		t.Fatal(err)
	}
	s.srv = &httptest.Server{Listener: ln, Config: &http.Server{Handler: h}}
	s.srv.Start()
	t.Cleanup(s.srv.Close)
	return s
}

// newBrowser returns a browser without JavaScript: cookies, and redirects
// followed up to (and not beyond) this page's sign-in callback.
func (s *proxiedSSO) newBrowser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if strings.HasSuffix(via[len(via)-1].URL.Path, "/sso/callback") {
			return http.ErrUseLastResponse
		}
		return nil
	}}
}

// signIn signs in through the provider's development login form as login
// (unless b still has a session there) and returns the page's answer to
// the callback: 303 to the security page when signed in.
func (s *proxiedSSO) signIn(t *testing.T, b *http.Client, login string) (*http.Response, string) {
	t.Helper()
	resp, body := get(t, b, s.srv.URL+"/account/sso/start")
	if resp.Request.URL.Path != "/account/sso/callback" {
		resp, body = submit(t, b, resp, body, url.Values{"login": {login}, "password": {"any password"}})
	}
	if resp.Request.URL.Path != "/account/sso/callback" {
		t.Fatalf("the provider's login form led to %s (%d), not the callback", resp.Request.URL, resp.StatusCode)
	}
	return resp, body
}

// signInKeys signs alice in with a new browser and checks the callback's
// status and the requests for the provider's keys so far.
func (s *proxiedSSO) signInKeys(t *testing.T, what string, status, fetches int) {
	t.Helper()
	resp, _ := s.signIn(t, s.newBrowser(t), "alice")
	if resp.StatusCode != status || s.proxy.count(s.jwksPath) != fetches {
		t.Fatalf("%s: callback %d after %d requests for the keys, want %d after %d", what, resp.StatusCode, s.proxy.count(s.jwksPath), status, fetches)
	}
}

// endProviderSession signs out at the provider, which then posts a
// back-channel logout token to the page.
func (s *proxiedSSO) endProviderSession(t *testing.T, b *http.Client) {
	t.Helper()
	resp, body := get(t, b, s.op.Issuer+"/session/end")
	resp, _ = submit(t, b, resp, body, url.Values{"logout": {"yes"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Request.URL.Path, "/session/end/success") {
		t.Fatalf("provider logout ended at %s (%d)", resp.Request.URL, resp.StatusCode)
	}
}

func get(t *testing.T, b *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := b.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	return resp, readBody(t, resp)
}

var (
	formAction  = regexp.MustCompile(`<form[^>]*action="([^"]*)"`)
	hiddenInput = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)"`)
)

// submit posts the first form of page (resp, body) with its hidden inputs
// and fields.
func submit(t *testing.T, b *http.Client, resp *http.Response, body string, fields url.Values) (*http.Response, string) {
	t.Helper()
	m := formAction.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no form at %s (%d): %.300s", resp.Request.URL, resp.StatusCode, body)
	}
	action, err := resp.Request.URL.Parse(html.UnescapeString(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{}
	for _, in := range hiddenInput.FindAllStringSubmatch(body, -1) {
		form.Set(html.UnescapeString(in[1]), html.UnescapeString(in[2]))
	}
	for k, v := range fields {
		form[k] = v
	}
	resp, err = b.PostForm(action.String(), form)
	if err != nil {
		t.Fatal(err)
	}
	return resp, readBody(t, resp)
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// faultProxy is a loopback HTTP forward proxy to the provider.
type faultProxy struct {
	srv    *httptest.Server
	mu     sync.Mutex
	counts map[string]int   // requests per path
	faults map[string]fault // path -> the answer instead of the provider's
}

type fault struct {
	status int
	header http.Header
}

func newFaultProxy(t *testing.T) *faultProxy {
	p := &faultProxy{counts: map[string]int{}, faults: map[string]fault{}}
	rp := &httputil.ReverseProxy{Rewrite: func(*httputil.ProxyRequest) {}} // the request's URL is absolute
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.counts[r.URL.Path]++
		f, ok := p.faults[r.URL.Path]
		p.mu.Unlock()
		if !ok {
			rp.ServeHTTP(w, r)
			return
		}
		for k, v := range f.header {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(f.status)
		io.WriteString(w, http.StatusText(f.status))
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// fail answers path with f from now on; a zero f forwards it again.
func (p *faultProxy) fail(path string, f fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if f.status == 0 {
		delete(p.faults, path)
		return
	}
	p.faults[path] = f
}

func (p *faultProxy) count(path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[path]
}
