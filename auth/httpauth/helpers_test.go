package httpauth_test

import (
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/httpauth"
	"github.com/appauth/appauth/auth/throttle"
	"github.com/appauth/appauth/backends/memory"
	"github.com/appauth/appauth/internal/testkit"
)

const (
	aliceAccountPassword = "correct horse battery staple"
	attacker             = "198.51.100.66:40000"
	home                 = "203.0.113.9:50000"
)

type env struct {
	m        *auth.Manager
	mw       *httpauth.Middleware
	throttle *throttle.Throttle
	clock    *testkit.Clock
	store    *testkit.Store
	verifier *testkit.Verifier
	logs     *testkit.Buffer
	alice    *auth.User
	bob      *auth.User
	handler  http.Handler // mw.Wrap(whoami)
}

// newEnv returns a Manager on a memory store and directory, with a Throttle
// as its Limiter, and the middleware around whoami. edit may change the
// middleware's options (Throttle and Logger are preset).
func newEnv(t testing.TB, edit func(*env, *httpauth.Options)) *env {
	t.Helper()
	e := &env{
		clock: testkit.NewClock(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)),
		store: testkit.NewStore(memory.NewStore()),
		logs:  &testkit.Buffer{},
		alice: &auth.User{ID: "u-alice", Login: "alice"},
		bob:   &auth.User{ID: "u-bob", Login: "bob"},
	}
	dir := memory.NewDirectory()
	if err := dir.AddUser(*e.alice, aliceAccountPassword); err != nil {
		t.Fatal(err)
	}
	if err := dir.AddUser(*e.bob, "bob's account password"); err != nil {
		t.Fatal(err)
	}
	e.verifier = testkit.NewVerifier(dir)
	logger := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var err error
	e.throttle, err = throttle.New(&throttle.Options{Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	e.m = testkit.NewManager(t, e.store, dir, &auth.Options{
		Now:     e.clock.Now,
		Logger:  logger,
		Limiter: e.throttle,
	})
	opts := &httpauth.Options{Logger: logger}
	if edit != nil {
		edit(e, opts)
	}
	e.mw, err = httpauth.New(e.m, opts)
	if err != nil {
		t.Fatal(err)
	}
	e.handler = e.mw.Wrap(http.HandlerFunc(whoami))
	return e
}

// whoami answers 200 with the principal's login, method and scopes, or
// "anonymous".
func whoami(w http.ResponseWriter, r *http.Request) {
	p, ok := httpauth.PrincipalFromContext(r.Context())
	if !ok {
		fmt.Fprint(w, "anonymous")
		return
	}
	fmt.Fprintf(w, "%s %s %s", p.User.Login, p.Method, strings.Join(p.Scopes, ","))
}

func (e *env) issue(t testing.TB, u *auth.User, scopes ...string) string {
	t.Helper()
	_, secret, err := e.m.IssueAppPassword(t.Context(), u, auth.IssueRequest{Name: "device", Scopes: scopes})
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

// request is one request to a handler.
type request struct {
	method string // default GET
	authz  string // Authorization header, if not empty
	remote string // RemoteAddr, default home
	header http.Header
}

func serve(h http.Handler, req request) *httptest.ResponseRecorder {
	method := req.method
	if method == "" {
		method = http.MethodGet
	}
	r := httptest.NewRequest(method, "/dav/", nil)
	r.RemoteAddr = home
	if req.remote != "" {
		r.RemoteAddr = req.remote
	}
	if req.authz != "" {
		r.Header.Set("Authorization", req.authz)
	}
	for k, v := range req.header {
		r.Header[k] = v
	}
	r.Header.Set("User-Agent", "DAVx5/4.4")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func (e *env) do(req request) *httptest.ResponseRecorder { return serve(e.handler, req) }

func basic(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

const wantChallenge = `Basic realm="appauth", charset="UTF-8"`

// check asserts a response's status and body, and the headers every
// refusal must (and must not) carry.
func check(t *testing.T, name string, w *httptest.ResponseRecorder, status int, body string) {
	t.Helper()
	if w.Code != status {
		t.Errorf("%s: status %d, want %d (body %q)", name, w.Code, status, w.Body.String())
		return
	}
	if body != "" && w.Body.String() != body {
		t.Errorf("%s: body %q, want %q", name, w.Body.String(), body)
	}
	challenge := w.Header().Get("WWW-Authenticate")
	retry := w.Header().Get("Retry-After")
	switch status {
	case http.StatusUnauthorized:
		if challenge != wantChallenge {
			t.Errorf("%s: WWW-Authenticate %q, want %q", name, challenge, wantChallenge)
		}
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		if retry == "" {
			t.Errorf("%s: %d without Retry-After", name, status)
		}
		fallthrough
	default:
		if challenge != "" {
			t.Errorf("%s: %d with WWW-Authenticate %q: clients would drop the password", name, status, challenge)
		}
	}
}

// allowAccountPasswords is an edit for newEnv.
func allowAccountPasswords(e *env, o *httpauth.Options) { o.AccountPasswords = e.verifier }
