package oidc_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc/oidctest"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/oidc"
	"github.com/appauth/appauth/auth/settings"
	"github.com/appauth/appauth/backends/memory"
	"github.com/appauth/appauth/internal/testkit"
)

// The fake provider's RSA key, made once per test binary.
var fakeKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

const (
	fakeClientID = "appauth"
	fakeSecret   = "client-secret-for-tests-0123456789"
	fakeKeyID    = "k1"
)

// fakeOP is an in-process OpenID provider for the unit tests of error
// paths: discovery, keys, a token endpoint that checks PKCE and uses each
// code once, and an end_session endpoint. The test plays the browser: it
// calls authorize with the URL Begin returned and the claims the provider
// should sign.
type fakeOP struct {
	t   testing.TB
	srv *httptest.Server
	mu  sync.Mutex
	// codes: code -> the token response it buys (once)
	codes map[string]codeGrant
	// tokenStatus, if not 0, answers the token endpoint with that status.
	tokenStatus int
	// hang, if not nil, holds every token request until it is closed.
	hang chan struct{}
	n    int
}

type codeGrant struct {
	challenge string
	idToken   string
	access    string
}

func newFakeOP(t testing.TB) *fakeOP {
	f := &fakeOP{t: t, codes: map[string]codeGrant{}}
	keys := &oidctest.Server{PublicKeys: []oidctest.PublicKey{{PublicKey: fakeKey().Public(), KeyID: fakeKeyID, Algorithm: "RS256"}}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{
			"issuer": f.srv.URL, "authorization_endpoint": f.srv.URL + "/auth", "token_endpoint": f.srv.URL + "/token",
			"jwks_uri": f.srv.URL + "/keys", "end_session_endpoint": f.srv.URL + "/logout",
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.Handle("GET /keys", keys)
	mux.HandleFunc("POST /token", f.token)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		f.mu.Lock()
		if f.hang != nil {
			close(f.hang)
			f.hang = nil
		}
		f.mu.Unlock()
		f.srv.Close()
	})
	return f
}

func (f *fakeOP) token(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	hang, status := f.hang, f.tokenStatus
	f.mu.Unlock()
	if hang != nil {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
		return
	}
	if status != 0 {
		http.Error(w, `{"error":"server_error"}`, status)
		return
	}
	id, secret, _ := r.BasicAuth()
	if id != fakeClientID || secret != fakeSecret {
		id, secret = r.PostFormValue("client_id"), r.PostFormValue("client_secret")
	}
	f.mu.Lock()
	g, ok := f.codes[r.PostFormValue("code")]
	delete(f.codes, r.PostFormValue("code"))
	f.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostFormValue("code_verifier")))
	w.Header().Set("Content-Type", "application/json")
	if !ok || id != fakeClientID || secret != fakeSecret || base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"error":"invalid_grant"}`))
		return
	}
	json.NewEncoder(w).Encode(map[string]any{"access_token": g.access, "token_type": "Bearer", "expires_in": 300, "id_token": g.idToken})
}

// claims are the ID token's claims for a sign-in of sub at the fake provider.
func (f *fakeOP) claims(sub string, authTime time.Time) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": f.srv.URL, "aud": fakeClientID, "sub": "sub-" + sub, "preferred_username": sub, "sid": "sid-" + sub,
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "auth_time": authTime.Unix(),
	}
}

// authorize plays the provider's authorization endpoint for the URL that
// Begin returned: it signs claims (with the request's nonce unless claims
// has one; a nil value removes a claim) and returns the callback's query.
func (f *fakeOP) authorize(authURL string, claims map[string]any) url.Values {
	f.t.Helper()
	return f.authorizeT(f.t, authURL, claims)
}

// authorizeT is authorize failing t (a fuzz target's, not the F's).
func (f *fakeOP) authorizeT(t testing.TB, authURL string, claims map[string]any) url.Values {
	t.Helper()
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("client_id") != fakeClientID {
		t.Fatalf("authorization request without S256 PKCE or client_id: %s", authURL)
	}
	c := maps.Clone(claims)
	if _, ok := c["nonce"]; !ok {
		c["nonce"] = q.Get("nonce")
	}
	for k, v := range c {
		if v == nil {
			delete(c, k)
		}
	}
	b, _ := json.Marshal(c)
	f.mu.Lock()
	f.n++
	code := "code-" + strings.Repeat("x", f.n%3) + string(rune('a'+f.n%26)) + time.Now().Format("150405.000000000")
	f.codes[code] = codeGrant{challenge: q.Get("code_challenge"), idToken: oidctest.SignIDToken(fakeKey(), fakeKeyID, "RS256", string(b)), access: "access-token"}
	f.mu.Unlock()
	return url.Values{"code": {code}, "state": {q.Get("state")}}
}

// env is a Client on the fake provider, with a memory store and directory
// holding alice (enabled) and dora (disabled).
type env struct {
	t     testing.TB
	op    *fakeOP
	c     *oidc.Client
	m     *auth.Manager
	dir   *memory.Directory
	alice *auth.User
}

func newEnv(t testing.TB, cfg *oidc.Config) *env {
	t.Helper()
	e := &env{t: t, op: newFakeOP(t), dir: memory.NewDirectory()}
	e.alice = &auth.User{ID: "u-alice", Login: "alice"}
	for _, u := range []auth.User{*e.alice, {ID: "u-bob", Login: "bob"}, {ID: "u-dora", Login: "dora"}} {
		if err := e.dir.AddUser(u, "pw-"+u.Login); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.dir.SetDisabled("dora", true); err != nil {
		t.Fatal(err)
	}
	e.m = testkit.NewManager(t, memory.NewStore(), e.dir, nil)
	var c oidc.Config
	if cfg != nil {
		c = *cfg
	}
	c.Issuer, c.ClientID, c.ClientSecret, c.RedirectURL = e.op.srv.URL, fakeClientID, fakeSecret, "http://127.0.0.1/sso/callback"
	cl, err := oidc.New(t.Context(), e.m, e.dir, &c)
	if err != nil {
		t.Fatal(err)
	}
	e.c = cl
	return e
}

// begin starts a sign-in (reauth: of p) and returns the provider URL and
// the browser's binding.
func (e *env) begin(p *auth.Principal) (string, string) {
	e.t.Helper()
	st, err := e.c.Begin(e.t.Context(), settings.SSORequest{ReturnPath: "security", Reauth: p})
	if err != nil {
		e.t.Fatal(err)
	}
	return st.URL, st.Binding
}

// signIn runs a whole sign-in with claims and returns Complete's answer.
func (e *env) signIn(claims map[string]any) (*settings.SSOIdentity, error) {
	e.t.Helper()
	u, binding := e.begin(nil)
	return e.c.Complete(e.t.Context(), e.op.authorize(u, claims), binding)
}
