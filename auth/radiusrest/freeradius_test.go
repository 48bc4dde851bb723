package radiusrest_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/radiusrest"
	"github.com/appauth/appauth/auth/throttle"
	"github.com/appauth/appauth/backends/memory"
	"github.com/appauth/appauth/internal/testenv"
	"github.com/appauth/appauth/internal/testkit"
)

// TestMain stops the test servers that the tests started (see testenv.Main).
func TestMain(m *testing.M) { testenv.Main(m) }

const (
	restSecret      = "rest-secret-0123456789"
	accountPassword = "account-password-1"
)

// fixture is appauth (memory store, throttle, radiusrest on an HTTP
// listener) behind a real FreeRADIUS configured as docs/radius.md says.
type fixture struct {
	m      *auth.Manager
	store  *testkit.Store
	user   *auth.User
	radius *testenv.RADIUSServer
	// statuses counts the endpoint's answers by status.
	statuses map[int]*atomic.Int32
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	dir := memory.NewDirectory()
	alice := auth.User{ID: "u-alice", Login: "alice"}
	if err := dir.AddUser(alice, accountPassword); err != nil {
		t.Fatal(err)
	}
	limiter, err := throttle.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: testkit.NewStore(memory.NewStore()), user: &alice, statuses: map[int]*atomic.Int32{}}
	for _, code := range []int{204, 400, 401, 403, 429, 503} {
		f.statuses[code] = new(atomic.Int32)
	}
	f.m = testkit.NewManager(t, f.store, dir, &auth.Options{Limiter: limiter})
	h, err := radiusrest.New(f.m, restSecret, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if c, ok := f.statuses[rec.code]; ok {
			c.Add(1)
		}
	}))
	t.Cleanup(srv.Close)
	f.radius = testenv.RADIUS(t, testenv.RADIUSConfig{RestURL: srv.URL + "/radius/", RestSecret: restSecret, RequireMessageAuthenticator: true})
	return f
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) { r.code = code; r.ResponseWriter.WriteHeader(code) }

func (f *fixture) issue(t *testing.T, name string, scopes ...string) (*auth.AppPassword, string) {
	t.Helper()
	ap, secret, err := f.m.IssueAppPassword(t.Context(), f.user, auth.IssueRequest{Name: name, Scopes: scopes})
	if err != nil {
		t.Fatal(err)
	}
	return ap, secret
}

// radclient sends one PAP Access-Request with a Message-Authenticator and
// returns "accept", "reject" or "none" (no answer within the timeout).
func radclient(t *testing.T, s *testenv.RADIUSServer, user, password string, extra ...string) string {
	t.Helper()
	bin := testenv.Program(t, "radclient")
	attrs := append([]string{
		fmt.Sprintf("User-Name = %q", user), fmt.Sprintf("User-Password = %q", password),
		"Message-Authenticator = 0x00",
	}, extra...)
	cmd := exec.CommandContext(t.Context(), bin, "-r", "1", "-t", "3", "-x", s.Addr, "auth", s.Secret)
	cmd.Stdin = strings.NewReader(strings.Join(attrs, ", ") + "\n")
	out, err := cmd.CombinedOutput()
	switch text := string(out); {
	case strings.Contains(text, "Received Access-Accept"):
		return "accept"
	case strings.Contains(text, "Received Access-Reject"):
		return "reject"
	case strings.Contains(text, "No reply from server"):
		return "none"
	default:
		t.Fatalf("radclient: %v\n%s\nFreeRADIUS log:\n%s", err, out, s.Log())
		return ""
	}
}

