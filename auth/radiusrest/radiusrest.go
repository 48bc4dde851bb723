// Package radiusrest answers FreeRADIUS's rlm_rest module: FreeRADIUS does
// the RADIUS protocol (client secrets, EAP, Message-Authenticator) and asks
// this handler, over HTTP, whether an app password is valid for a user on
// the network. Wi-Fi (802.1X, EAP-TTLS with PAP inside) and VPNs (PAP)
// then accept app passwords.
//
// The handler takes the form body that rlm_rest sends with body = 'post'
// (User-Name, User-Password, Calling-Station-Id, NAS-IP-Address,
// NAS-Identifier, ...) and answers with a status that rlm_rest maps to a
// module result:
//
//	204 No Content           accept  (ok)
//	401 Unauthorized         reject  (wrong, revoked or expired password, or no network scope)
//	429 Too Many Requests    reject  (invalid: throttled)
//	400 Bad Request          reject  (invalid: no User-Name or User-Password, e.g. CHAP or MS-CHAP)
//	403 Forbidden            reject  (missing or wrong shared secret header)
//	503 Service Unavailable  fail    (the store or directory is down)
//
// A fail must not become an Access-Reject, which makes a phone forget its
// Wi-Fi password: the FreeRADIUS site turns it into no answer at all
// ("do_not_respond"), which the NAS retries. docs/radius.md has the whole
// FreeRADIUS 3.2 configuration.
//
// Every attempt goes through the [auth.Authenticator] (an [auth.Manager]),
// so it is throttled and audited like any other; the credential must allow
// [auth.ScopeNetwork] (an unrestricted one does). The caller's address for
// the throttle and the device list is the Calling-Station-Id when it is an
// IP address (a VPN client), else the NAS's address (a Wi-Fi access point,
// where the station is a MAC address); the client is "RADIUS" with the NAS
// and the station, so the device list shows where the password was last
// used.
package radiusrest

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/appauth/appauth/auth"
)

// SecretHeader is the request header that carries the secret shared with
// FreeRADIUS (set there with control:REST-HTTP-Header).
const SecretHeader = "X-Appauth-Radius-Secret"

// MinSecretLen is the shortest shared secret [New] accepts.
const MinSecretLen = 16

// Limits on what a request may carry.
const (
	maxBodyBytes = 16 << 10 // rlm_rest sends every request attribute; a few KiB at most
	maxValueLen  = 253      // a RADIUS attribute's longest value
)

// Options are the optional settings of a [Handler]; nil or the zero value
// means the defaults.
type Options struct {
	// Scope is the scope a credential needs; default [auth.ScopeNetwork].
	Scope string
	// Logger receives a line for each refusal that the Authenticator does
	// not audit itself (a wrong shared secret, a malformed request, a
	// credential without the scope, an unexpected error from the
	// Authenticator); default: discard. Never a secret.
	Logger *slog.Logger
}

// Handler is the http.Handler that answers rlm_rest's authenticate calls.
// It is safe for concurrent use.
type Handler struct {
	a      auth.Authenticator
	secret []byte
	scope  string
	log    *slog.Logger
}

