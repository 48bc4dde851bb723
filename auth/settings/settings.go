package settings

import (
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/clientaddr"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Options configure a [Handler]. Every zero field takes the default given on it.
type Options struct {
	// Prefix is the path the Handler is mounted at, with a leading and a
	// trailing slash, for example "/account/". Mount it there with
	// mux.Handle(prefix, h), without http.StripPrefix: the Handler reads the
	// full path, and the session cookie's Path is the prefix. Default "/".
	Prefix string
	// Title is the product name at the top of every page and in the page
	// titles. Default "Account".
	Title string
	// LoginName is the username shown with a new app password, for the
	// device's settings. Default: the user's Login.
	LoginName func(u *auth.User) string
	// ServerURL, if set, is shown with a new app password as the address to
	// enter in the device, for example "https://dav.example.com/".
	ServerURL string
	// PrincipalURL, if set, returns the absolute URL of u's DAV principal
	// ("https://dav.example.com/dav/principals/alice/"). With it, the box
	// that shows a new app password offers a configuration profile for
	// Apple devices with CalDAV and CardDAV accounts (for the ones its
	// access reaches), built from the secret while the box is shown.
	PrincipalURL func(u *auth.User) string

	// RecentAuth is how long after entering the account password a person
	// may create app passwords; after it the page asks for the password
	// again. Default 10 minutes.
	RecentAuth time.Duration
	// CookieName names the session cookie. Default "appauth_session".
	CookieName string
	// Secure, if set, forces the session cookie's Secure attribute on or
	// off. Default: Secure when the request came over TLS, or from a
	// trusted proxy (see ClientAddr) that says it did.
	Secure *bool
	// ClientAddr finds the client's address and scheme behind trusted
	// reverse proxies, for the sessions list, the audit log, throttling and
	// the cookie's Secure attribute. Give the middleware the same one.
	// Default: nil, the connection's peer is the client.
	ClientAddr *clientaddr.Resolver
	// TrustedOrigins are other origins ("https://admin.example.com") allowed
	// to make state-changing requests. Same-origin requests always are.
	TrustedOrigins []string
	// LoginFlows, if set, serves the grant page of Nextcloud Login Flow v2
	// at {Prefix}login/v2/flow/{token}: the person signs in if needed
	// (with the password, or through SSO when set, returning to the same
	// page; again if the sign-in is not recent, through the provider for a
	// session signed in there), chooses the access and expiry, and grants
	// or denies. Give it a *loginflow.Flows mounted with the
	// same Prefix. Default: nil, no grant page.
	LoginFlows LoginFlows

	// SSO, if set, offers single sign-on through an identity provider on
	// the sign-in page ("Sign in with ..."), beside the password form, or
	// alone when New is given no PasswordVerifier. See package auth/oidc.
	SSO SSO

	// SharedSecrets, if set, holds a new app password's secret between
	// the create form and the page view that shows it once (and the Apple
	// profile download) in this shared store rather than in this process's
	// memory, so that behind a round-robin balancer the redirected page
	// view may land on any server. The secret is stored sealed with a key
	// derived from the session's cookie secret, which the store never
	// holds; it is single use and expires after 10 minutes. Give every
	// server the same store (backends/sqlstore on PostgreSQL). Default:
	// nil, memory.
	SharedSecrets auth.TransientStore

	// Now is the clock, for the recent sign-in check; give it the Manager's
	// clock in tests. Default time.Now.
	Now func() time.Time
	// Logger receives errors (never a secret). Default: discard. The
	// Manager writes the audit log of sign-ins and credential changes, and
	// throttles password attempts with its [auth.Options].Limiter: every
	// account password this Handler checks goes through
	// [auth.Manager.VerifyAccountPassword].
	Logger *slog.Logger
}

// Handler serves the sign-in page, the "Devices & sessions" page and the
// JSON API. Create it with [New]; it is safe for concurrent use.
type Handler struct {
	m        *auth.Manager
	verifier auth.PasswordVerifier
	opts     Options
	log      *slog.Logger
	mux      *http.ServeMux
	cop      *http.CrossOriginProtection
	tmpl     map[string]*template.Template
	static   fs.FS        // the files under static/
	files    http.Handler // serves static, after staticFile's checks
	held     holder       // new secrets, between the create form and the page view that shows them
	csp      string       // Content-Security-Policy of every response
}

// Limits on what clients send.
const (
	maxBodyBytes   = 64 << 10 // JSON and form bodies
	maxLoginBytes  = 256
	maxSecretBytes = 1024 // account password or session cookie
)

// New returns a Handler that signs people in with verifier (the password
// form) and manages their credentials through m. opts may be nil. verifier
// may be nil when opts.SSO is set: then the page offers single sign-on
// only.
func New(m *auth.Manager, verifier auth.PasswordVerifier, opts *Options) (*Handler, error) {
	if m == nil {
		return nil, errors.New("settings: New: nil Manager")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if verifier == nil && o.SSO == nil {
		return nil, errors.New("settings: New: nil PasswordVerifier and no Options.SSO: nobody could sign in")
	}
	if o.Prefix == "" {
		o.Prefix = "/"
	}
	if !strings.HasPrefix(o.Prefix, "/") || !strings.HasSuffix(o.Prefix, "/") ||
		strings.ContainsAny(o.Prefix, "{}; \t\r\n\"'") || strings.Contains(o.Prefix, "//") {
		return nil, fmt.Errorf("settings: Prefix %q must start and end with \"/\" and hold no spaces, quotes or braces", o.Prefix)
	}
	if o.Title == "" {
		o.Title = "Account"
	}
	if o.LoginName == nil {
		o.LoginName = func(u *auth.User) string { return u.Login }
	}
	if o.RecentAuth < 0 {
		return nil, errors.New("settings: RecentAuth must not be negative")
	}
	if o.RecentAuth == 0 {
		o.RecentAuth = 10 * time.Minute
	}
	if o.CookieName == "" {
		o.CookieName = "appauth_session"
	}
	if !validCookieName(o.CookieName) {
		return nil, fmt.Errorf("settings: CookieName %q is not a valid cookie name", o.CookieName)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{
		m:        m,
		verifier: verifier,
		opts:     o,
		log:      o.Logger.With("component", "settings"),
		cop:      http.NewCrossOriginProtection(),
		held:     &memHeld{},
	}
	if o.SharedSecrets != nil {
		h.held = &sharedHeld{ts: o.SharedSecrets}
	}
	for _, origin := range o.TrustedOrigins {
		if err := h.cop.AddTrustedOrigin(origin); err != nil {
			return nil, fmt.Errorf("settings: TrustedOrigins: %w", err)
		}
	}
	h.cop.SetDenyHandler(http.HandlerFunc(h.crossOriginDenied))
	h.csp = ssoContentSecurityPolicy(o.SSO)
	static, err := fs.Sub(assets, "static")
	if err != nil {
		return nil, fmt.Errorf("settings: %w", err)
	}
	h.static = static
	h.files = http.StripPrefix(o.Prefix+"static/", http.FileServerFS(static))
	if err := h.parseTemplates(); err != nil {
		return nil, err
	}
	h.routes()
	return h, nil
}

func validCookieName(s string) bool {
	for _, r := range s {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune("()<>@,;:\\\"/[]?={}", r) {
			return false
		}
	}
	return s != ""
}

// Prefix returns the path the Handler expects to be mounted at.
func (h *Handler) Prefix() string { return h.opts.Prefix }

func (h *Handler) routes() {
	p := h.opts.Prefix
	mux := http.NewServeMux()
	handle := func(pattern string, fn http.HandlerFunc) {
		method, path, _ := strings.Cut(pattern, " ")
		mux.Handle(method+" "+p+path, fn)
	}
	// Pages.
	handle("GET {$}", h.home)
	handle("GET signin", h.signInPage)
	handle("POST signin", h.signInForm)
	handle("POST signout", h.page(h.signOutForm))
	handle("GET security", h.page(h.securityPage))
	handle("POST app-passwords", h.page(h.createForm))
	handle("GET app-passwords", h.page(h.toSecurityPage)) // the create form's URL, opened or reloaded
	handle("GET app-passwords/{id}/profile", h.page(h.profileFile))
	handle("POST app-passwords/{id}/rename", h.page(h.renameForm))
	handle("POST app-passwords/{id}/revoke", h.page(h.revokeAppPasswordForm))
	handle("POST sessions/{id}/revoke", h.page(h.revokeSessionForm))
	handle("POST sessions/revoke-others", h.page(h.revokeOtherSessionsForm))
	handle("GET static/{file}", h.staticFile)
	h.loginFlowRoutes(handle)
	h.ssoRoutes(handle)

	// JSON API.
	handle("POST api/v1/session", h.apiSignIn)
	handle("DELETE api/v1/session", h.api(h.apiSignOut))
	handle("GET api/v1/app-passwords", h.api(h.apiListAppPasswords))
	handle("POST api/v1/app-passwords", h.api(h.apiCreateAppPassword))
	handle("PATCH api/v1/app-passwords/{id}", h.api(h.apiRenameAppPassword))
	handle("DELETE api/v1/app-passwords/{id}", h.api(h.apiRevokeAppPassword))
	handle("GET api/v1/sessions", h.api(h.apiListSessions))
	handle("DELETE api/v1/sessions/{id}", h.api(h.apiRevokeSession))
	// Known API paths with another method: 405 in JSON; other paths: 404.
	for path, allow := range map[string]string{
		"api/v1/session":            "POST, DELETE",
		"api/v1/app-passwords":      "GET, HEAD, POST",
		"api/v1/app-passwords/{id}": "PATCH, DELETE",
		"api/v1/sessions":           "GET, HEAD",
		"api/v1/sessions/{id}":      "DELETE",
	} {
		mux.Handle(p+path, apiMethodNotAllowed(allow))
	}
	mux.Handle(p+"api/", http.HandlerFunc(h.apiNotFound))
	h.mux = mux
}

// contentSecurityPolicy allows the page's own script, style sheet and
// forms, and nothing else: no inline script or style, no framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// ServeHTTP implements [http.Handler]. Every response, including errors,
// carries the security headers and Cache-Control: no-store; state-changing
// requests from another site are refused with 403.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Cache-Control", "no-store")
	hd.Set("Content-Security-Policy", h.csp)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.cop.Handler(h.mux).ServeHTTP(w, r)
}

// isAPI reports whether r is for the JSON API.
func (h *Handler) isAPI(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, h.opts.Prefix+"api/")
}

func (h *Handler) crossOriginDenied(w http.ResponseWriter, r *http.Request) {
	const msg = "cross-site request refused: state-changing requests must come from this site"
	if h.isAPI(r) {
		writeError(w, http.StatusForbidden, msg)
		return
	}
	h.errorPage(w, r, http.StatusForbidden, "Request refused", "This request came from another site and was refused. Go back to the page and try again.")
}

// staticTypes are the Content-Types of the static files, set here rather
// than from the system's MIME table (which may, for example, call .js
// application/javascript); any other file is application/octet-stream.
var staticTypes = map[string]string{
	".js":  "text/javascript; charset=utf-8",
	".css": "text/css; charset=utf-8",
	".svg": "image/svg+xml",
}

// staticFile serves a file of static/ (the route allows one path segment,
// so "static/" itself, which would be a directory listing, is not routed
// here). Unknown names and directories are answered here with 404: the
// file server's own error responses drop the Cache-Control header.
func (h *Handler) staticFile(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	if st, err := fs.Stat(h.static, name); err != nil || !st.Mode().IsRegular() {
		http.NotFound(w, r)
		return
	}
	ct, ok := staticTypes[path.Ext(name)]
	if !ok {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	// The files are small: always serve them whole. A Range request would
	// otherwise get a 416 from the file server's serveError, which drops
	// Cache-Control, or a multipart/byteranges body with another type.
	r = r.Clone(r.Context())
	r.Header.Del("Range")
	r.Header.Del("If-Range")
	h.files.ServeHTTP(w, r)
}