// TestFreeRADIUSPAP is the VPN case: PAP through a real FreeRADIUS, which
// asks appauth over rlm_rest.
func TestFreeRADIUSPAP(t *testing.T) {
	f := newFixture(t)
	network, networkSecret := f.issue(t, "VPN", auth.ScopeNetwork)
	_, anySecret := f.issue(t, "Laptop") // unrestricted: allowed
	_, calendarSecret := f.issue(t, "Calendar", auth.ScopeCalendars)
	revoked, revokedSecret := f.issue(t, "Old phone", auth.ScopeNetwork)
	if err := f.m.RevokeAppPassword(t.Context(), f.user.ID, revoked.ID); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, user, password, want string
	}{
		{"network app password", "alice", networkSecret, "accept"},
		{"unrestricted app password", "alice", anySecret, "accept"},
		{"account password", "alice", accountPassword, "reject"},
		{"revoked app password", "alice", revokedSecret, "reject"},
		{"calendar-only app password", "alice", calendarSecret, "reject"},
		{"another user's name", "bob", networkSecret, "reject"},
		{"typo", "alice", testkit.Typo(networkSecret), "reject"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := radclient(t, f.radius, tc.user, tc.password,
				`Calling-Station-Id = "198.51.100.7"`, `NAS-IP-Address = 192.0.2.1`, `NAS-Identifier = "vpn-gw<1>"`); got != tc.want {
				t.Fatalf("got %s, want %s; FreeRADIUS log:\n%s", got, tc.want, f.radius.Log())
			}
		})
	}

	// The device list shows where the network password was last used.
	list, err := f.m.ListAppPasswords(t.Context(), f.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, ap := range list {
		if ap.ID != network.ID {
			continue
		}
		if ap.LastUsedAddr != "198.51.100.7" || ap.LastUsedClient != "RADIUS vpn-gw<1> (192.0.2.1) station 198.51.100.7" {
			t.Errorf("last use: addr %q client %q", ap.LastUsedAddr, ap.LastUsedClient)
		}
	}
}

// TestFreeRADIUSStoreDown: when appauth cannot answer, FreeRADIUS sends no
// answer at all (the NAS retries), never an Access-Reject.
func TestFreeRADIUSStoreDown(t *testing.T) {
	f := newFixture(t)
	_, secret := f.issue(t, "VPN", auth.ScopeNetwork) // never verified: not cached
	f.store.Fail(errors.Join(auth.ErrUnavailable, errors.New("store down")))
	if got := radclient(t, f.radius, "alice", secret); got != "none" {
		t.Fatalf("store down: got %s, want no answer; FreeRADIUS log:\n%s", got, f.radius.Log())
	}
	if n := f.statuses[503].Load(); n < 1 {
		t.Fatalf("the endpoint answered 503 %d times; want at least once (the request reached appauth)", n)
	}
	f.store.Fail(nil)
	if got := radclient(t, f.radius, "alice", secret); got != "accept" {
		t.Fatalf("store back: got %s, want accept", got)
	}
}

// TestFreeRADIUSEAPTTLS is the Wi-Fi case: eapol_test runs EAP-TTLS with
// PAP inside through FreeRADIUS, checking the server certificate.
func TestFreeRADIUSEAPTTLS(t *testing.T) {
	f := newFixture(t)
	_, secret := f.issue(t, "Wi-Fi", auth.ScopeNetwork)
	if got := eapolTest(t, f.radius, "alice", secret); got != "SUCCESS" {
		t.Fatalf("app password: eapol_test %s; FreeRADIUS log:\n%s", got, f.radius.Log())
	}
	if got := eapolTest(t, f.radius, "alice", accountPassword); got != "FAILURE" {
		t.Fatalf("account password: eapol_test %s", got)
	}
}

// TestFreeRADIUSEAPTTLSStoreDown: inside the TLS tunnel too, an outage is
// no answer (the inner server marks the outer request), not a reject.
func TestFreeRADIUSEAPTTLSStoreDown(t *testing.T) {
	f := newFixture(t)
	_, secret := f.issue(t, "Wi-Fi", auth.ScopeNetwork) // never verified: not cached
	f.store.Fail(errors.Join(auth.ErrUnavailable, errors.New("store down")))
	if got := eapolTest(t, f.radius, "alice", secret); got != "TIMEOUT" {
		t.Fatalf("store down: eapol_test %s, want a timeout (no answer); FreeRADIUS log:\n%s", got, f.radius.Log())
	}
	if n := f.statuses[503].Load(); n < 1 {
		t.Fatalf("the endpoint answered 503 %d times; want at least once", n)
	}
}

