package testenv

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// RADIUSConfig says how a FreeRADIUS server for one test checks passwords.
type RADIUSConfig struct {
	// RestURL, when set, is appauth's rlm_rest endpoint (package
	// auth/radiusrest): PAP and EAP-TTLS/PAP passwords are checked there,
	// with RestSecret in its shared-secret header, and a failure of the
	// endpoint (503, or no answer) becomes no RADIUS answer at all, never
	// an Access-Reject. The configuration is the one docs/radius.md shows.
	RestURL    string
	RestSecret string
	// Users are the logins and cleartext passwords of the users file, for
	// a server that checks PAP itself (when RestURL is empty).
	Users map[string]string
	// RequireMessageAuthenticator makes the server drop Access-Requests
	// without a Message-Authenticator (clients.conf
	// require_message_authenticator, the BlastRADIUS mitigation).
	RequireMessageAuthenticator bool
}

// RADIUSServer is a FreeRADIUS 3 server on a loopback UDP port for one
// test, with EAP-TTLS (PAP inside) on a certificate for 127.0.0.1 and
// localhost signed by the CA in CAFile.
type RADIUSServer struct {
	Addr   string // host:port of authentication (UDP)
	Secret string // the RADIUS shared secret of the client 127.0.0.1
	CAFile string // the CA certificate (PEM) that signed the server's certificate

	dir  string
	proc *proc
}

// RADIUS starts a FreeRADIUS server for this test alone, configured by
// cfg; it is removed when the test ends. If radiusd is not installed
// (Debian packages freeradius and freeradius-rest), the test is skipped
// with a message naming `make test`, or fails when [Strict].
func RADIUS(t testing.TB, cfg RADIUSConfig) *RADIUSServer {
	t.Helper()
	s, err := startRADIUS(cfg)
	if err != nil {
		need(t, err)
	}
	t.Cleanup(s.close)
	return s
}

func startRADIUS(cfg RADIUSConfig) (*RADIUSServer, error) {
	bin, ok := findProgram([]string{"freeradius", "radiusd"}, "/usr/sbin")
	if !ok {
		return nil, &missingError{"testenv: FreeRADIUS is not installed: no freeradius or radiusd on PATH or in /usr/sbin (Debian packages freeradius, freeradius-rest, freeradius-utils, eapoltest)"}
	}
	if cfg.RestURL != "" {
		if _, err := os.Stat("/usr/lib/freeradius/rlm_rest.so"); err != nil && os.Getenv(EnvPathOnly) != "1" {
			return nil, &missingError{"testenv: FreeRADIUS's rest module is not installed (Debian package freeradius-rest)"}
		}
	}
	dir, err := serverDir("radius", nil)
	if err != nil {
		return nil, err
	}
	s := &RADIUSServer{Secret: "testing-" + randomHex(8), CAFile: filepath.Join(dir, "tls", "ca.crt"), dir: dir}
	if err := os.Mkdir(filepath.Join(dir, "tls"), 0o700); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("testenv: %w", err)
	}
	if err := writePKI(filepath.Join(dir, "tls")); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s.proc = &proc{
		name: "FreeRADIUS", path: bin, dir: dir, logPath: filepath.Join(dir, "radiusd.log"),
		stopSig: syscall.SIGTERM,
		ready:   func(ctx context.Context) error { return radiusStatus(ctx, s.Addr, s.Secret) },
	}
	var cfgErr error
	_, err = startOnFreePort(s.proc, 1, func(ports []int) []string {
		// A free TCP port is most likely a free UDP port too; if not,
		// radiusd exits and another is tried.
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
		if cfgErr = writeRADIUSConfig(dir, ports[0], s.Secret, cfg); cfgErr != nil {
			return []string{"-v"} // exits at once
		}
		return []string{"-f", "-l", "stdout", "-d", dir}
	})
	if cfgErr != nil {
		err = cfgErr
	}
	if err != nil {
		s.close()
		return nil, fmt.Errorf("testenv: start FreeRADIUS: %w", err)
	}
	return s, nil
}

// Stop stops the server and returns once it is down.
func (s *RADIUSServer) Stop(t testing.TB) {
	t.Helper()
	if err := s.proc.stop(); err != nil {
		t.Fatal(err)
	}
}

// Log returns the server's log so far, for messages.
func (s *RADIUSServer) Log() string { return tail(s.proc.logPath) }

func (s *RADIUSServer) close() {
	if err := s.proc.stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.RemoveAll(s.dir)
}

// radiusStatus sends a Status-Server request (RFC 5997) with a
// Message-Authenticator and waits for any answer.
func radiusStatus(ctx context.Context, addr, secret string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	p := make([]byte, 20+18)
	p[0], p[1] = 12, 1 // Status-Server, identifier
	p[2], p[3] = 0, byte(len(p))
	rand.Read(p[4:20])
	p[20], p[21] = 80, 18 // Message-Authenticator
	mac := hmac.New(md5.New, []byte(secret))
	mac.Write(p)
	copy(p[22:], mac.Sum(nil))
	if _, err := c.Write(p); err != nil {
		return err
	}
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	if n < 20 || buf[1] != 1 {
		return errors.New("unexpected Status-Server answer")
	}
	return nil
}

