package settings

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/appauth/appauth/auth"
)

// SSO is a single sign-on provider that the sign-in page offers ("Sign in
// with <Name>"), set in [Options].SSO. Package auth/oidc implements it for
// OpenID Connect. The Handler keeps the browser side (cookies, pages,
// sessions); the SSO does the protocol and the directory look-up.
//
// Its routes, under the Handler's prefix: GET sso/start (a new sign-in),
// GET sso/reauth (re-authenticate the signed-in person, for actions that
// need a recent sign-in), GET sso/callback (the redirect URI to register
// at the provider) and POST sso/backchannel-logout (the back-channel
// logout URI). Implementations must be safe for concurrent use.
type SSO interface {
	// Name names the provider on the sign-in button ("Sign in with Name").
	Name() string
	// Begin starts a sign-in: it remembers what Complete needs and returns
	// the provider's URL to send the browser to.
	Begin(ctx context.Context, req SSORequest) (*SSOStart, error)
	// Complete finishes a sign-in from the provider's redirect (the query
	// of the callback) and the binding that Begin returned (from the
	// browser's cookie). It returns a person the directory knows and may
	// sign in, or an error: an [*SSOError] for a refusal to show, one
	// matching auth.ErrUnavailable when the provider or the directory
	// cannot answer.
	Complete(ctx context.Context, query url.Values, binding string) (*SSOIdentity, error)
	// LogoutURL returns the provider's URL that ends its session too
	// (RP-initiated logout, with idTokenHint when not empty), or "" when it
	// has none.
	LogoutURL(idTokenHint string) string
	// BackChannelLogout verifies a logout token posted by the provider and
	// ends the browser sessions it names. A token that is not valid (or a
	// replay) is an error matching auth.ErrInvalidCredentials; an outage
	// one matching auth.ErrUnavailable.
	BackChannelLogout(ctx context.Context, logoutToken string) error
}

// SSORequest is what a sign-in through an [SSO] is for.
type SSORequest struct {
	// ReturnPath is the page under the prefix to show afterwards
	// ("security", or a Login Flow grant page "login/v2/flow/{token}").
	// It names a page the browser already has; keep it server-side (it
	// may carry a login token), never in the state sent to the provider.
	ReturnPath string
	// Reauth, when not nil, is the signed-in session to re-authenticate:
	// the provider is asked to authenticate the person again now
	// (OpenID Connect: prompt=login, max_age=0), and the sign-in is
	// accepted only as the same person.
	Reauth *auth.Principal
}

// SSOStart is where a sign-in through an [SSO] begins.
type SSOStart struct {
	// URL is the provider's page to redirect the browser to.
	URL string
	// Binding is a secret the Handler keeps in a short-lived cookie and
	// gives back to Complete, so that a sign-in completes only in the
	// browser that began it.
	Binding string
}

// SSOIdentity is a person signed in through an [SSO].
type SSOIdentity struct {
	// User is the person as the directory describes them (enabled).
	User *auth.User
	// Federation is the provider account they signed in with.
	Federation auth.Federation
	// AuthTime is when the provider last authenticated them (it may be
	// long ago after a silent single sign-on); it decides what counts as
	// a recent sign-in.
	AuthTime time.Time
	// IDToken is the raw ID token, kept for RP-initiated logout's hint.
	IDToken string
	// ReturnPath is [SSORequest].ReturnPath.
	ReturnPath string
	// ReauthSessionID is the session that asked to re-authenticate, or "".
	ReauthSessionID string
}

// SSOError is a refused sign-in through an [SSO], with a message for the
// person ("Your account is not known to this service."). Err, for the
// log, is what went wrong.
type SSOError struct {
	Status  int    // HTTP status of the page: 400, 401 or 403
	Message string // shown on the page and in the API's error
	Err     error
}

func (e *SSOError) Error() string { return "settings: single sign-on refused: " + e.Err.Error() }
func (e *SSOError) Unwrap() error { return e.Err }

// Cookies of the single sign-on: the sign-in in progress (under sso/ only)
// and the ID token kept for the provider's logout.
const (
	ssoStateCookie = "appauth_sso"
	ssoHintCookie  = "appauth_sso_hint"
	ssoStateMaxAge = 10 * 60 // seconds; the SSO's own records may expire sooner
	maxHintBytes   = 3500    // an ID token larger than this is not kept (cookie limit)
	maxLogoutBody  = 32 << 10
)

