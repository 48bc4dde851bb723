package settings

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/appauth/appauth/auth"
)

// LoginFlows is the grant side of Nextcloud Login Flow v2, as
// *loginflow.Flows (package auth/loginflow) implements it. Tokens are the
// last segment of the login URL; an unknown, expired or used one is
// auth.ErrNotFound.
type LoginFlows interface {
	// Pending returns the name of the client waiting on the flow.
	Pending(ctx context.Context, loginToken string) (client string, err error)
	// Grant issues an app password for u with req's scopes and expiry, and
	// hands it, with loginName, to the flow's client.
	Grant(ctx context.Context, loginToken string, u *auth.User, loginName string, req auth.IssueRequest) (*auth.AppPassword, error)
	// Deny ends the flow; nothing is issued.
	Deny(ctx context.Context, loginToken string) error
}

// grantData is what grant.html sees.
type grantData struct {
	*pageData
	Token        string
	Client       string // a short name for people
	ClientDetail string // the full User-Agent
	SignIn       bool   // not signed in: show the sign-in form
	Done         string // "granted" or "denied"
}

// flowPathPrefix is where grant pages live under the prefix.
const flowPathPrefix = "login/v2/flow/"

// maxFlowToken bounds a login token in a return path (auth/loginflow's
// are 43 characters).
const maxFlowToken = 128

