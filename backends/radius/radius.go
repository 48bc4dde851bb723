// Package radius checks account passwords against a RADIUS server: an
// [auth.PasswordVerifier] for the web sign-in, for organisations whose
// passwords (or password plus one-time code, typed together) live behind
// RADIUS (FreeRADIUS, privacyIDEA, an OTP server).
//
// Each check is one PAP Access-Request (RFC 2865) with a
// Message-Authenticator as its first attribute (RFC 3579; the BlastRADIUS,
// CVE-2024-3596, mitigation). A reply counts only when its Response
// Authenticator and its Message-Authenticator verify; the
// Message-Authenticator is required in replies unless
// [Config].AllowUnsignedReplies (Debian's FreeRADIUS 3.2.1 does not sign
// PAP replies). Anything else arriving on the socket (forged, late, for
// another request) is ignored and logged. Requests are retried and fail
// over across [Config].Servers, each try bounded by [Config].Timeout.
//
// Answers: Access-Accept is a user; Access-Reject is
// [auth.ErrInvalidCredentials]; Access-Challenge (a prompt for a second
// factor) is not supported and is also a refusal, matching both
// [ErrChallenge] and [auth.ErrInvalidCredentials] (the client learns
// nothing more than from a wrong password); no valid answer from any
// server within the deadline is [auth.ErrUnavailable].
//
// RADIUS says only yes or no: give [Config].Directory (LDAP, htpasswd) to
// learn who the user is (stable ID, groups, disabled). RADIUS checks the
// password, the directory says who it is:
//
//	dir, _ := ldap.New(ldapConfig, nil)
//	v, _ := radius.New(radius.Config{Servers: []string{"10.0.0.5:1812", "10.0.0.6:1812"}, Secret: secret, Directory: dir})
//	m, _ := auth.NewManager(store, dir, opts) // app passwords: owners from LDAP
//	p, err := m.VerifyAccountPassword(ctx, v, attempt) // the web sign-in: RADIUS
//
// The packet code is this package's own (about 200 lines, fuzzed): the
// usual Go library, layeh.com/radius, has no tagged release, predates
// BlastRADIUS and does not place or verify a Message-Authenticator.
package radius

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/appauth/appauth/auth"
)

// ErrChallenge is an Access-Challenge: the server asked for more (a
// one-time code), which this client does not support. Errors that match
// it also match [auth.ErrInvalidCredentials].
var ErrChallenge = errors.New("radius: Access-Challenge (a second-factor prompt) is not supported")

// Defaults of [Config].
const (
	DefaultTimeout = time.Second
	DefaultTries   = 2
	defaultNASID   = "appauth"
)

// Config configures a [Verifier]. Servers and Secret are required.
type Config struct {
	// Servers are the RADIUS servers, "host:port" (port 1812 usually),
	// tried in this order: the next one when a server does not answer
	// within Tries tries.
	Servers []string
	// Secret is the RADIUS shared secret (the server's clients.conf).
	Secret string
	// Timeout bounds each try; default [DefaultTimeout]. The context of
	// VerifyPassword bounds the whole check.
	Timeout time.Duration
	// Tries is how many times a request is sent to each server before the
	// next one is tried; default [DefaultTries].
	Tries int
	// NASIdentifier is sent as NAS-Identifier; default "appauth".
	NASIdentifier string
	// AllowUnsignedReplies accepts replies without a Message-Authenticator
	// (one that is present is still checked). Off by default: a
	// server that signs its replies makes a forged Access-Accept
	// (BlastRADIUS) impossible. Debian's FreeRADIUS 3.2.1 needs it on, or
	// require_message_authenticator and a newer FreeRADIUS.
	AllowUnsignedReplies bool
	// Directory, when set, says who an accepted user is: its LookupUser
	// result is returned (an unknown or disabled user is refused).
	// Without it the user has ID and Login both the login.
	Directory auth.Directory
	// Logger receives replies that were ignored (forged, unsigned) and
	// Access-Challenges; default: discard. Never a password.
	Logger *slog.Logger

	// omitMessageAuthenticator, for tests: requests without one.
	omitMessageAuthenticator bool
}

// Verifier checks passwords against RADIUS servers. It is safe for
// concurrent use; each check has a UDP socket of its own.
type Verifier struct {
	cfg    Config
	secret []byte
	log    *slog.Logger
}

var _ auth.PasswordVerifier = (*Verifier)(nil)

