package clientaddr_test

import (
	"crypto/tls"
	"net/http"
	"net/netip"
	"runtime"
	"strings"
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
		{"xff over two lines", "", "10.0.0.1:1", http.Header{"X-Forwarded-For": {"6.6.6.6, 203.0.113.9", "10.0.0.3, 10.0.0.2"}}, "203.0.113.9"},
		{"xff configured, Forwarded ignored", "", "10.0.0.1:1", http.Header{"Forwarded": {"for=6.6.6.6"}}, "10.0.0.1"},
		{"forwarded", "Forwarded", "10.0.0.1:1", http.Header{"Forwarded": {`for="[2001:db8::1]:4711";proto=https`}}, "2001:db8::1"},
		{"forwarded configured, XFF ignored", "forwarded", "10.0.0.1:1", http.Header{"X-Forwarded-For": {"6.6.6.6"}}, "10.0.0.1"},
		{"forwarded over two lines", "Forwarded", "10.0.0.1:1", http.Header{"Forwarded": {"for=6.6.6.6, for=203.0.113.9", "for=10.0.0.2"}}, "203.0.113.9"},
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

// TestAddrOfIPv4PeerAllocatesNothing: the common case, a direct IPv4
// peer, is answered with a slice of RemoteAddr (the middleware asks on
// every request).
func TestAddrOfIPv4PeerAllocatesNothing(t *testing.T) {
	res, err := clientaddr.New(&clientaddr.Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	if err != nil {
		t.Fatal(err)
	}
	r := &http.Request{RemoteAddr: "198.51.100.7:54321"}
	var got string
	if n := testing.AllocsPerRun(100, func() { got = res.Addr(r) }); n != 0 || got != "198.51.100.7" {
		t.Errorf("Addr = %q with %v allocations, want 198.51.100.7 with none", got, n)
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

// TestHugeForwardingHeaders: a client behind a trusted proxy that passes
// on a 1 MiB X-Forwarded-For or Forwarded header (Go's
// httputil.ReverseProxy, whose server reads headers up to 1 MiB, does) costs
// no more than its header: the walk does not make a list of every hop.
func TestHugeForwardingHeaders(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for _, tc := range []struct{ header, last string }{
		{"X-Forwarded-For", "203.0.113.9"},
		{"Forwarded", "for=203.0.113.9;proto=https"},
	} {
		res, err := clientaddr.New(&clientaddr.Options{TrustedProxies: proxies, Header: tc.header})
		if err != nil {
			t.Fatal(err)
		}
		r := &http.Request{RemoteAddr: "10.0.0.1:1", Header: http.Header{tc.header: {strings.Repeat(",", 1<<20) + tc.last}}}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		addr, secure := res.Addr(r), res.Secure(r)
		runtime.ReadMemStats(&after)
		if addr != "203.0.113.9" || (tc.header == "Forwarded") != secure {
			t.Errorf("%s: Addr %q, Secure %v", tc.header, addr, secure)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
			t.Errorf("%s of 1 MiB: Addr and Secure allocated %d bytes", tc.header, n)
		}
	}
}

// FuzzAddr: whatever a trusted proxy passes on, Addr never panics and
// answers the peer or an address written in the header, the one the
// right-to-left walk over every comma-separated hop stops at.
func FuzzAddr(f *testing.F) {
	f.Add("X-Forwarded-For", "203.0.113.9, 10.0.0.2", "10.0.0.3")
	f.Add("Forwarded", `for="[2001:db8::1]:4711";proto=https, for=10.0.0.2`, "for=10.0.0.3")
	f.Add("", ",,, ,", "203.0.113.9")
	f.Add("Forwarded", `for=";for=10.0.0.1,`, `"`)
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	f.Fuzz(func(t *testing.T, header, v1, v2 string) {
		res, err := clientaddr.New(&clientaddr.Options{TrustedProxies: proxies, Header: header})
		if err != nil {
			return
		}
		h := http.CanonicalHeaderKey(header)
		if h == "" {
			h = "X-Forwarded-For"
		}
		r := &http.Request{RemoteAddr: "10.0.0.1:1", Header: http.Header{h: {v1, v2}}}
		got := res.Addr(r)
		res.Secure(r)
		// The walk written as a list, as it was before it read in place.
		var hops []string
		for _, v := range []string{v1, v2} {
			for _, e := range strings.Split(v, ",") {
				if h == "Forwarded" {
					found := ""
					for _, pair := range strings.Split(e, ";") {
						if k, val, ok := strings.Cut(strings.TrimSpace(pair), "="); ok && strings.EqualFold(k, "for") {
							found = strings.Trim(val, `"`)
						}
					}
					e = found
				}
				hops = append(hops, strings.TrimSpace(e))
			}
		}
		want := "10.0.0.1"
		for i := len(hops) - 1; i >= 0; i-- {
			s := strings.Trim(hops[i], `"`)
			a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
			if err != nil {
				ap, err := netip.ParseAddrPort(s)
				if err != nil {
					break
				}
				a = ap.Addr()
			}
			a = a.Unmap().WithZone("")
			want = a.String()
			if !proxies[0].Contains(a) {
				break
			}
		}
		if got != want {
			t.Fatalf("Addr = %q, want %q (hops %q)", got, want, hops)
		}
	})
}
