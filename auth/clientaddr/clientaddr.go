// Package clientaddr finds a request's client address and scheme behind
// trusted reverse proxies. One [Resolver] is the single proxy setting of an
// embedding server: give the same one to the middleware (package httpauth)
// and the settings page (package settings), so that throttling, the audit
// log and the device list all see the same address. A server that learns
// the client another way (X-Real-IP, the PROXY protocol) sets the request's
// RemoteAddr in a handler in front of both.
package clientaddr

import (
	"fmt"
	"iter"
	"net/http"
	"net/netip"
	"strings"
)

// Options configure a [Resolver].
type Options struct {
	// TrustedProxies are the reverse proxies whose Header names the client
	// and whose X-Forwarded-Proto or Forwarded proto says whether the
	// client used TLS. From any other peer these headers are ignored.
	// Default: none, the connection's peer is the client.
	TrustedProxies []netip.Prefix
	// Header is where TrustedProxies name the client: "X-Forwarded-For"
	// (the default) or "Forwarded" (RFC 7239). Only that one is read: a
	// proxy passes the other on as the client sent it, so reading it would
	// let a client pick its own address, and so its throttle.
	Header string
}

// Resolver believes forwarding headers only from trusted proxies. A nil
// *Resolver trusts no proxy: the client is the connection's peer. It is
// safe for concurrent use.
type Resolver struct {
	trusted []netip.Prefix
	header  string
}

// New returns a Resolver; opts may be nil (no trusted proxies).
func New(opts *Options) (*Resolver, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	header := http.CanonicalHeaderKey(o.Header)
	switch header {
	case "":
		header = "X-Forwarded-For"
	case "X-Forwarded-For", "Forwarded":
	default:
		return nil, fmt.Errorf("clientaddr: Header %q: want X-Forwarded-For or Forwarded", o.Header)
	}
	masked := make([]netip.Prefix, len(o.TrustedProxies))
	for i, p := range o.TrustedProxies {
		if !p.IsValid() {
			return nil, fmt.Errorf("clientaddr: TrustedProxies[%d] is not a valid prefix", i)
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
	peer, text, ok := parsePeer(r.RemoteAddr)
	if !ok {
		return r.RemoteAddr
	}
	if !res.trusts(peer) {
		return text
	}
	client := peer
	for hop := range rightToLeft(r.Header.Values(res.header)) {
		if res.header == "Forwarded" {
			hop = forwardedParam(hop, "for")
		}
		a, ok := parseHop(strings.TrimSpace(hop))
		if !ok {
			break
		}
		client = a
		if !res.trusts(a) {
			break
		}
	}
	return client.String()
}

// Secure reports whether the client reached us over TLS: the connection is
// TLS, or it comes straight from a trusted proxy that says so
// ("X-Forwarded-Proto: https" or "Forwarded: proto=https").
func (res *Resolver) Secure(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	if peer, ok := parseHop(r.RemoteAddr); !ok || !res.trusts(peer) {
		return false
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p != "" {
		p, _, _ = strings.Cut(p, ",")
		return strings.EqualFold(strings.TrimSpace(p), "https")
	}
	for _, v := range r.Header.Values("Forwarded") {
		for elem := range strings.SplitSeq(v, ",") {
			if p := forwardedParam(elem, "proto"); p != "" {
				return strings.EqualFold(p, "https")
			}
		}
	}
	return false
}

func (res *Resolver) trusts(a netip.Addr) bool {
	if res == nil {
		return false
	}
	a = a.Unmap()
	for _, p := range res.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// rightToLeft yields the comma-separated elements of values, the last
// one first, without making a list of them: a header of a megabyte costs
// only the elements the walk reads.
func rightToLeft(values []string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for i := len(values) - 1; i >= 0; i-- {
			v := values[i]
			for {
				j := strings.LastIndexByte(v, ',')
				if !yield(v[j+1:]) {
					return
				}
				if j < 0 {
					break
				}
				v = v[:j]
			}
		}
	}
}

// forwardedParam returns the value of key in one element of an RFC 7239
// Forwarded header, quotes removed ("" for an element without it).
func forwardedParam(elem, key string) string {
	found := ""
	for pair := range strings.SplitSeq(elem, ";") {
		k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if ok && strings.EqualFold(k, key) {
			found = strings.Trim(val, `"`)
		}
	}
	return found
}

// parsePeer is parseHop for a connection's RemoteAddr, which net/http
// gives as "host:port": that form is tried first, so the common case
// makes no error value (an allocation) on the way. It also returns the
// address's text: for an IPv4 peer its host part, the only form of IPv4
// that ParseAddrPort takes, so the common case neither formats nor
// allocates.
func parsePeer(s string) (a netip.Addr, text string, ok bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if a = ap.Addr(); a.Is4() {
			return a, s[:strings.LastIndexByte(s, ':')], true
		}
		a = a.Unmap().WithZone("")
		return a, a.String(), true
	}
	if a, ok = parseHop(s); !ok {
		return a, "", false
	}
	return a, a.String(), true
}

// parseHop parses "192.0.2.1", "192.0.2.1:80", "2001:db8::1",
// "[2001:db8::1]" or "[2001:db8::1]:443" (quotes allowed, as in Forwarded)
// to an address without zone, IPv4-mapped IPv6 unmapped.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.Trim(s, `"`)
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil {
		return a.Unmap().WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	return netip.Addr{}, false
}