// New returns a Handler that checks attempts with a and requires secret in
// the [SecretHeader] of every request. secret must have at least
// [MinSecretLen] bytes. When a tells whether it throttles (an
// [auth.Manager] does, with HasLimiter), it must: a RADIUS client guesses
// without a person at the keyboard.
func New(a auth.Authenticator, secret string, opts *Options) (*Handler, error) {
	if a == nil {
		return nil, errors.New("radiusrest: nil Authenticator")
	}
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("radiusrest: the shared secret must have at least %d bytes", MinSecretLen)
	}
	if l, ok := a.(interface{ HasLimiter() bool }); ok && !l.HasLimiter() {
		return nil, errors.New("radiusrest: the Manager has no Limiter (auth.Options.Limiter): RADIUS attempts must be throttled")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Scope == "" {
		o.Scope = auth.ScopeNetwork
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{a: a, secret: []byte(secret), scope: o.Scope, log: o.Logger.With("edge", "radiusrest")}, nil
}

// ServeHTTP answers one rlm_rest call; see the package documentation for
// the statuses.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The secret first: nothing else is read for someone who lacks it.
	if subtle.ConstantTimeCompare([]byte(r.Header.Get(SecretHeader)), h.secret) != 1 {
		h.log.WarnContext(r.Context(), "radius request refused", "reason", "bad_shared_secret", "peer", r.RemoteAddr)
		w.WriteHeader(http.StatusForbidden)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	a, err := readAttempt(w, r)
	if err != nil {
		h.log.WarnContext(r.Context(), "radius request refused", "reason", "malformed", "peer", r.RemoteAddr, "err", err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	p, err := h.a.Authenticate(r.Context(), a)
	if err == nil && p == nil {
		err = errors.New("radiusrest: Authenticator returned no principal and no error")
	}
	switch {
	case err == nil && !p.HasScope(h.scope):
		h.log.InfoContext(r.Context(), "radius request refused", "reason", "scope", "login", p.User.Login,
			"credential_id", p.CredentialID, "scope", h.scope)
		w.WriteHeader(http.StatusUnauthorized)
	case err == nil:
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, auth.ErrThrottled):
		w.WriteHeader(http.StatusTooManyRequests)
	case errors.Is(err, auth.ErrInvalidCredentials):
		w.WriteHeader(http.StatusUnauthorized)
	default: // an outage, or anything unexpected: fail, never reject
		if !errors.Is(err, auth.ErrUnavailable) {
			h.log.ErrorContext(r.Context(), "radius request failed with an unexpected error", "error", err, "peer", r.RemoteAddr)
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}
}

// readAttempt reads the form body rlm_rest sends (body = 'post').
func readAttempt(w http.ResponseWriter, r *http.Request) (auth.Attempt, error) {
	if ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); !strings.EqualFold(strings.TrimSpace(ct), "application/x-www-form-urlencoded") {
		return auth.Attempt{}, fmt.Errorf("content type %q: want application/x-www-form-urlencoded (rlm_rest body = 'post')", ct)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		return auth.Attempt{}, fmt.Errorf("body: %w", err)
	}
	values, err := url.ParseQuery(string(body))
	if err != nil {
		return auth.Attempt{}, fmt.Errorf("body: %w", err)
	}
	form := form(values)
	user, err := form.one("User-Name", true)
	if err != nil {
		return auth.Attempt{}, err
	}
	password, err := form.one("User-Password", true)
	if err != nil {
		return auth.Attempt{}, err
	}
	// Inside EAP-TTLS the device could send these itself: the inner
	// tunnel of docs/radius.md (and internal/testenv) sets them from the
	// outer request, and must list any other attribute read here.
	station, _ := form.one("Calling-Station-Id", false)
	nasIP, _ := form.one("NAS-IP-Address", false)
	if nasIP == "" {
		nasIP, _ = form.one("NAS-IPv6-Address", false)
	}
	nasID, _ := form.one("NAS-Identifier", false)
	return auth.Attempt{Username: user, Password: password, RemoteAddr: remoteAddr(station, nasIP, r.RemoteAddr), UserAgent: client(nasID, nasIP, station)}, nil
}

// remoteAddr picks the address the throttle counts and the device list
// shows: the station when it is an IP address (a VPN client), else the NAS
// (an access point; its stations are MAC addresses, which anyone can
// choose), else FreeRADIUS itself.
func remoteAddr(station, nasIP, peer string) string {
	for _, s := range []string{station, nasIP} {
		if a, err := netip.ParseAddr(s); err == nil {
			return a.String()
		}
	}
	if host, _, err := net.SplitHostPort(peer); err == nil {
		return host
	}
	return peer
}

// client describes the NAS and station for the audit log and the device
// list ("RADIUS ap-3 (192.0.2.7) station AA-BB-CC-00-11-22").
func client(nasID, nasIP, station string) string {
	var b strings.Builder
	b.WriteString("RADIUS")
	switch {
	case nasID != "" && nasIP != "":
		fmt.Fprintf(&b, " %s (%s)", nasID, nasIP)
	case nasID != "" || nasIP != "":
		b.WriteString(" " + nasID + nasIP)
	}
	if station != "" {
		b.WriteString(" station " + station)
	}
	return b.String()
}

// form is a parsed application/x-www-form-urlencoded body.
type form url.Values

// one returns the single value of attr: an error when it appears more than
// once, is too long, or is missing and required.
func (f form) one(attr string, required bool) (string, error) {
	vs := f[attr]
	switch {
	case len(vs) == 0 && required:
		return "", fmt.Errorf("no %s", attr)
	case len(vs) == 0:
		return "", nil
	case len(vs) > 1:
		return "", fmt.Errorf("%s %d times", attr, len(vs))
	case len(vs[0]) > maxValueLen:
		return "", fmt.Errorf("%s longer than %d bytes", attr, maxValueLen)
	case required && vs[0] == "":
		return "", fmt.Errorf("empty %s", attr)
	}
	return vs[0], nil
}

var _ http.Handler = (*Handler)(nil)
