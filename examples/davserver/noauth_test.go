package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/examples/davserver/internal/davstore"
)

// TestInsecureNoAuthIsBenchOnly: the switch that turns authentication off
// (for make bench-peers) does not exist in a normal build, is refused from
// the environment, and listens on a loopback address only.
func TestInsecureNoAuthIsBenchOnly(t *testing.T) {
	dir := t.TempDir()
	args := func(addr string) []string {
		return []string{"-insecure-no-auth-as", "demo", "-addr", addr, "-data", filepath.Join(dir, "d")}
	}
	env := func(k string) string {
		if k == "APPAUTH_INSECURE_NO_AUTH_AS" {
			return "demo"
		}
		return ""
	}
	// A normal build has no such flag or variable.
	if _, err := parseConfig(args("127.0.0.1:0"), noEnv, io.Discard); err == nil {
		t.Fatal("a normal build accepted -insecure-no-auth-as")
	}
	if err := checkEnvNames([]string{"APPAUTH_INSECURE_NO_AUTH_AS=demo"}); err == nil {
		t.Fatal("a normal build accepted APPAUTH_INSECURE_NO_AUTH_AS")
	}

	// Built with -tags appauth_insecure_bench:
	insecureNoAuthBuilt = true
	t.Cleanup(func() { insecureNoAuthBuilt = insecureBenchBuild })
	for _, addr := range []string{"0.0.0.0:8080", ":8080", "[::]:8080", "192.0.2.1:8080", "localhost:8080", "example.org:80", "127.0.0.1"} {
		_, err := parseConfig(args(addr), noEnv, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("-addr %s: %v, want a refusal naming loopback", addr, err)
		}
	}
	if _, err := parseConfig([]string{"-addr", "127.0.0.1:0", "-data", filepath.Join(dir, "d")}, env, io.Discard); err == nil {
		t.Error("APPAUTH_INSECURE_NO_AUTH_AS was accepted: it must be given on the command line")
	}
	for _, addr := range []string{"127.0.0.1:0", "127.0.0.2:8080", "[::1]:0"} {
		c, err := parseConfig(args(addr), noEnv, io.Discard)
		if err != nil || c.insecureNoAuth != "demo" {
			t.Errorf("-addr %s: %v (user %q), want it accepted", addr, err, c.insecureNoAuth)
		}
	}
	if _, err := parseConfig(append(args("127.0.0.1:0"), "-allow-account-password"), noEnv, io.Discard); err == nil {
		t.Error("-insecure-no-auth-as with -allow-account-password was accepted")
	}
}

// TestNoAuthServesAsTheUser: with the switch, DAV requests without
// credentials are served as the named user; without it they get 401.
func TestNoAuthServesAsTheUser(t *testing.T) {
	dav, err := davstore.New(filepath.Join(t.TempDir(), "dav"), davPrefix, userFromContext)
	if err != nil {
		t.Fatal(err)
	}
	u := &auth.User{ID: "u-demo", Login: "demo"}
	refuse := func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusUnauthorized) })
	}
	for _, tc := range []struct {
		name string
		mw   func(http.Handler) http.Handler
		want int
	}{
		{"off", asUser(u), http.StatusMultiStatus},
		{"on", refuse, http.StatusUnauthorized},
	} {
		srv := httptest.NewServer(routes(dav, &defaultBodyLimits, tc.mw, http.NotFoundHandler()))
		req, _ := http.NewRequest("PROPFIND", srv.URL+"/dav/files/demo/", bytes.NewReader(nil))
		req.Header.Set("Depth", "0")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		srv.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: PROPFIND without credentials: %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
	}
}