// eapolTest runs one EAP-TTLS/PAP exchange and returns SUCCESS, FAILURE
// (an Access-Reject) or TIMEOUT (no answer).
func eapolTest(t *testing.T, s *testenv.RADIUSServer, user, password string) string {
	t.Helper()
	bin := testenv.Program(t, "eapol_test")
	conf := filepath.Join(t.TempDir(), "eapol.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, `network={
	key_mgmt=WPA-EAP
	eap=TTLS
	identity=%q
	anonymous_identity="anonymous"
	password=%q
	ca_cert=%q
	phase2="auth=PAP"
}
`, user, password, s.CAFile), 0o600); err != nil {
		t.Fatal(err)
	}
	host, port, _ := strings.Cut(s.Addr, ":")
	out, _ := exec.CommandContext(t.Context(), bin, "-c", conf, "-a", host, "-p", port, "-s", s.Secret, "-t", "5", "-M", "02:00:00:00:00:07").CombinedOutput()
	text := string(out)
	switch {
	case strings.Contains(text, "EAPOL test timed out"):
		return "TIMEOUT"
	case strings.HasSuffix(strings.TrimSpace(text), "SUCCESS"):
		return "SUCCESS"
	case strings.HasSuffix(strings.TrimSpace(text), "FAILURE"):
		return "FAILURE"
	}
	t.Fatalf("eapol_test: %s", text)
	return ""
}

// TestFreeRADIUSEAPTTLSInnerAttributes: a device cannot choose the station
// or the NAS that appauth throttles and lists by sending them as AVPs
// inside the EAP-TTLS tunnel (FreeRADIUS's copy_request_to_tunnel keeps
// them): appauth sees the outer request's, which the NAS wrote.
func TestFreeRADIUSEAPTTLSInnerAttributes(t *testing.T) {
	f := newFixture(t)
	injected := []radiusAttr{
		{attrCallingStationID, []byte("203.0.113.77")},
		{attrNASIPAddress, []byte{203, 0, 113, 78}},
		{attrNASIPv6Address, netip.MustParseAddr("2001:db8::78").AsSlice()},
		{attrNASIdentifier, []byte("chosen-by-device")},
	}
	for _, tc := range []struct {
		name             string
		nas              []radiusAttr
		wantAddr, client string
	}{
		{"ipv4 nas", []radiusAttr{
			{attrCallingStationID, []byte("02-00-00-00-00-07")},
			{attrNASIPAddress, []byte{192, 0, 2, 1}},
			{attrNASIdentifier, []byte("ap-3")},
		}, "192.0.2.1", "RADIUS ap-3 (192.0.2.1) station 02-00-00-00-00-07"},
		{"ipv6 nas", []radiusAttr{ // no NAS-IP-Address or NAS-Identifier outside
			{attrCallingStationID, []byte("02-00-00-00-00-08")},
			{attrNASIPv6Address, netip.MustParseAddr("2001:db8::1").AsSlice()},
		}, "2001:db8::1", "RADIUS 2001:db8::1 station 02-00-00-00-00-08"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// An app password per case: a use is recorded at most once
			// a minute (auth.Options.LastUsedInterval).
			ap, secret := f.issue(t, "Wi-Fi "+tc.name, auth.ScopeNetwork)
			inner := append([]radiusAttr{{attrUserName, []byte("alice")}, {attrUserPassword, []byte(secret)}}, injected...)
			code, err := eapTTLS(f.radius.Addr, f.radius.Secret, f.radius.CAFile, tc.nas, inner)
			if err != nil || code != radiusAccessAccept {
				t.Fatalf("EAP-TTLS: code %d, %v; FreeRADIUS log:\n%s", code, err, f.radius.Log())
			}
			// The last use's address is the attempt's, which the
			// throttle counted.
			list, err := f.m.ListAppPasswords(t.Context(), f.user.ID)
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(list, func(a *auth.AppPassword) bool { return a.ID == ap.ID })
			if i < 0 {
				t.Fatal("the app password is not listed")
			}
			if got := list[i]; got.LastUsedAddr != tc.wantAddr || got.LastUsedClient != tc.client {
				t.Fatalf("last use: addr %q client %q; want %q %q", got.LastUsedAddr, got.LastUsedClient, tc.wantAddr, tc.client)
			}
		})
	}
}