// New validates cfg and returns a Verifier.
func New(cfg Config) (*Verifier, error) {
	if len(cfg.Servers) == 0 {
		return nil, errors.New(`radius: missing required field "Servers"`)
	}
	for _, s := range cfg.Servers {
		if _, _, err := net.SplitHostPort(s); err != nil {
			return nil, fmt.Errorf("radius: server %q: want host:port: %w", s, err)
		}
	}
	if cfg.Secret == "" {
		return nil, errors.New(`radius: missing required field "Secret"`)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Tries <= 0 {
		cfg.Tries = DefaultTries
	}
	if cfg.NASIdentifier == "" {
		cfg.NASIdentifier = defaultNASID
	}
	if len(cfg.NASIdentifier) > maxAttrLen {
		return nil, fmt.Errorf("radius: NASIdentifier longer than %d bytes", maxAttrLen)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Servers = append([]string(nil), cfg.Servers...)
	return &Verifier{cfg: cfg, secret: []byte(cfg.Secret), log: cfg.Logger.With("backend", "radius")}, nil
}

// VerifyPassword sends login and password in an Access-Request and
// returns the user on Access-Accept; see the package documentation for
// the errors. An empty password, one longer than 128 bytes (PAP's
// limit), and a login or password with a NUL (PAP pads with NULs, which
// servers strip, and FreeRADIUS ends a User-Name at one) are refused
// without asking.
func (v *Verifier) VerifyPassword(ctx context.Context, login, password string) (*auth.User, error) {
	if login == "" || password == "" || len(login) > maxAttrLen || len(password) > maxPasswordLen ||
		strings.IndexByte(login, 0) >= 0 || strings.IndexByte(password, 0) >= 0 {
		return nil, auth.ErrInvalidCredentials
	}
	var errs []error
	for _, server := range v.cfg.Servers {
		code, err := v.ask(ctx, server, login, password)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", server, err))
			if ctx.Err() != nil {
				break
			}
			continue
		}
		switch code {
		case codeAccessAccept:
			return v.user(ctx, login)
		case codeAccessReject:
			return nil, auth.ErrInvalidCredentials
		default: // codeAccessChallenge; ask accepts no other
			v.log.WarnContext(ctx, "radius Access-Challenge refused: second-factor prompts are not supported", "server", server, "login", login)
			return nil, fmt.Errorf("%w: %w", auth.ErrInvalidCredentials, ErrChallenge)
		}
	}
	return nil, fmt.Errorf("%w: radius: no server answered: %w", auth.ErrUnavailable, errors.Join(errs...))
}

// user returns who login is, from the Directory if there is one; a user
// the Directory disables is refused, as auth.PasswordVerifier requires.
func (v *Verifier) user(ctx context.Context, login string) (*auth.User, error) {
	if v.cfg.Directory == nil {
		return &auth.User{ID: login, Login: login}, nil
	}
	u, err := v.cfg.Directory.LookupUser(ctx, login)
	switch {
	case errors.Is(err, auth.ErrNotFound):
		return nil, auth.ErrInvalidCredentials // RADIUS knows them, the directory does not
	case err != nil:
		return nil, fmt.Errorf("radius: look up %q in the directory: %w", login, err)
	case u.Disabled:
		return nil, auth.ErrInvalidCredentials
	}
	return u, nil
}

// ask sends the request to server up to Tries times and returns the code
// of the first reply that verifies.
func (v *Verifier) ask(ctx context.Context, server, login, password string) (byte, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", server)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	// A done context ends the wait at once.
	stop := context.AfterFunc(ctx, func() { c.SetReadDeadline(time.Now()) })
	defer stop()

	var ra [16]byte
	var idb [1]byte
	rand.Read(ra[:])
	rand.Read(idb[:])
	hidden, err := hidePassword([]byte(password), v.secret, ra)
	if err != nil {
		return 0, err
	}
	req, err := encodeRequest(idb[0], ra, v.secret, []attr{
		{attrUserName, []byte(login)},
		{attrUserPassword, hidden},
		{attrNASIdentifier, []byte(v.cfg.NASIdentifier)},
	}, v.cfg.omitMessageAuthenticator)
	if err != nil {
		return 0, err
	}
	buf := make([]byte, maxPacketLen+1)
	var ignored error // the last reply that did not verify, for the error
	for range v.cfg.Tries {
		// Retransmissions keep the identifier and authenticator (RFC 5080
		// section 2.2.1), so a late reply to an earlier try still counts.
		if _, err := c.Write(req); err != nil {
			return 0, err
		}
		deadline := time.Now().Add(v.cfg.Timeout)
		if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
			deadline = dl
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		c.SetReadDeadline(deadline)
		for {
			n, err := c.Read(buf)
			if err != nil {
				if ctx.Err() != nil {
					return 0, ctx.Err()
				}
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break // the next try
				}
				return 0, err // ICMP port unreachable: a dead server
			}
			code, err := v.check(buf[:n], idb[0], ra)
			if err != nil {
				v.log.WarnContext(ctx, "radius reply ignored", "server", server, "err", err)
				ignored = err
				continue
			}
			return code, nil
		}
	}
	if ignored != nil {
		return 0, fmt.Errorf("no valid answer after %d tries of %v; last reply ignored: %w", v.cfg.Tries, v.cfg.Timeout, ignored)
	}
	return 0, fmt.Errorf("no answer after %d tries of %v", v.cfg.Tries, v.cfg.Timeout)
}

// check verifies a reply to the request id with authenticator ra.
func (v *Verifier) check(raw []byte, id byte, ra [16]byte) (byte, error) {
	p, err := decode(raw)
	if err != nil {
		return 0, err
	}
	if p.id != id {
		return 0, fmt.Errorf("radius: reply for identifier %d, not %d", p.id, id)
	}
	switch p.code {
	case codeAccessAccept, codeAccessReject, codeAccessChallenge:
	default:
		return 0, fmt.Errorf("radius: reply with code %d", p.code)
	}
	if err := verifyReply(raw, p, ra, v.secret, v.cfg.AllowUnsignedReplies); err != nil {
		return 0, err
	}
	return p.code, nil
}
