package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/radiusrest"
	"github.com/appauth/appauth/backends/radius"
)

// radiusConfig is RADIUS in both directions: the rlm_rest endpoint that
// FreeRADIUS asks about app passwords (-radius-addr), and RADIUS servers
// that check account passwords for the web sign-in (-radius-servers).
type radiusConfig struct {
	addr       string // the rlm_rest listener; empty: off
	secretFile string // the secret FreeRADIUS sends in radiusrest.SecretHeader

	servers          string // host:port, comma-separated; empty: the directory checks passwords
	serverSecretFile string
	allowUnsigned    bool
}

func (c *radiusConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.addr, "radius-addr", "", "address of the FreeRADIUS rlm_rest endpoint (POST /radius/), apart from -addr, for Wi-Fi and VPN sign-ins with app passwords (empty: off; keep it on loopback or a private network)")
	fs.StringVar(&c.secretFile, "radius-secret-file", "", "file holding the secret FreeRADIUS sends in the "+radiusrest.SecretHeader+" header (at least 16 bytes; required with -radius-addr)")
	fs.StringVar(&c.servers, "radius-servers", "", "RADIUS servers (host:port, comma-separated, tried in order) that check account passwords for the web sign-in instead of the directory; users still come from the directory")
	fs.StringVar(&c.serverSecretFile, "radius-server-secret-file", "", "file holding the RADIUS shared secret of -radius-servers")
	fs.BoolVar(&c.allowUnsigned, "radius-allow-unsigned-replies", false, "accept RADIUS replies without a Message-Authenticator (FreeRADIUS before 3.2.5 sends them; weaker against forged replies)")
}

func (c *radiusConfig) check() error {
	switch {
	case (c.addr == "") != (c.secretFile == ""):
		return fmt.Errorf("-radius-addr and -radius-secret-file go together")
	case (c.servers == "") != (c.serverSecretFile == ""):
		return fmt.Errorf("-radius-servers and -radius-server-secret-file go together")
	case c.allowUnsigned && c.servers == "":
		return fmt.Errorf("-radius-allow-unsigned-replies needs -radius-servers")
	}
	for _, s := range c.serverList() {
		if _, _, err := net.SplitHostPort(s); err != nil {
			return fmt.Errorf("-radius-servers: %q: want host:port", s)
		}
	}
	return nil
}

// serverList is -radius-servers split.
func (c *radiusConfig) serverList() []string {
	var servers []string
	for s := range strings.SplitSeq(c.servers, ",") {
		if s = strings.TrimSpace(s); s != "" {
			servers = append(servers, s)
		}
	}
	return servers
}

// radiusVerifier returns the account-password check for the web sign-in:
// RADIUS with -radius-servers, with dir saying who an accepted user is;
// else nil.
func radiusVerifier(c *radiusConfig, dir auth.Directory, logger *slog.Logger) (auth.PasswordVerifier, error) {
	if c.servers == "" {
		return nil, nil
	}
	secret, err := readSecretFile(c.serverSecretFile, "-radius-server-secret-file")
	if err != nil {
		return nil, err
	}
	v, err := radius.New(radius.Config{
		Servers: c.serverList(), Secret: secret, Directory: dir, AllowUnsignedReplies: c.allowUnsigned,
		Logger: logger.With("component", "radius"),
	})
	if err != nil {
		return nil, fmt.Errorf("-radius-servers: %w", err)
	}
	return v, nil
}

// radiusDirectory is a directory whose passwords RADIUS checks: users
// (IDs, groups, disabled) from the directory, yes or no from RADIUS.
type radiusDirectory struct {
	auth.Directory
	auth.PasswordVerifier
}

// radiusListener is the rlm_rest endpoint's listener; a nil one does
// nothing.
type radiusListener struct {
	sideListener
	secret string
}

// listenRADIUS listens on -radius-addr, if given, and reads its secret, so
// that a busy port or a bad secret file fails the start at once.
func listenRADIUS(c *radiusConfig) (*radiusListener, error) {
	if c.addr == "" {
		return nil, nil
	}
	secret, err := readSecretFile(c.secretFile, "-radius-secret-file")
	if err != nil {
		return nil, err
	}
	if len(secret) < radiusrest.MinSecretLen {
		return nil, fmt.Errorf("-radius-secret-file: the secret must have at least %d bytes", radiusrest.MinSecretLen)
	}
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return nil, fmt.Errorf("-radius-addr %s: %w", c.addr, err)
	}
	return &radiusListener{sideListener: sideListener{ln: ln}, secret: secret}, nil
}

// start serves the endpoint for m and prints its URL.
func (l *radiusListener) start(m *auth.Manager, logger *slog.Logger, stdout io.Writer) error {
	if l == nil {
		return nil
	}
	h, err := radiusrest.New(m, l.secret, &radiusrest.Options{Logger: logger.With("component", "radiusrest")})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/radius/", h)
	l.serve(mux, logger)
	url := "http://" + l.ln.Addr().String() + "/radius/"
	fmt.Fprintf(stdout, "RADIUS rlm_rest endpoint on %s\n", url)
	logger.Info("serving the RADIUS rlm_rest endpoint", "url", url)
	return nil
}

// close stops the listener, bounded.
func (l *radiusListener) close() error {
	if l == nil {
		return nil
	}
	return l.sideListener.close()
}

// Check is the directory's own check for /readyz, if it has one.
func (d radiusDirectory) Check(ctx context.Context) error {
	if c, ok := d.Directory.(interface{ Check(context.Context) error }); ok {
		return c.Check(ctx)
	}
	return nil
}
