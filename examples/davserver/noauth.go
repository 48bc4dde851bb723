package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/netip"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/httpauth"
)

// insecureNoAuthBuilt says whether this binary has the -insecure-no-auth-as
// flag: only one built with `-tags appauth_insecure_bench` (make
// bench-peers does, to measure what authentication costs). A variable so
// that tests of a normal build can check both.
var insecureNoAuthBuilt = insecureBenchBuild

// insecureNoAuthFlags defines -insecure-no-auth-as on fs, in a bench build
// only. It is defined after the environment is read, so no variable can
// turn authentication off.
func insecureNoAuthFlags(c *config) func(*flag.FlagSet) {
	if !insecureNoAuthBuilt {
		return nil
	}
	return func(fs *flag.FlagSet) {
		fs.StringVar(&c.insecureNoAuth, "insecure-no-auth-as", "", "BENCHMARKS ONLY: serve every DAV request as this user, with no authentication (loopback -addr only)")
	}
}

// checkInsecureNoAuth refuses -insecure-no-auth-as unless the server
// listens on a loopback address given as an IP literal (a name or an empty
// host could reach beyond the machine), and with options it would silently
// ignore.
func checkInsecureNoAuth(c *config) error {
	if c.insecureNoAuth == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(c.addr)
	a, aerr := netip.ParseAddr(host)
	if err != nil || aerr != nil || !a.IsLoopback() {
		return fmt.Errorf("-insecure-no-auth-as turns authentication off: it needs a loopback -addr such as 127.0.0.1:0, not %q", c.addr)
	}
	if c.allowAccountPassword || c.tlsCert != "" {
		return fmt.Errorf("-insecure-no-auth-as excludes -allow-account-password and -tls-cert")
	}
	return nil
}

// asUser is the authentication of -insecure-no-auth-as: every request
// carries u's principal, as if it had presented a cached app password, and
// nothing is checked or audited.
func asUser(u *auth.User) func(http.Handler) http.Handler {
	p := &auth.Principal{User: *u, Method: auth.MethodAppPassword}
	return func(h http.Handler) http.Handler {
		h = recordUser(h)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(w, r.WithContext(httpauth.ContextWithPrincipal(r.Context(), p)))
		})
	}
}