// validFlowToken reports whether s can be a login token: one path segment
// of the base64url alphabet, so that a return path naming it stays on the
// grant page.
func validFlowToken(s string) bool {
	if s == "" || len(s) > maxFlowToken {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// loginFlowRoutes adds the grant page when Options.LoginFlows is set.
func (h *Handler) loginFlowRoutes(handle func(string, http.HandlerFunc)) {
	if h.opts.LoginFlows == nil {
		return
	}
	handle("GET login/v2/flow/{token}", redactToken(h.grantPage))
	handle("POST login/v2/flow/{token}", redactToken(h.grantForm))
}

// redactToken hands fn the request with the token cut from its URL path,
// so that no error log line of the shared helpers carries it (fn reads it
// with PathValue).
func redactToken(fn http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r2 := r.Clone(r.Context())
		r2.URL.Path = strings.TrimSuffix(r.URL.Path, r.PathValue("token")) + "…"
		r2.URL.RawPath = ""
		fn(w, r2)
	}
}

func (h *Handler) renderGrant(w http.ResponseWriter, r *http.Request, status int, d *grantData) {
	d.Title, d.Prefix = h.opts.Title, h.opts.Prefix
	h.execute(w, r, status, "grant.html", d)
}

// pendingFlow looks the flow of the request's token up, answering the
// request itself (404 or 503 page) when it cannot go on.
func (h *Handler) pendingFlow(w http.ResponseWriter, r *http.Request) (*grantData, bool) {
	token := r.PathValue("token")
	client, err := h.opts.LoginFlows.Pending(r.Context(), token)
	switch {
	case errors.Is(err, auth.ErrNotFound):
		h.errorPage(w, r, http.StatusNotFound, "Link expired",
			"This sign-in link has expired or was already used. Start again from the app.")
		return nil, false
	case err != nil:
		h.unavailablePage(w, r, err)
		return nil, false
	}
	label, detail := clientLabel(client)
	return &grantData{pageData: &pageData{PageTitle: "Grant access"}, Token: token, Client: label, ClientDetail: detail}, true
}

// grantPage asks the signed-in person whether to grant the flow's client
// access, or signs them in first. With an SSO, ?sso=signin starts a
// sign-in and ?sso=reauth a confirmation through the provider, both
// returning here: the return path is kept in the SSO's pending record, so
// the token never goes to the provider, and these links stay on the one
// URL that already carries it.
func (h *Handler) grantPage(w http.ResponseWriter, r *http.Request) {
	d, ok := h.pendingFlow(w, r)
	if !ok {
		return
	}
	s, err := h.currentSession(r)
	sso := ""
	if h.opts.SSO != nil {
		sso = r.URL.Query().Get("sso")
	}
	switch {
	case errors.Is(err, errNoSession):
		if sso == "signin" {
			h.ssoBegin(w, r, SSORequest{ReturnPath: flowPathPrefix + d.Token})
			return
		}
		d.SignIn = true
		h.grantSignIn(d)
		if u := r.URL.Query().Get("user"); len(u) <= maxLoginBytes {
			d.Username = u // ?user= prefills, as Nextcloud clients may ask
		}
		h.renderGrant(w, r, http.StatusOK, d)
		return
	case err != nil:
		h.unavailablePage(w, r, err)
		return
	}
	if sso == "reauth" && h.ssoReauthURL(s) != "" {
		h.ssoBegin(w, r, SSORequest{ReturnPath: flowPathPrefix + d.Token, Reauth: s.p})
		return
	}
	h.fillGrant(d, s, nil)
	h.renderGrant(w, r, http.StatusOK, d)
}

// grantSignIn fills in the sign-in choices: the provider's button when
// there is an SSO, the password form when there is a verifier.
func (h *Handler) grantSignIn(d *grantData) {
	d.PasswordForm = h.verifier != nil
	if h.opts.SSO != nil {
		d.SSOName = h.opts.SSO.Name()
		d.SSOURL = h.opts.Prefix + flowPathPrefix + d.Token + "?sso=signin"
	}
}

func (h *Handler) fillGrant(d *grantData, s *session, form map[string][]string) {
	d.User, d.CSRF = &s.p.User, s.csrf
	d.NeedReauth = !h.recent(s)
	d.Access = newAccessForm(form, h.opts.Now())
	if d.NeedReauth && h.ssoReauthURL(s) != "" {
		// A session signed in through the SSO confirms there.
		d.SSOName = h.opts.SSO.Name()
		d.SSOURL = h.opts.Prefix + flowPathPrefix + d.Token + "?sso=reauth"
	}
}

// grantForm signs in (action "signin"), grants (action "grant") or
// denies (anything else) the flow.
func (h *Handler) grantForm(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	if err := r.ParseForm(); err != nil {
		h.errorPage(w, r, http.StatusBadRequest, "Bad request", "The form could not be read. Go back and try again.")
		return
	}
	d, ok := h.pendingFlow(w, r)
	if !ok {
		return
	}
	here := h.opts.Prefix + flowPathPrefix + d.Token
	if r.PostForm.Get("action") == "signin" {
		login := strings.TrimSpace(r.PostForm.Get("username"))
		if _, _, err := h.signIn(w, r, login, r.PostForm.Get("password")); err != nil {
			status, msg := h.passwordError(w, r, err)
			if len(login) > maxLoginBytes {
				login = ""
			}
			d.SignIn, d.Error, d.Username = true, msg, login
			h.grantSignIn(d)
			h.renderGrant(w, r, status, d)
			return
		}
		http.Redirect(w, r, here, http.StatusSeeOther)
		return
	}
	s, err := h.currentSession(r)
	switch {
	case errors.Is(err, errNoSession):
		http.Redirect(w, r, here, http.StatusSeeOther)
		return
	case err != nil:
		h.unavailablePage(w, r, err)
		return
	}
	if !s.validCSRF(r.PostForm.Get("csrf")) {
		h.errorPage(w, r, http.StatusForbidden, "Request refused",
			"This form has expired or did not come from this site. Go back, reload the page and try again.")
		return
	}
	ctx := r.Context()
	if r.PostForm.Get("action") != "grant" {
		if err := h.opts.LoginFlows.Deny(ctx, d.Token); err != nil {
			h.grantFailed(w, r, err)
			return
		}
		h.fillGrant(d, s, nil)
		d.Done = "denied"
		h.renderGrant(w, r, http.StatusOK, d)
		return
	}
	scopes, expiresAt, err := parseAccess(r.PostForm, h.opts.Now())
	if err != nil {
		h.fillGrant(d, s, r.PostForm)
		d.Access.Invalid, d.Error = true, upperFirst(inputMessage(err))+"."
		h.renderGrant(w, r, http.StatusBadRequest, d)
		return
	}
	if !h.recent(s) && h.ssoReauthURL(s) != "" {
		h.fillGrant(d, s, r.PostForm)
		d.Error = fmt.Sprintf("For your security, confirm it's you with %s first (you signed in more than %s ago).", h.opts.SSO.Name(), humanDuration(h.opts.RecentAuth))
		h.renderGrant(w, r, http.StatusForbidden, d)
		return
	}
	if !h.recent(s) {
		if err := h.reauthenticate(w, r, s, r.PostForm.Get("password")); err != nil {
			status, msg := h.passwordError(w, r, err)
			if status == http.StatusUnauthorized || status == http.StatusBadRequest {
				msg = fmt.Sprintf("For your security, enter your password again (you signed in more than %s ago).", humanDuration(h.opts.RecentAuth))
			}
			h.fillGrant(d, s, r.PostForm)
			d.PasswordBad, d.Error = true, msg
			h.renderGrant(w, r, status, d)
			return
		}
	}
	req := auth.IssueRequest{Scopes: scopes, ExpiresAt: expiresAt, RemoteAddr: h.clientAddr(r), UserAgent: r.UserAgent()}
	if _, err := h.opts.LoginFlows.Grant(ctx, d.Token, &s.p.User, h.opts.LoginName(&s.p.User), req); err != nil {
		h.grantFailed(w, r, err)
		return
	}
	h.fillGrant(d, s, nil)
	d.Done = "granted"
	h.renderGrant(w, r, http.StatusOK, d)
}

func (h *Handler) grantFailed(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, auth.ErrNotFound) {
		h.errorPage(w, r, http.StatusNotFound, "Link expired",
			"This sign-in link has expired or was already used. Start again from the app.")
		return
	}
	h.failPage(w, r, err, "")
}