// writeRADIUSConfig writes a whole FreeRADIUS configuration into dir: no
// file of /etc/freeradius is read, only the dictionaries and modules of
// the package.
func writeRADIUSConfig(dir string, port int, secret string, cfg RADIUSConfig) error {
	tls := filepath.Join(dir, "tls")
	requireMA := "no"
	if cfg.RequireMessageAuthenticator {
		requireMA = "yes"
	}
	// How a password is checked: by appauth over rlm_rest, or by the users
	// file and pap. The same unlang serves the outer server (PAP) and the
	// inner tunnel (EAP-TTLS/PAP).
	check, authType, modules := "files\n\t\tpap", "", ""
	if cfg.RestURL != "" {
		check = `if (&User-Password) {
			update control {
				&Auth-Type := appauth
			}
		}`
		authType = `Auth-Type appauth {
			# The shared secret between FreeRADIUS and appauth.
			update control {
				&REST-HTTP-Header := "` + "X-Appauth-Radius-Secret" + `: ${appauth_secret}"
			}
			rest {
				fail = 1
			}
			# appauth down or unreachable: no answer, which the NAS
			# retries, never an Access-Reject, which makes a device
			# forget its password.
			if (fail) {
				update ${outer_control} {
					&Response-Packet-Type := Do-Not-Respond
				}
				handled
			}
		}`
		modules = `rest {
		authenticate {
			uri = "` + cfg.RestURL + `"
			method = 'post'
			body = 'post'
			timeout = 4.0
		}
		pool {
			start = 0
			min = 0
			max = 16
			spare = 4
			uses = 0
			lifetime = 0
			idle_timeout = 60
		}
	}`
	}
	var users strings.Builder
	logins := make([]string, 0, len(cfg.Users))
	for l := range cfg.Users {
		logins = append(logins, l)
	}
	sort.Strings(logins)
	for _, l := range logins {
		fmt.Fprintf(&users, "%q Cleartext-Password := %q\n", l, cfg.Users[l])
	}
	site := func(name, listen, authorizeFirst, eapAuthenticate, outerControl string) string {
		return strings.NewReplacer("${outer_control}", outerControl).Replace(`server ` + name + ` {
	` + listen + `
	authorize {
		` + authorizeFirst + `
		` + check + `
	}
	authenticate {
		Auth-Type PAP {
			pap
		}
		` + eapAuthenticate + `
		` + authType + `
	}
	post-auth {
		Post-Auth-Type REJECT {
			ok
		}
	}
}
`)
	}
	eapBlock := "eap {\n\t\t\tok = return\n\t\t}"
	// What the inner tunnel's authorize starts with (docs/radius.md).
	outerIdentity := `# The station and the NAS that appauth throttles on are the
		# outer request's, which the NAS wrote: copy_request_to_tunnel
		# copies them only where the device sent none inside the tunnel.
		update request {
			&Calling-Station-Id !* ANY
			&NAS-IP-Address !* ANY
			&NAS-IPv6-Address !* ANY
			&NAS-Identifier !* ANY
			&Calling-Station-Id := &outer.request:Calling-Station-Id
			&NAS-IP-Address := &outer.request:NAS-IP-Address
			&NAS-IPv6-Address := &outer.request:NAS-IPv6-Address
			&NAS-Identifier := &outer.request:NAS-Identifier
		}`
	files := map[string]string{
		"dictionary": "",
		"users":      users.String(),
		"clients.conf": fmt.Sprintf(`client localhost {
	ipaddr = 127.0.0.1
	secret = %q
	require_message_authenticator = %s
}
`, secret, requireMA),
		"radiusd.conf": `prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = ` + dir + `
sbindir = /usr/sbin
logdir = ` + dir + `
raddbdir = ` + dir + `
radacctdir = ` + dir + `
name = freeradius
confdir = ` + dir + `
modconfdir = ` + dir + `
certdir = ` + tls + `
cadir = ` + tls + `
run_dir = ` + dir + `
db_dir = ` + dir + `
libdir = /usr/lib/freeradius
pidfile = ` + dir + `/radiusd.pid
appauth_secret = "` + cfg.RestSecret + `"
max_request_time = 30
cleanup_delay = 5
max_requests = 16384
hostname_lookups = no
log {
	destination = stdout
	auth = yes
}
security {
	allow_core_dumps = no
	max_attributes = 200
	reject_delay = 0
	status_server = yes
}
proxy_requests = no
$INCLUDE clients.conf
thread pool {
	start_servers = 4
	max_servers = 16
	min_spare_servers = 2
	max_spare_servers = 8
	max_requests_per_server = 0
}
modules {
	pap {
	}
	files {
		filename = ` + dir + `/users
	}
	always ok {
		rcode = ok
	}
	always handled {
		rcode = handled
	}
	eap {
		default_eap_type = ttls
		timer_expire = 60
		ignore_unknown_eap_types = no
		max_sessions = 4096
		tls-config tls-common {
			private_key_file = ` + tls + `/server.key
			certificate_file = ` + tls + `/server.crt
			ca_file = ` + tls + `/ca.crt
			cipher_list = "DEFAULT"
			tls_min_version = "1.2"
			tls_max_version = "1.2"
			ecdh_curve = "prime256v1"
		}
		ttls {
			tls = tls-common
			default_eap_type = md5
			copy_request_to_tunnel = yes
			use_tunneled_reply = no
			virtual_server = "inner-tunnel"
		}
	}
	` + modules + `
}
` + site("default", fmt.Sprintf("listen {\n\t\ttype = auth\n\t\tipaddr = 127.0.0.1\n\t\tport = %d\n\t}", port), eapBlock, "eap", "control") +
			site("inner-tunnel", "", outerIdentity, "", "outer.control"),
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			return fmt.Errorf("testenv: %w", err)
		}
	}
	return nil
}
