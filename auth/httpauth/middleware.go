package httpauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/clientaddr"
	"github.com/appauth/appauth/internal/safetext"
)

// Options configure a [Middleware]. Every zero field takes the default
// given on it.
type Options struct {
	// Realm names the protected space in the WWW-Authenticate challenge;
	// clients show it in password prompts. Printable text without '"' or
	// '\'. Default "appauth".
	Realm string

	// AccountPasswords, if set, lets clients sign in with the account
	// (directory) password: a Basic password that does not look like an app
	// password ([auth.LooksLikeAppPassword]) is checked with it through
	// [AccountPasswordAuthenticator] (the Manager's one account-password
	// path: its Limiter, its audit log), and the principal's Method is
	// [auth.MethodAccountPassword]. It is meant for migrations; by default
	// the account password is refused (401), so it stays off devices.
	// Setting it requires an Authenticator that implements
	// AccountPasswordAuthenticator and throttles ([*auth.Manager] with an
	// [auth.Options].Limiter).
	AccountPasswords auth.PasswordVerifier

	// ClientAddr finds the client's address behind trusted reverse proxies,
	// for throttling and the audit log. Give the settings page the same one.
	// Default: nil, the connection's peer is the client.
	ClientAddr *clientaddr.Resolver

	// ChallengeOptions makes OPTIONS requests without credentials get a 401
	// like any other. By default they reach the handler unauthenticated
	// (with no principal in the context), because DAV clients probe a server
	// with OPTIONS before they send credentials.
	ChallengeOptions bool

	// UnavailableRetryAfter is the Retry-After sent with a 503 when the
	// store or directory cannot answer. Default 10s.
	UnavailableRetryAfter time.Duration

	// Logger receives the middleware's own decisions (malformed headers,
	// errors), never a secret or an Authorization header. App-password and
	// account-password decisions are logged by the Manager. Default: discard.
	Logger *slog.Logger
}

// TokenAuthenticator is the optional interface of an [auth.Authenticator]
// that accepts an app password without a username, as
// "Authorization: Bearer <app password>": the principal is the credential's
// owner. [*auth.Manager] implements it. With an Authenticator that does
// not, Bearer requests get 401.
type TokenAuthenticator interface {
	AuthenticateToken(ctx context.Context, secret, remoteAddr, userAgent string) (*auth.Principal, error)
}

// AccountPasswordAuthenticator is the interface of an [auth.Authenticator]
// that checks account passwords, for [Options].AccountPasswords;
// [*auth.Manager] implements it. HasLimiter must report whether those
// checks are throttled.
type AccountPasswordAuthenticator interface {
	VerifyAccountPassword(ctx context.Context, v auth.PasswordVerifier, a auth.Attempt) (*auth.Principal, error)
	HasLimiter() bool
}

// Middleware authenticates HTTP requests with HTTP Basic or Bearer
// credentials. Create it with [New] and protect a handler with
// [Middleware.Wrap]. It is safe for concurrent use.
type Middleware struct {
	auth      auth.Authenticator
	tokens    TokenAuthenticator           // nil if auth does not implement it
	accounts  AccountPasswordAuthenticator // set with Options.AccountPasswords
	opts      Options
	log       *slog.Logger
	challenge []string // the WWW-Authenticate header value
	retry503  []string
}

// maxUserAgentLen bounds the user agent passed on (and stored as a
// credential's last client).
const maxUserAgentLen = 256

