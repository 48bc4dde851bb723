package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/internal/testenv"
)

// TestRADIUSBothWays starts the built server with RADIUS in both
// directions, each through a real FreeRADIUS: the web sign-in checks the
// account password against FreeRADIUS (users file), and a VPN's PAP
// request to another FreeRADIUS reaches the server's rlm_rest endpoint,
// which accepts a network app password and rejects the account password.
func TestRADIUSBothWays(t *testing.T) {
	const radiusPassword = "the RADIUS password of demo"
	source := testenv.RADIUS(t, testenv.RADIUSConfig{Users: map[string]string{demoUser: radiusPassword}, RequireMessageAuthenticator: true})
	dir := t.TempDir()
	restSecret := "rest-secret-for-the-davserver-test"
	for name, secret := range map[string]string{"rest.secret": restSecret, "radius.secret": source.Secret} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(secret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	bin := buildServer(t)
	p := startServerWith(t, bin, dir, []string{"-data", filepath.Join(dir, "data")}, []string{
		"APPAUTH_ADDR=127.0.0.1:0",
		"APPAUTH_RADIUS_ADDR=127.0.0.1:0", "APPAUTH_RADIUS_SECRET_FILE=" + filepath.Join(dir, "rest.secret"),
		"APPAUTH_RADIUS_SERVERS=" + source.Addr, "APPAUTH_RADIUS_SERVER_SECRET_FILE=" + filepath.Join(dir, "radius.secret"),
		"APPAUTH_RADIUS_ALLOW_UNSIGNED_REPLIES=1", // Debian's FreeRADIUS 3.2.1
	})
	var endpoint string
	for line := range strings.SplitSeq(p.banner, "\n") {
		if rest, ok := strings.CutPrefix(line, "RADIUS rlm_rest endpoint on "); ok {
			endpoint = strings.TrimSpace(rest)
		}
	}
	if endpoint == "" {
		t.Fatalf("no RADIUS endpoint in the banner:\n%s", p.banner)
	}

	// The web sign-in: RADIUS's password, not the users file's.
	web := signIn(t, p.base, demoUser, radiusPassword)
	var out struct{}
	(&webClient{t: t, base: p.base, hc: &http.Client{}}).call("POST", "api/v1/session",
		map[string]any{"username": demoUser, "password": bannerValue(p.banner, "password")}, http.StatusUnauthorized, &out)

	vpn := web.createAppPassword("VPN", auth.ScopeNetwork)
	files := web.createAppPassword("Files", auth.ScopeFiles)

	nas := testenv.RADIUS(t, testenv.RADIUSConfig{RestURL: endpoint, RestSecret: restSecret, RequireMessageAuthenticator: true})
	radclient := testenv.Program(t, "radclient")
	for _, tc := range []struct{ password, want string }{
		{vpn.Password, "Access-Accept"},
		{radiusPassword, "Access-Reject"},
		{files.Password, "Access-Reject"},
	} {
		cmd := exec.CommandContext(t.Context(), radclient, "-r", "1", "-t", "3", "-x", nas.Addr, "auth", nas.Secret)
		cmd.Stdin = strings.NewReader(fmt.Sprintf("User-Name = %q, User-Password = %q, Message-Authenticator = 0x00\n", vpn.LoginName, tc.password))
		out, _ := cmd.CombinedOutput()
		if !strings.Contains(string(out), "Received "+tc.want) {
			t.Errorf("PAP with %.4s...: want %s, got:\n%s\nFreeRADIUS log:\n%s", tc.password, tc.want, out, nas.Log())
		}
	}
	p.stop(t)
}
