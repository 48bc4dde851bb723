package testkit

import (
	"net/netip"
	"testing"

	"github.com/appauth/appauth/auth/clientaddr"
)

// Resolver returns a [clientaddr.Resolver] trusting proxies and reading
// header ("" for the default), failing the test if the options are refused.
func Resolver(t testing.TB, proxies []netip.Prefix, header string) *clientaddr.Resolver {
	t.Helper()
	res, err := clientaddr.New(&clientaddr.Options{TrustedProxies: proxies, Header: header})
	if err != nil {
		t.Fatal(err)
	}
	return res
}
