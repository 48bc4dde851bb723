// Package clientaddr finds a request's client address behind trusted reverse
// proxies, the same way for the middleware and the settings page.
package clientaddr

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// Resolver believes forwarding headers only from TrustedProxies.
type Resolver struct {
	trusted []netip.Prefix
	header  string
}

// New returns a Resolver. header names where trusted proxies put the
// client: "X-Forwarded-For" (also for ""), or "Forwarded" (RFC 7239). Only
// that header is read: a proxy passes the other one on unchanged, so a
// client could otherwise choose its own address.
func New(trusted []netip.Prefix, header string) (*Resolver, error) {
	switch header = http.CanonicalHeaderKey(header); header {
	case "":
		header = "X-Forwarded-For"
	case "X-Forwarded-For", "Forwarded":
	default:
		return nil, fmt.Errorf("ForwardedHeader %q: want X-Forwarded-For or Forwarded", header)
	}
	masked := make([]netip.Prefix, len(trusted))
	for i, p := range trusted {
		if !p.IsValid() {
			return nil, fmt.Errorf("TrustedProxies[%d] is not a valid prefix", i)
		}
		masked[i] = p.Masked()
	}
	return &Resolver{trusted: masked, header: header}, nil
}

// Addr returns the client's IP address: the connection's peer, or, when the
// peer is a trusted proxy, the right-most forwarded address that is not a
// trusted proxy. An entry that cannot be parsed stops the walk at the last
// trusted hop, so a forged or garbled header never yields an address of the
// sender's choosing. A peer that is not an IP address (a Unix socket) is
// returned unchanged.
func (res *Resolver) Addr(r *http.Request) string {
	peer, ok := ParseHop(r.RemoteAddr)
	if !ok {
		return r.RemoteAddr
	}
	if !res.Trusted(peer) {
		return peer.String()
	}
	var hops []string
	if res.header == "Forwarded" {
		hops = ForwardedParams(r, "for")
	} else {
		for _, v := range r.Header.Values("X-Forwarded-For") {
			for h := range strings.SplitSeq(v, ",") {
				hops = append(hops, strings.TrimSpace(h))
			}
		}
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := ParseHop(hops[i])
		if !ok {
			break
		}
		client = a
		if !res.Trusted(a) {
			break
		}
	}
	return client.String()
}

// PeerTrusted reports whether r comes straight from a trusted proxy.
func (res *Resolver) PeerTrusted(r *http.Request) bool {
	peer, ok := ParseHop(r.RemoteAddr)
	return ok && res.Trusted(peer)
}

// Trusted reports whether a is a trusted proxy.
func (res *Resolver) Trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range res.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ForwardedParams returns the value of key in each element of r's RFC 7239
// Forwarded headers, in order, quotes removed ("" for an element without it).
func ForwardedParams(r *http.Request, key string) []string {
	var out []string
	for _, v := range r.Header.Values("Forwarded") {
		for elem := range strings.SplitSeq(v, ",") {
			found := ""
			for pair := range strings.SplitSeq(elem, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if ok && strings.EqualFold(k, key) {
					found = strings.Trim(val, `"`)
				}
			}
			out = append(out, found)
		}
	}
	return out
}

// ParseHop parses "192.0.2.1", "192.0.2.1:80", "2001:db8::1",
// "[2001:db8::1]" or "[2001:db8::1]:443" (quotes allowed, as in Forwarded)
// to an address without zone, IPv4-mapped IPv6 unmapped.
func ParseHop(s string) (netip.Addr, bool) {
	s = strings.Trim(s, `"`)
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil {
		return a.Unmap().WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	return netip.Addr{}, false
}