func (h *Handler) ssoRoutes(handle func(string, http.HandlerFunc)) {
	if h.opts.SSO == nil {
		return
	}
	handle("GET sso/start", h.ssoStart)
	handle("GET sso/reauth", h.page(h.ssoReauth))
	handle("GET sso/callback", h.ssoCallback)
	handle("POST sso/backchannel-logout", h.ssoBackChannelLogout)
}

// returnPath accepts a page of this Handler ("security") or a Login Flow
// grant page ("login/v2/flow/{token}"), nothing that could leave it.
func returnPath(s string) string {
	if token, ok := strings.CutPrefix(s, flowPathPrefix); ok {
		if validFlowToken(token) {
			return s
		}
		return "security"
	}
	if s == "" || len(s) > 64 || strings.Contains(s, "//") || strings.HasPrefix(s, "/") {
		return "security"
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '/') {
			return "security"
		}
	}
	return s
}

func (h *Handler) ssoStart(w http.ResponseWriter, r *http.Request) {
	h.ssoBegin(w, r, settingsSSORequest(r, nil))
}

func (h *Handler) ssoReauth(w http.ResponseWriter, r *http.Request, s *session) {
	h.ssoBegin(w, r, settingsSSORequest(r, s.p))
}

func settingsSSORequest(r *http.Request, p *auth.Principal) SSORequest {
	return SSORequest{ReturnPath: returnPath(r.URL.Query().Get("return")), Reauth: p}
}

func (h *Handler) ssoBegin(w http.ResponseWriter, r *http.Request, req SSORequest) {
	st, err := h.opts.SSO.Begin(r.Context(), req)
	if err != nil {
		h.ssoFail(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: ssoStateCookie, Value: st.Binding, Path: h.opts.Prefix + "sso/", MaxAge: ssoStateMaxAge,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: h.secure(r),
	})
	http.Redirect(w, r, st.URL, http.StatusSeeOther)
}

// ssoCallback completes a sign-in: a new session, or for a
// re-authentication a new session of the same person in place of the old
// one (a copy of the old cookie does not gain the recent sign-in).
func (h *Handler) ssoCallback(w http.ResponseWriter, r *http.Request) {
	binding := ""
	if c, err := r.Cookie(ssoStateCookie); err == nil && len(c.Value) <= maxSecretBytes {
		binding = c.Value
	}
	// Single use, whatever the outcome.
	http.SetCookie(w, &http.Cookie{
		Name: ssoStateCookie, Value: "", Path: h.opts.Prefix + "sso/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: h.secure(r),
	})
	id, err := h.opts.SSO.Complete(r.Context(), r.URL.Query(), binding)
	if err != nil {
		h.ssoFail(w, r, err)
		return
	}
	cur, err := h.currentSession(r)
	if err != nil && !errors.Is(err, errNoSession) {
		h.unavailablePage(w, r, err)
		return
	}
	if id.ReauthSessionID != "" && (cur == nil || cur.id() != id.ReauthSessionID || cur.userID() != id.User.ID) {
		h.ssoFail(w, r, &SSOError{Status: http.StatusForbidden, Err: errWrongUser,
			Message: "This confirmation belongs to another session. Go back to the page and try again."})
		return
	}
	ctx := r.Context()
	sess, secret, err := h.m.CreateFederatedSession(ctx, id.User, id.Federation, id.AuthTime, h.clientAddr(r), r.UserAgent())
	if err != nil {
		h.failPage(w, r, err, "")
		return
	}
	h.setCookie(w, r, secret, sess.ExpiresAt)
	if len(id.IDToken) <= maxHintBytes {
		http.SetCookie(w, &http.Cookie{
			Name: ssoHintCookie, Value: id.IDToken, Path: h.opts.Prefix, Expires: sess.ExpiresAt,
			HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: h.secure(r),
		})
	}
	if cur != nil {
		// Also when the client has gone away, as in replaceSession.
		if err := h.m.RevokeSession(context.WithoutCancel(ctx), cur.userID(), cur.id()); err != nil && !errors.Is(err, auth.ErrNotFound) {
			h.log.WarnContext(ctx, "end the session replaced by a sign-in", "error", err)
		}
	}
	h.redirect(w, r, returnPath(id.ReturnPath))
}

