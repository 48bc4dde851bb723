package httpauth_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/httpauth"
	"github.com/appauth/appauth/backends/memory"
	"github.com/appauth/appauth/internal/testkit"
)

const unauthorized = "Unauthorized\n"

func TestMiddlewareAppPasswords(t *testing.T) {
	e := newEnv(t, nil)
	secret := e.issue(t, e.alice)
	bobSecret := e.issue(t, e.bob)

	check(t, "Basic", e.do(request{authz: basic("alice", secret)}), 200, "alice app_password ")
	check(t, "Basic, scheme and secret in other case", e.do(request{authz: "bAsIc " + strings.TrimPrefix(basic("ALICE", strings.ToUpper(secret)), "Basic ")}), 200, "alice app_password ")
	check(t, "Bearer", e.do(request{authz: "Bearer " + secret}), 200, "alice app_password ")
	check(t, "Bearer, bob's", e.do(request{authz: "Bearer " + bobSecret}), 200, "bob app_password ")

	// Every refusal gets the same status, challenge and body.
	for name, authz := range map[string]string{
		"none":                      "",
		"wrong password":            basic("alice", bobSecret),
		"unknown user":              basic("mallory", secret),
		"typo":                      basic("alice", testkit.Typo(secret)),
		"bearer typo":               "Bearer " + testkit.Typo(secret),
		"bearer unknown":            "Bearer aap-22222222-22222222-22222222-22222222",
		"account password":          basic("alice", aliceAccountPassword),
		"not base64":                "Basic !!!!",
		"no colon":                  "Basic YWxpY2U=",
		"other scheme":              "Digest username=\"alice\"",
		"scheme only":               "Basic",
		"empty bearer":              "Bearer ",
		"bearer with space":         "Bearer aap 2222",
		"control character in user": basic("al\x00ice", secret),
	} {
		check(t, name, e.do(request{authz: authz}), http.StatusUnauthorized, unauthorized)
	}
}

// TestEmptyPasswordReachesNoVerifier sends the empty-password attacks from
// SECURITY.md with account passwords allowed, so that a verifier would be
// called if the middleware let them through.
func TestEmptyPasswordReachesNoVerifier(t *testing.T) {
	e := newEnv(t, allowAccountPasswords)
	for _, authz := range []string{"Basic dXNlcjo=", "Basic Og==", basic("alice", ""), basic("", aliceAccountPassword), "Basic ", "Bearer"} {
		check(t, authz, e.do(request{authz: authz}), http.StatusUnauthorized, unauthorized)
	}
	if n, m := e.verifier.Calls.Load(), e.store.Lookups.Load(); n != 0 || m != 0 {
		t.Errorf("empty credentials reached the verifier %d times and the store %d times, want 0", n, m)
	}
}

func TestTwoAuthorizationHeaders(t *testing.T) {
	e := newEnv(t, nil)
	secret := e.issue(t, e.alice)
	w := e.do(request{header: http.Header{"Authorization": {basic("alice", secret), basic("bob", "x")}}})
	check(t, "two headers", w, http.StatusUnauthorized, unauthorized)
}

func TestOversizedAuthorizationRefusedCheaply(t *testing.T) {
	e := newEnv(t, allowAccountPasswords)
	huge := basic("alice", strings.Repeat("a", 1<<20))
	check(t, "1 MiB", e.do(request{authz: huge}), http.StatusUnauthorized, unauthorized)
	check(t, "just over the limit", e.do(request{authz: "Bearer " + strings.Repeat("a", httpauth.MaxAuthorizationLen)}), http.StatusUnauthorized, unauthorized)
	check(t, "300-byte password", e.do(request{authz: basic("alice", strings.Repeat("a", 300))}), http.StatusUnauthorized, unauthorized)
	if n, m := e.verifier.Calls.Load(), e.store.Lookups.Load(); n != 0 || m != 0 {
		t.Errorf("oversized credentials reached the verifier %d times and the store %d times, want 0", n, m)
	}
	// Refused before decoding: decoding would allocate about 768 KiB.
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 20 {
		e.do(request{authz: huge})
	}
	runtime.ReadMemStats(&after)
	if perRequest := (after.TotalAlloc - before.TotalAlloc) / 20; perRequest > 64<<10 {
		t.Errorf("a 1 MiB header allocated %d bytes per request: it was decoded", perRequest)
	}
}

