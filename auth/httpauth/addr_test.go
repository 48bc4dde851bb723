package httpauth_test

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"testing"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/httpauth"
	"github.com/appauth/appauth/internal/testkit"
)

// seenAddr returns the client address the middleware passes to the
// Authenticator for a request from peer with header.
func seenAddr(t *testing.T, opts httpauth.Options, peer string, header http.Header) string {
	t.Helper()
	var got string
	mw, err := httpauth.New(authFunc(func(_ context.Context, c auth.Attempt) (*auth.Principal, error) {
		got = c.RemoteAddr
		return &auth.Principal{}, nil
	}), &opts)
	if err != nil {
		t.Fatal(err)
	}
	serve(mw.Wrap(http.HandlerFunc(whoami)), request{authz: basic("alice", "x"), remote: peer, header: header})
	return got
}

func TestClientAddress(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48")}
	xff := func(v ...string) http.Header { return http.Header{"X-Forwarded-For": v} }
	fwd := func(v ...string) http.Header { return http.Header{"Forwarded": v} }
	for _, tc := range []struct {
		name    string
		trusted []netip.Prefix
		peer    string
		header  http.Header
		want    string
	}{
		{"no proxies configured", nil, "192.0.2.1:5000", xff("203.0.113.9"), "192.0.2.1"},
		{"spoofed XFF from an untrusted peer", proxies, "192.0.2.1:5000", xff("203.0.113.9"), "192.0.2.1"},
		{"spoofed Forwarded from an untrusted peer", proxies, "192.0.2.1:5000", fwd("for=203.0.113.9"), "192.0.2.1"},
		{"IPv6 peer", nil, "[2001:db8::7%eth0]:443", nil, "2001:db8::7"},
		{"IPv4-mapped peer", nil, "[::ffff:192.0.2.1]:443", nil, "192.0.2.1"},
		{"trusted proxy", proxies, "10.0.0.1:5000", xff("203.0.113.9"), "203.0.113.9"},
		{"right-most untrusted", proxies, "10.0.0.1:5000", xff("198.51.100.1, 203.0.113.9, 10.1.1.1"), "203.0.113.9"},
		{"client-supplied XFF before the proxy's", proxies, "10.0.0.1:5000", xff("6.6.6.6", "203.0.113.9"), "203.0.113.9"},
		{"all trusted", proxies, "10.0.0.1:5000", xff("10.2.2.2"), "10.2.2.2"},
		{"garbage stops the walk", proxies, "10.0.0.1:5000", xff("203.0.113.9, nonsense, 10.3.3.3"), "10.3.3.3"},
		{"empty XFF", proxies, "10.0.0.1:5000", xff(""), "10.0.0.1"},
		{"XFF with port", proxies, "10.0.0.1:5000", xff("203.0.113.9:1234"), "203.0.113.9"},
		// A proxy that sets X-Forwarded-For passes a client's Forwarded on.
		{"client's Forwarded ignored", proxies, "10.0.0.1:5000", http.Header{"Forwarded": {"for=198.51.100.1"}, "X-Forwarded-For": {"203.0.113.9"}}, "203.0.113.9"},
		{"only a client's Forwarded", proxies, "10.0.0.1:5000", fwd("for=198.51.100.1"), "10.0.0.1"},
		{"Unix socket peer", proxies, "@", xff("203.0.113.9"), "@"},
	} {
		if got := seenAddr(t, httpauth.Options{ClientAddr: testkit.Resolver(t, tc.trusted, "")}, tc.peer, tc.header); got != tc.want {
			t.Errorf("%s: client address %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestForwardedHeader: with Header "Forwarded", only that header
// names the client; an X-Forwarded-For the client sent is passed on by
// such a proxy and ignored.
func TestForwardedHeader(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48")}
	opts := httpauth.Options{ClientAddr: testkit.Resolver(t, proxies, "forwarded")}
	fwd := func(v ...string) http.Header { return http.Header{"Forwarded": v} }
	for _, tc := range []struct {
		name   string
		peer   string
		header http.Header
		want   string
	}{
		{"Forwarded", "10.0.0.1:5000", fwd(`for=198.51.100.1, for="[2001:db8::1]:4711";proto=https`), "2001:db8::1"},
		{"Forwarded obfuscated", "[2001:db8:ffff::1]:443", fwd("for=_hidden, for=10.4.4.4"), "10.4.4.4"},
		{"element without for", "10.0.0.1:5000", fwd("for=198.51.100.1, proto=https"), "10.0.0.1"},
		{"client's XFF ignored", "10.0.0.1:5000", http.Header{"Forwarded": {"for=198.51.100.1"}, "X-Forwarded-For": {"203.0.113.9"}}, "198.51.100.1"},
		{"only a client's XFF", "10.0.0.1:5000", http.Header{"X-Forwarded-For": {"203.0.113.9"}}, "10.0.0.1"},
		{"untrusted peer", "192.0.2.1:5000", fwd("for=198.51.100.1"), "192.0.2.1"},
	} {
		if got := seenAddr(t, opts, tc.peer, tc.header); got != tc.want {
			t.Errorf("%s: client address %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestSpoofedForwardedForDoesNotEscapeThrottle: an attacker that is not a
// trusted proxy cannot pick a fresh address per request with a header.
func TestSpoofedForwardedForDoesNotEscapeThrottle(t *testing.T) {
	e := newEnv(t, func(_ *env, o *httpauth.Options) {
		o.ClientAddr = testkit.Resolver(t, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, "")
	})
	secret := e.issue(t, e.alice)
	for i := range 50 {
		e.do(request{authz: basic(fmt.Sprint("user", i), secret), remote: attacker, header: http.Header{"X-Forwarded-For": {fmt.Sprintf("203.0.113.%d", i)}}})
	}
	// Every one counted against the attacker's own address. (A secret not
	// verified yet: a verified one passes a throttled address.)
	fresh := e.issue(t, e.alice)
	check(t, "attacker", e.do(request{authz: basic("alice", fresh), remote: attacker}), http.StatusTooManyRequests, "")
	// Through the trusted proxy, the forwarded client is throttled, not the proxy.
	for i := range 10 {
		e.do(request{authz: basic(fmt.Sprint("user", i), secret), remote: "10.0.0.1:1", header: http.Header{"X-Forwarded-For": {"198.51.100.200"}}})
	}
	check(t, "forwarded attacker", e.do(request{authz: basic("alice", fresh), remote: "10.0.0.1:1", header: http.Header{"X-Forwarded-For": {"198.51.100.200"}}}), http.StatusTooManyRequests, "")
	check(t, "another client of the proxy", e.do(request{authz: basic("alice", secret), remote: "10.0.0.1:1", header: http.Header{"X-Forwarded-For": {"198.51.100.201"}}}), 200, "alice app_password ")
}