// ssoFail answers a failed single sign-on step with a clear page.
func (h *Handler) ssoFail(w http.ResponseWriter, r *http.Request, err error) {
	var se *SSOError
	switch {
	case errors.As(err, &se):
		h.log.InfoContext(r.Context(), "single sign-on refused", "status", se.Status, "error", se.Err)
		h.errorPage(w, r, se.Status, "Sign-in refused", se.Message)
	case errors.Is(err, auth.ErrUnavailable):
		h.log.WarnContext(r.Context(), "single sign-on unavailable", "error", err)
		h.errorPage(w, r, http.StatusServiceUnavailable, "Temporarily unavailable",
			"Single sign-on is temporarily unavailable: "+h.opts.SSO.Name()+" or the account service cannot be reached. Please try again in a minute.")
	default:
		h.log.ErrorContext(r.Context(), "single sign-on", "error", err)
		h.errorPage(w, r, http.StatusInternalServerError, "Something went wrong", "The sign-in could not be completed. Please try again.")
	}
}

// ssoBackChannelLogout receives a logout token from the provider (OpenID
// Connect Back-Channel Logout 1.0: 200 when done, 400 when refused).
func (h *Handler) ssoBackChannelLogout(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxLogoutBody)
	if err := r.ParseForm(); err != nil || r.PostForm.Get("logout_token") == "" {
		writeError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	err := h.opts.SSO.BackChannelLogout(r.Context(), r.PostForm.Get("logout_token"))
	switch {
	case err == nil:
		w.WriteHeader(http.StatusOK)
	case errors.Is(err, auth.ErrUnavailable):
		h.log.WarnContext(r.Context(), "back-channel logout unavailable", "error", err)
		w.Header().Set("Retry-After", "30")
		writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable")
	default:
		h.log.InfoContext(r.Context(), "back-channel logout refused", "error", err)
		writeError(w, http.StatusBadRequest, "invalid_request")
	}
}

// ssoLogoutURL returns where to send the browser after signing out of a
// session signed in through the SSO (the provider's logout), or "".
func (h *Handler) ssoLogoutURL(w http.ResponseWriter, r *http.Request, s *session) string {
	if h.opts.SSO == nil || s.p.Federation.IsZero() {
		return ""
	}
	hint := ""
	if c, err := r.Cookie(ssoHintCookie); err == nil && len(c.Value) <= maxHintBytes {
		hint = c.Value
	}
	http.SetCookie(w, &http.Cookie{
		Name: ssoHintCookie, Value: "", Path: h.opts.Prefix, MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: h.secure(r),
	})
	return h.opts.SSO.LogoutURL(hint)
}

// ssoReauthURL is where a session signed in through the SSO confirms it
// is the person (instead of entering a password), or "" for others.
func (h *Handler) ssoReauthURL(s *session) string {
	if h.opts.SSO == nil || s.p.Federation.IsZero() {
		return ""
	}
	return h.opts.Prefix + "sso/reauth?return=security"
}

// ssoPageData fills in what the templates show of the single sign-on.
func (h *Handler) ssoPageData(name string, d *pageData) {
	d.PasswordForm = h.verifier != nil
	if h.opts.SSO == nil {
		return
	}
	d.SSOName = h.opts.SSO.Name()
	if name == "signin.html" {
		d.SSOURL = h.opts.Prefix + "sso/start?return=security"
	}
}

// ssoContentSecurityPolicy is the page's policy, with the origin of the
// provider's logout added to form-action: "Sign out" is a form whose
// answer redirects there, and browsers apply form-action to redirects.
func ssoContentSecurityPolicy(sso SSO) string {
	if sso == nil {
		return contentSecurityPolicy
	}
	u, err := url.Parse(sso.LogoutURL(""))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || strings.ContainsAny(u.Host, " ;,'\"") {
		return contentSecurityPolicy
	}
	return strings.Replace(contentSecurityPolicy, "form-action 'self'", "form-action 'self' "+u.Scheme+"://"+u.Host, 1)
}