func TestAccountPassword(t *testing.T) {
	e := newEnv(t, nil)
	check(t, "refused by default", e.do(request{authz: basic("alice", aliceAccountPassword)}), http.StatusUnauthorized, unauthorized)
	if n := e.verifier.Calls.Load(); n != 0 {
		t.Errorf("account password checked %d times with the option off", n)
	}

	e = newEnv(t, allowAccountPasswords)
	secret := e.issue(t, e.alice)
	check(t, "allowed", e.do(request{authz: basic("alice", aliceAccountPassword)}), 200, "alice account_password ")
	check(t, "wrong", e.do(request{authz: basic("alice", "Tr0ub4dor&3")}), http.StatusUnauthorized, unauthorized)
	check(t, "app password still an app password", e.do(request{authz: basic("alice", secret)}), 200, "alice app_password ")
	check(t, "typo in an app password is not sent to the directory", e.do(request{authz: basic("alice", testkit.Typo(secret))}), http.StatusUnauthorized, unauthorized)
	if n := e.verifier.Calls.Load(); n != 2 {
		t.Errorf("verifier called %d times, want 2 (the two account passwords)", n)
	}

	unthrottled := testkit.NewManager(t, memory.NewStore(), memory.NewDirectory(), &auth.Options{})
	if _, err := httpauth.New(unthrottled, &httpauth.Options{AccountPasswords: e.verifier}); err == nil || !strings.Contains(err.Error(), "Limiter") {
		t.Errorf("New with AccountPasswords and a Manager without a Limiter: %v, want an error naming Limiter", err)
	}
}

func TestAccountPasswordThrottled(t *testing.T) {
	e := newEnv(t, allowAccountPasswords)
	for i := range 10 {
		check(t, "guess", e.do(request{authz: basic("alice", fmt.Sprintf("guess-%d", i)), remote: attacker}), http.StatusUnauthorized, unauthorized)
	}
	w := e.do(request{authz: basic("alice", aliceAccountPassword), remote: attacker})
	check(t, "after 10 failures, even the right password", w, http.StatusTooManyRequests, "Too Many Requests\n")
	if got := w.Header().Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After %q, want 1", got)
	}
	if n := e.verifier.Calls.Load(); n != 10 {
		t.Errorf("verifier called %d times, want 10: a throttled attempt reached it", n)
	}
	check(t, "other address", e.do(request{authz: basic("alice", aliceAccountPassword)}), 200, "alice account_password ")
}

func TestOutageIs503(t *testing.T) {
	e := newEnv(t, allowAccountPasswords)
	secret := e.issue(t, e.alice)
	e.store.Fail(fmt.Errorf("test store: connection refused: %w", auth.ErrUnavailable))
	for name, authz := range map[string]string{"Basic": basic("alice", secret), "Bearer": "Bearer " + secret} {
		w := e.do(request{authz: authz})
		check(t, name, w, http.StatusServiceUnavailable, "Service Unavailable\n")
		if got := w.Header().Get("Retry-After"); got != "10" {
			t.Errorf("%s: Retry-After %q, want the default 10", name, got)
		}
	}
	e.store.Fail(nil)
	check(t, "recovered", e.do(request{authz: basic("alice", secret)}), 200, "")

	for _, err := range []error{auth.ErrUnavailable, errors.New("ldap: connection reset")} {
		e.verifier.Fail(err)
		check(t, "directory: "+err.Error(), e.do(request{authz: basic("alice", aliceAccountPassword)}), http.StatusServiceUnavailable, "Service Unavailable\n")
	}
	// An outage is not the client's failure: it must not count towards the
	// throttle (11 outages, then a success from the same address).
	for range 11 {
		e.do(request{authz: basic("alice", aliceAccountPassword)})
	}
	e.verifier.Fail(nil)
	check(t, "after the outage", e.do(request{authz: basic("alice", aliceAccountPassword)}), 200, "")
}

// authFunc is an Authenticator from a function, without AuthenticateToken.
type authFunc func(context.Context, auth.Attempt) (*auth.Principal, error)

func (f authFunc) Authenticate(ctx context.Context, c auth.Attempt) (*auth.Principal, error) {
	return f(ctx, c)
}

func TestErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		retry  string
	}{
		{auth.ErrInvalidCredentials, 401, ""},
		{fmt.Errorf("wrapped: %w", auth.ErrInvalidCredentials), 401, ""},
		{auth.ErrForbidden, 403, ""},
		{auth.ErrThrottled, 429, "1"},
		{&auth.ThrottleError{RetryAfter: 1500 * time.Millisecond}, 429, "2"},
		{&auth.ThrottleError{RetryAfter: 10 * time.Minute}, 429, "600"},
		{&auth.ThrottleError{}, 429, "1"},
		{auth.ErrUnavailable, 503, "30"},
		{fmt.Errorf("%w: %w", auth.ErrUnavailable, auth.ErrInvalidCredentials), 503, "30"},
		{errors.New("something else"), 503, "30"},
		{auth.ErrNotFound, 503, "30"},
	} {
		mw, err := httpauth.New(authFunc(func(context.Context, auth.Attempt) (*auth.Principal, error) { return nil, tc.err }),
			&httpauth.Options{UnavailableRetryAfter: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		w := serve(mw.Wrap(http.HandlerFunc(whoami)), request{authz: basic("alice", "x")})
		check(t, tc.err.Error(), w, tc.status, http.StatusText(tc.status)+"\n")
		if got := w.Header().Get("Retry-After"); got != tc.retry {
			t.Errorf("%v: Retry-After %q, want %q", tc.err, got, tc.retry)
		}
	}
}

func TestBearerWithoutTokenAuthenticator(t *testing.T) {
	called := false
	mw, err := httpauth.New(authFunc(func(context.Context, auth.Attempt) (*auth.Principal, error) {
		called = true
		return &auth.Principal{User: auth.User{Login: "alice"}}, nil
	}), nil)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "bearer", serve(mw.Wrap(http.HandlerFunc(whoami)), request{authz: "Bearer abc"}), 401, unauthorized)
	if called {
		t.Error("a Bearer token was passed to Authenticate without a username")
	}
}

