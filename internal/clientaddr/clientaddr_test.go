package clientaddr

import (
	"net/http"
	"net/netip"
	"testing"
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
	} {
		res, err := New(proxies, tc.header)
		if err != nil {
			t.Fatal(err)
		}
		r := &http.Request{RemoteAddr: tc.peer, Header: tc.h}
		if got := res.Addr(r); got != tc.want {
			t.Errorf("%s: Addr = %q, want %q", tc.name, got, tc.want)
		}
	}
	if _, err := New(nil, "X-Real-IP"); err == nil {
		t.Error("New accepted X-Real-IP")
	}
	if _, err := New([]netip.Prefix{{}}, ""); err == nil {
		t.Error("New accepted an invalid prefix")
	}
}
