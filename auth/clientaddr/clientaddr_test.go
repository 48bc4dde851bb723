package clientaddr_test

import (
	"crypto/tls"
	"net/http"
	"net/netip"
	"testing"

	"github.com/appauth/appauth/auth/clientaddr"
)

func TestAddr(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for _, tc := range []struct {
		name, header, peer string
		h                  http.Header
		want               string
	}{
		{"untrusted peer", "", "192.0.2.1:1", http.Header{"X-Forwarded-For": {"203.0.113.9"}}, "192.0.2.1"},
		{"xff", "", "10.0.0.1:1", http.Header{"X-Forwarded-For": {"203.0.113.9, 10.0.0.2"}}, "203.0.113.9"},
		{"xff configured, Forwarded ignored", "", "10.0.0.1:1", http.Header{"Forwarded": {"for=6.6.6.6"}}, "10.0.0.1"},
		{"forwarded", "Forwarded", "10.0.0.1:1", http.Header{"Forwarded": {`for="[2001:db8::1]:4711";proto=https`}}, "2001:db8::1"},
		{"forwarded configured, XFF ignored", "forwarded", "10.0.0.1:1", http.Header{"X-Forwarded-For": {"6.6.6.6"}}, "10.0.0.1"},
		{"element without for= stops the walk", "Forwarded", "10.0.0.1:1", http.Header{"Forwarded": {"for=6.6.6.6, proto=https"}}, "10.0.0.1"},
		{"unix socket", "", "@", nil, "@"},
		{"untrusted IPv6 peer", "", "[2001:db8::1]:443", nil, "2001:db8::1"},
		{"IPv4-mapped peer", "", "[::ffff:192.0.2.1]:1", nil, "192.0.2.1"},
		{"peer with a zone", "", "[fe80::1%eth0]:80", nil, "fe80::1"},
		{"peer that is no host:port", "", "192.0.2.1", nil, "192.0.2.1"},
	} {
		res, err := clientaddr.New(&clientaddr.Options{TrustedProxies: proxies, Header: tc.header})
		if err != nil {
			t.Fatal(err)
		}
		r := &http.Request{RemoteAddr: tc.peer, Header: tc.h}
		if got := res.Addr(r); got != tc.want {
			t.Errorf("%s: Addr = %q, want %q", tc.name, got, tc.want)
		}
	}
	if _, err := clientaddr.New(&clientaddr.Options{Header: "X-Real-IP"}); err == nil {
		t.Error("New accepted X-Real-IP")
	}
	if _, err := clientaddr.New(&clientaddr.Options{TrustedProxies: []netip.Prefix{{}}}); err == nil {
		t.Error("New accepted an invalid prefix")
	}
}

func TestNilResolverTrustsNoProxy(t *testing.T) {
	var res *clientaddr.Resolver
	r := &http.Request{RemoteAddr: "10.0.0.1:1", Header: http.Header{"X-Forwarded-For": {"203.0.113.9"}, "X-Forwarded-Proto": {"https"}}}
	if got := res.Addr(r); got != "10.0.0.1" {
		t.Errorf("Addr = %q, want the peer 10.0.0.1", got)
	}
	if res.Secure(r) {
		t.Error("Secure believed X-Forwarded-Proto from an untrusted peer")
	}
}

func TestSecure(t *testing.T) {
	res, err := clientaddr.New(&clientaddr.Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, peer string
		h          http.Header
		tls        bool
		want       bool
	}{
		{"plain", "192.0.2.1:1", nil, false, false},
		{"tls", "192.0.2.1:1", nil, true, true},
		{"trusted proxy says https", "10.1.2.3:1", http.Header{"X-Forwarded-Proto": {"https, http"}}, false, true},
		{"trusted proxy says http", "10.1.2.3:1", http.Header{"X-Forwarded-Proto": {"http"}}, false, false},
		{"trusted proxy, Forwarded", "10.1.2.3:1", http.Header{"Forwarded": {"for=192.0.2.1;proto=https"}}, false, true},
		{"untrusted peer says https", "192.0.2.1:1", http.Header{"X-Forwarded-Proto": {"https"}}, false, false},
	} {
		r := &http.Request{RemoteAddr: tc.peer, Header: tc.h}
		if tc.tls {
			r.TLS = &tls.ConnectionState{}
		}
		if got := res.Secure(r); got != tc.want {
			t.Errorf("%s: Secure = %v, want %v", tc.name, got, tc.want)
		}
	}
}