func TestOptionsRequests(t *testing.T) {
	e := newEnv(t, nil)
	check(t, "OPTIONS without credentials", e.do(request{method: http.MethodOptions}), 200, "anonymous")
	check(t, "OPTIONS with wrong credentials", e.do(request{method: http.MethodOptions, authz: basic("alice", "wrong")}), 401, unauthorized)
	check(t, "PROPFIND without credentials", e.do(request{method: "PROPFIND"}), 401, unauthorized)
	e = newEnv(t, func(_ *env, o *httpauth.Options) { o.ChallengeOptions = true })
	check(t, "OPTIONS with ChallengeOptions", e.do(request{method: http.MethodOptions}), 401, unauthorized)
}

func TestRealm(t *testing.T) {
	e := newEnv(t, nil)
	mw, err := httpauth.New(e.m, &httpauth.Options{Realm: "Calendars & Contacts"})
	if err != nil {
		t.Fatal(err)
	}
	w := serve(mw.Wrap(http.HandlerFunc(whoami)), request{})
	if got, want := w.Header().Get("WWW-Authenticate"), `Basic realm="Calendars & Contacts", charset="UTF-8"`; got != want {
		t.Errorf("WWW-Authenticate %q, want %q", got, want)
	}
	for _, bad := range []string{`a"b`, `a\b`, "a\nb"} {
		if _, err := httpauth.New(e.m, &httpauth.Options{Realm: bad}); err == nil {
			t.Errorf("Realm %q accepted", bad)
		}
	}
	if _, err := httpauth.New(nil, nil); err == nil {
		t.Error("New(nil) accepted")
	}
}

func TestNoSecretInLogs(t *testing.T) {
	e := newEnv(t, allowAccountPasswords)
	secret := e.issue(t, e.alice)
	requests := []string{
		basic("alice", secret), "Bearer " + secret, basic("bob", secret), basic("alice", testkit.Typo(secret)),
		basic("alice", aliceAccountPassword), basic("alice", "wrong-account-password"), "Basic !!!",
		basic("al\nice", aliceAccountPassword),
	}
	for _, authz := range requests {
		e.do(request{authz: authz})
	}
	err := auth.ErrUnavailable
	e.verifier.Fail(err)
	e.do(request{authz: basic("alice", aliceAccountPassword)})

	logs := e.logs.String()
	if !strings.Contains(logs, `"kind":"account_password"`) || !strings.Contains(logs, `"reason":"malformed"`) {
		t.Fatalf("expected the middleware's own log lines, got:\n%s", logs)
	}
	forbidden := []string{secret, strings.ReplaceAll(secret, "-", ""), testkit.Typo(secret), aliceAccountPassword, "wrong-account-password"}
	for _, authz := range requests {
		_, value, _ := strings.Cut(authz, " ")
		forbidden = append(forbidden, authz, value)
	}
	for _, s := range forbidden {
		if s != "" && strings.Contains(logs, s) {
			t.Errorf("log contains %q", s)
		}
	}
	if strings.Contains(logs, "al\nice") {
		t.Error("log contains a raw newline from a username")
	}
}

// An Authenticator that returns neither a principal nor an error is a bug
// in it; the middleware answers 503 rather than panicking or letting the
// request through.
func TestNilPrincipalIs503(t *testing.T) {
	mw, err := httpauth.New(authFunc(func(context.Context, auth.Attempt) (*auth.Principal, error) { return nil, nil }), nil)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "nil principal", serve(mw.Wrap(http.HandlerFunc(whoami)), request{authz: basic("alice", "x")}), http.StatusServiceUnavailable, "Service Unavailable\n")
}

// disabledVerifier is a PasswordVerifier that breaks its contract: it
// accepts the password of a disabled user.
type disabledVerifier struct{}

func (disabledVerifier) VerifyPassword(_ context.Context, login, _ string) (*auth.User, error) {
	return &auth.User{ID: "u-" + login, Login: login, Disabled: true}, nil
}

func TestAccountPasswordOfDisabledUserRefused(t *testing.T) {
	e := newEnv(t, func(_ *env, o *httpauth.Options) { o.AccountPasswords = disabledVerifier{} })
	check(t, "disabled user", e.do(request{authz: basic("alice", aliceAccountPassword)}), http.StatusUnauthorized, unauthorized)
}
