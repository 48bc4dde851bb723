package clientaddr_test

import (
	"fmt"
	"net/http/httptest"
	"net/netip"

	"github.com/appauth/appauth/auth/clientaddr"
)

// Give the same Resolver to httpauth.Options.ClientAddr and
// settings.Options.ClientAddr.
func Example() {
	// The reverse proxy at 10.0.0.2 sets X-Forwarded-For and X-Forwarded-Proto.
	res, err := clientaddr.New(&clientaddr.Options{
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")},
	})
	if err != nil {
		panic(err)
	}

	viaProxy := httptest.NewRequest("GET", "/", nil)
	viaProxy.RemoteAddr = "10.0.0.2:41000"
	viaProxy.Header.Set("X-Forwarded-For", "192.0.2.44")
	viaProxy.Header.Set("X-Forwarded-Proto", "https")
	fmt.Println(res.Addr(viaProxy), res.Secure(viaProxy))

	// A client that is not a trusted proxy cannot pick its own address.
	direct := httptest.NewRequest("GET", "/", nil)
	direct.RemoteAddr = "198.51.100.7:52000"
	direct.Header.Set("X-Forwarded-For", "192.0.2.44")
	direct.Header.Set("X-Forwarded-Proto", "https")
	fmt.Println(res.Addr(direct), res.Secure(direct))

	// Output:
	// 192.0.2.44 true
	// 198.51.100.7 false
}
