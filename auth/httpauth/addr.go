package httpauth

import (
	"net/http"
	"net/netip"
	"strings"
)

// clientAddr returns the client's IP address for r: the connection's peer,
// or, when the peer is a trusted proxy, the right-most address in
// Options.ForwardedHeader that is not a trusted proxy. An entry that cannot be parsed stops the walk at the last trusted
// hop, so a forged or garbled header never yields an address of the
// sender's choosing. It returns r.RemoteAddr unchanged when the peer is not
// an IP address (a Unix socket).
func (m *Middleware) clientAddr(r *http.Request) string {
	peer, ok := parseHostAddr(r.RemoteAddr)
	if !ok {
		return r.RemoteAddr
	}
	if !m.trusted(peer) {
		return peer.String()
	}
	var hops []string
	if m.opts.ForwardedHeader == "Forwarded" {
		hops = forwardedFor(r.Header.Values("Forwarded"))
	} else {
		for _, v := range r.Header.Values("X-Forwarded-For") {
			for h := range strings.SplitSeq(v, ",") {
				hops = append(hops, strings.TrimSpace(h))
			}
		}
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHostAddr(hops[i])
		if !ok {
			break
		}
		client = a
		if !m.trusted(a) {
			break
		}
	}
	return client.String()
}

func (m *Middleware) trusted(a netip.Addr) bool {
	for _, p := range m.opts.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// forwardedFor returns the for= values of RFC 7239 Forwarded header
// values, in order, quotes removed ("" for an element without one).
func forwardedFor(values []string) []string {
	var out []string
	for _, v := range values {
		for elem := range strings.SplitSeq(v, ",") {
			found := ""
			for pair := range strings.SplitSeq(elem, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if ok && strings.EqualFold(k, "for") {
					found = strings.Trim(val, `"`)
				}
			}
			out = append(out, found)
		}
	}
	return out
}

// parseHostAddr parses "192.0.2.1", "192.0.2.1:80", "2001:db8::1",
// "[2001:db8::1]" or "[2001:db8::1]:443" to an address without zone, with
// IPv4-mapped IPv6 addresses unmapped.
func parseHostAddr(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
			a, err = netip.ParseAddr(s[1 : len(s)-1])
		} else {
			var ap netip.AddrPort
			ap, err = netip.ParseAddrPort(s)
			a = ap.Addr()
		}
		if err != nil {
			return netip.Addr{}, false
		}
	}
	return a.Unmap().WithZone(""), true
}