// New returns a Middleware that authenticates with a, typically an
// [*auth.Manager]. opts may be nil for the defaults.
func New(a auth.Authenticator, opts *Options) (*Middleware, error) {
	if a == nil {
		return nil, errors.New("httpauth: New: nil Authenticator")
	}
	o := Options{}
	if opts != nil {
		o = *opts
	}
	if o.Realm == "" {
		o.Realm = "appauth"
	}
	if strings.ContainsFunc(o.Realm, func(r rune) bool { return r == '"' || r == '\\' || !unicode.IsPrint(r) }) {
		return nil, fmt.Errorf("httpauth: Options.Realm %q: want printable text without '\"' or '\\'", o.Realm)
	}
	accounts, _ := a.(AccountPasswordAuthenticator)
	if o.AccountPasswords != nil && (accounts == nil || !accounts.HasLimiter()) {
		return nil, errors.New("httpauth: Options.AccountPasswords needs an Authenticator that throttles account passwords (an *auth.Manager with Options.Limiter)")
	}
	if o.UnavailableRetryAfter < 0 {
		return nil, errors.New("httpauth: Options.UnavailableRetryAfter must not be negative")
	}
	if o.UnavailableRetryAfter == 0 {
		o.UnavailableRetryAfter = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Middleware{
		auth:      a,
		opts:      o,
		log:       o.Logger.With("component", "httpauth"),
		challenge: []string{`Basic realm="` + o.Realm + `", charset="UTF-8"`},
		retry503:  []string{retryAfter(o.UnavailableRetryAfter)},
	}
	m.tokens, _ = a.(TokenAuthenticator)
	if o.AccountPasswords != nil {
		m.accounts = accounts
	}
	return m, nil
}

// Wrap returns a handler that authenticates each request and calls next
// with the [auth.Principal] in the request's context ([PrincipalFromContext]),
// or answers itself:
//
//   - 401 with a WWW-Authenticate Basic challenge: no, malformed or wrong
//     credentials (one answer for every reason);
//   - 403: a credential limited to [auth.ScopeReadOnly] used for a request
//     that is not a read ([IsReadRequest]), or [auth.ErrForbidden];
//   - 429 with Retry-After: [auth.ErrThrottled];
//   - 503 with Retry-After: [auth.ErrUnavailable] or any other error, never
//     401, so that clients keep their credentials through an outage.
//
// OPTIONS requests without credentials pass unauthenticated unless
// [Options].ChallengeOptions is set.
func (m *Middleware) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		values := r.Header["Authorization"]
		if len(values) == 0 {
			if r.Method == http.MethodOptions && !m.opts.ChallengeOptions {
				next.ServeHTTP(w, r)
				return
			}
			m.refuse(w, r, auth.ErrInvalidCredentials)
			return
		}
		p, err := m.authenticate(r, values)
		if err == nil && p == nil {
			err = errors.New("httpauth: Authenticator returned no principal and no error")
		}
		if err != nil {
			m.refuse(w, r, err)
			return
		}
		if !IsReadRequest(r) && slices.Contains(p.Scopes, auth.ScopeReadOnly) {
			m.refuse(w, r, auth.ErrForbidden)
			return
		}
		next.ServeHTTP(w, r.WithContext(ContextWithPrincipal(r.Context(), p)))
	})
}

func (m *Middleware) authenticate(r *http.Request, values []string) (*auth.Principal, error) {
	ctx := r.Context()
	if len(values) != 1 {
		m.log.DebugContext(ctx, "refused Authorization header", "reason", "repeated", "remote_addr", safetext.Escape(r.RemoteAddr))
		return nil, auth.ErrInvalidCredentials
	}
	s, username, password, err := parseAuthorization(values[0]) // refuses over MaxAuthorizationLen unread
	if err != nil {
		m.log.DebugContext(ctx, "refused Authorization header", "reason", "malformed", "remote_addr", safetext.Escape(r.RemoteAddr))
		return nil, auth.ErrInvalidCredentials
	}
	addr := m.opts.ClientAddr.Addr(r)
	var ua string
	if v := r.Header["User-Agent"]; len(v) > 0 { // what r.UserAgent does, without canonicalizing the key per request
		ua = safetext.Truncate(v[0], maxUserAgentLen)
	}
	if s == schemeBearer {
		if m.tokens == nil {
			m.log.DebugContext(ctx, "refused Authorization header", "reason", "bearer_unsupported", "remote_addr", safetext.Escape(addr))
			return nil, auth.ErrInvalidCredentials
		}
		return m.tokens.AuthenticateToken(ctx, password, addr, ua)
	}
	c := auth.Attempt{Username: username, Password: password, RemoteAddr: addr, UserAgent: ua}
	if m.accounts != nil && !auth.LooksLikeAppPassword(password) {
		return m.accounts.VerifyAccountPassword(ctx, m.opts.AccountPasswords, c)
	}
	return m.auth.Authenticate(ctx, c)
}

// refuse answers a request that may not proceed. The body is the status
// text only: it never says which part of the credentials was wrong.
func (m *Middleware) refuse(w http.ResponseWriter, r *http.Request, err error) {
	h := w.Header()
	var te *auth.ThrottleError
	switch {
	case errors.As(err, &te):
		h["Retry-After"] = []string{retryAfter(te.RetryAfter)}
		writeStatus(w, http.StatusTooManyRequests)
	case errors.Is(err, auth.ErrThrottled):
		h["Retry-After"] = []string{"1"}
		writeStatus(w, http.StatusTooManyRequests)
	case errors.Is(err, auth.ErrUnavailable):
		h["Retry-After"] = m.retry503
		writeStatus(w, http.StatusServiceUnavailable)
	case errors.Is(err, auth.ErrForbidden):
		writeStatus(w, http.StatusForbidden)
	case errors.Is(err, auth.ErrInvalidCredentials):
		h["Www-Authenticate"] = m.challenge
		writeStatus(w, http.StatusUnauthorized)
	default:
		m.log.ErrorContext(r.Context(), "authentication failed with an unexpected error", "error", err, "remote_addr", safetext.Escape(r.RemoteAddr))
		h["Retry-After"] = m.retry503
		writeStatus(w, http.StatusServiceUnavailable)
	}
}

func writeStatus(w http.ResponseWriter, code int) {
	http.Error(w, http.StatusText(code), code)
}

// retryAfter formats d as whole seconds, rounded up, at least 1.
func retryAfter(d time.Duration) string {
	s := (d + time.Second - 1) / time.Second
	return strconv.FormatInt(int64(max(s, 1)), 10)
}
