package settings

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/appauth/appauth/auth"
)

// pageData is what every template sees.
type pageData struct {
	Title     string // product name, Options.Title
	PageTitle string
	Prefix    string
	User      *auth.User
	CSRF      string
	Error     string
	Notice    string

	// Sign-in page.
	Username string
	// Single sign-on: the provider's name and where its sign-in (or, on
	// the security page, the confirmation) starts; PasswordForm: the
	// password form is offered.
	SSOName, SSOURL string
	PasswordForm    bool

	// Error page.
	Heading, Message string

	// Security page.
	AppPasswords []appPasswordView
	Sessions     []sessionView
	Others       int // sessions other than this one
	Created      *createdView
	NeedReauth   bool   // the create form asks for the password
	Name         string // the create form's name field
	NameInvalid  bool
	PasswordBad  bool
	Access       accessForm // the create form's access and expiry choices
	createdGone  string     // the ID of a new password whose moment has passed
}

type appPasswordView struct {
	ID, Name, Hint       string
	Access               string     // the scopes in words
	Expiry               expiryView // when it expires, in words
	Created, LastUsed    timeView
	LastAddr             string
	Client, ClientDetail string
}

type sessionView struct {
	ID                        string
	Current                   bool
	Created, LastUsed, SignIn timeView
	LastAddr                  string
	Client, ClientDetail      string
}

type createdView struct {
	ID, Name, Login, Password, ServerURL string
	Access                               string // in words
	ProfileURL                           string // the Apple configuration profile; empty when none is offered
}

// timeView renders a time for people: UTC text that the page's script
// turns into local time, and the exact value for <time datetime>.
type timeView struct{ T time.Time }

func (t timeView) IsZero() bool { return t.T.IsZero() }
func (t timeView) ISO() string  { return t.T.UTC().Format(time.RFC3339) }
func (t timeView) Text() string { return t.T.UTC().Format("2 Jan 2006, 15:04 UTC") }

// Notices after a redirect, chosen by the "done" query parameter.
var notices = map[string]string{
	"signed-out":       "You have signed out.",
	"renamed":          "App password renamed.",
	"revoked":          "App password revoked. Devices that used it can no longer connect.",
	"session-revoked":  "Session signed out.",
	"sessions-revoked": "All other sessions are signed out.",
}

func (h *Handler) parseTemplates() error {
	funcs := template.FuncMap{"join": strings.Join}
	h.tmpl = map[string]*template.Template{}
	for _, name := range []string{"signin.html", "security.html", "error.html", "grant.html"} {
		t, err := template.New(name).Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/access.html", "templates/"+name)
		if err != nil {
			return fmt.Errorf("settings: templates: %w", err)
		}
		h.tmpl[name] = t
	}
	return nil
}

func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, d *pageData) {
	d.Title = h.opts.Title
	d.Prefix = h.opts.Prefix
	h.ssoPageData(name, d)
	h.execute(w, r, status, name, d)
}

// execute writes template name's page with d, or a plain 500 when it fails.
func (h *Handler) execute(w http.ResponseWriter, r *http.Request, status int, name string, d any) {
	var buf bytes.Buffer
	if err := h.tmpl[name].ExecuteTemplate(&buf, "layout", d); err != nil {
		h.log.ErrorContext(r.Context(), "render page", "template", name, "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (h *Handler) errorPage(w http.ResponseWriter, r *http.Request, status int, heading, msg string) {
	h.render(w, r, status, "error.html", &pageData{PageTitle: heading, Heading: heading, Message: msg})
}

func (h *Handler) unavailablePage(w http.ResponseWriter, r *http.Request, err error) {
	h.log.WarnContext(r.Context(), "unavailable", "path", r.URL.Path, "error", err)
	h.errorPage(w, r, http.StatusServiceUnavailable, "Temporarily unavailable",
		"The account service cannot be reached right now. Nothing was changed. Please try again in a minute.")
}

func (h *Handler) redirect(w http.ResponseWriter, r *http.Request, path string) {
	http.Redirect(w, r, h.opts.Prefix+path, http.StatusSeeOther)
}

// page wraps a handler that needs a signed-in person. Without a valid
// session it redirects to the sign-in page; a POST must carry the session's
// CSRF token in the "csrf" form field.
func (h *Handler) page(fn func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, err := h.currentSession(r)
		if errors.Is(err, errNoSession) {
			if _, cerr := r.Cookie(h.opts.CookieName); cerr == nil {
				h.clearCookie(w, r)
			}
			h.redirect(w, r, "signin")
			return
		}
		if err != nil {
			h.unavailablePage(w, r, err)
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
			if err := r.ParseForm(); err != nil {
				h.errorPage(w, r, http.StatusBadRequest, "Bad request", "The form could not be read. Go back and try again.")
				return
			}
			if !s.validCSRF(r.PostForm.Get("csrf")) {
				h.errorPage(w, r, http.StatusForbidden, "Request refused",
					"This form has expired or did not come from this site. Go back, reload the page and try again.")
				return
			}
		}
		fn(w, r, s)
	}
}

func (h *Handler) home(w http.ResponseWriter, r *http.Request) {
	_, err := h.currentSession(r)
	switch {
	case errors.Is(err, errNoSession):
		h.redirect(w, r, "signin")
	case err != nil:
		h.unavailablePage(w, r, err)
	default:
		h.redirect(w, r, "security")
	}
}

func (h *Handler) signInPage(w http.ResponseWriter, r *http.Request) {
	_, err := h.currentSession(r)
	if err == nil {
		h.redirect(w, r, "security")
		return
	}
	h.render(w, r, http.StatusOK, "signin.html", &pageData{PageTitle: "Sign in", Notice: notices[r.URL.Query().Get("done")]})
}

func (h *Handler) signInForm(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	if err := r.ParseForm(); err != nil {
		h.errorPage(w, r, http.StatusBadRequest, "Bad request", "The form could not be read. Go back and try again.")
		return
	}
	login := strings.TrimSpace(r.PostForm.Get("username"))
	_, _, err := h.signIn(w, r, login, r.PostForm.Get("password"))
	if err == nil {
		h.redirect(w, r, "security")
		return
	}
	status, msg := h.passwordError(w, r, err)
	if len(login) > maxLoginBytes {
		login = ""
	}
	h.render(w, r, status, "signin.html", &pageData{PageTitle: "Sign in", Error: msg, Username: login})
}

// passwordError gives the status and the message for a failed password
// check on a page: the same message whatever was wrong.
func (h *Handler) passwordError(w http.ResponseWriter, r *http.Request, err error) (int, string) {
	status, _ := h.classify(r, err, "")
	switch status {
	case http.StatusBadRequest:
		return status, "Enter your username and password."
	case http.StatusUnauthorized:
		return status, "The username or password is incorrect."
	case http.StatusTooManyRequests:
		setRetryAfter(w, err)
		return status, "Too many attempts. Wait a few minutes, then try again."
	case http.StatusServiceUnavailable:
		return status, "Sign-in is temporarily unavailable because the account service cannot be reached. Please try again in a minute."
	}
	return status, "Something went wrong. Please try again."
}

func (h *Handler) signOutForm(w http.ResponseWriter, r *http.Request, s *session) {
	h.held.forget(r.Context(), s, h.opts.Now()) // a new secret not yet shown goes with the session
	if err := h.signOut(r.Context(), w, r, s); err != nil {
		h.failPage(w, r, err, "")
		return
	}
	if u := h.ssoLogoutURL(w, r, s); u != "" {
		http.Redirect(w, r, u, http.StatusSeeOther) // the provider's session ends too
		return
	}
	h.redirect(w, r, "signin?done=signed-out")
}

// failPage answers a failed action on the security page.
func (h *Handler) failPage(w http.ResponseWriter, r *http.Request, err error, what string) {
	status, msg := h.classify(r, err, what)
	switch status {
	case http.StatusServiceUnavailable:
		h.unavailablePage(w, r, err)
	case http.StatusNotFound:
		h.errorPage(w, r, status, "Not found", "That "+what+" does not exist (any more). It may have been revoked in another window.")
	default:
		h.errorPage(w, r, status, "Something went wrong", upperFirst(msg)+".")
	}
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func (h *Handler) securityPage(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	d := &pageData{Notice: notices[q.Get("done")]}
	if id := q.Get("created"); id != "" {
		// The view the create form redirected to: show the new secret,
		// once. Reloaded, or reached on another server when the secret is
		// held in one server's memory, it says so instead.
		held, err := h.held.show(r.Context(), s, id, h.opts.Now())
		if err != nil {
			h.unavailablePage(w, r, err)
			return
		}
		if held != nil && held.user == s.userID() {
			c := held.view
			d.Created = &c
		} else {
			d.createdGone = id
		}
		if !h.renderSecurity(w, r, s, http.StatusOK, d) && held != nil {
			// Not shown after all (the store failed): keep it for a retry.
			h.held.unshow(r.Context(), s, id, h.opts.Now())
		}
		return
	}
	h.held.forget(r.Context(), s, h.opts.Now())
	h.renderSecurity(w, r, s, http.StatusOK, d)
}

// toSecurityPage answers a GET of a form's URL (a bookmark, or a reload of
// a form's answer in an old browser) with the page itself.
func (h *Handler) toSecurityPage(w http.ResponseWriter, r *http.Request, s *session) {
	h.redirect(w, r, "security")
}

// renderSecurity fills d with the lists and renders the security page. It
// reports whether the page was rendered (not an error page instead).
func (h *Handler) renderSecurity(w http.ResponseWriter, r *http.Request, s *session, status int, d *pageData) bool {
	ctx := r.Context()
	aps, err := h.m.ListAppPasswords(ctx, s.userID())
	if err != nil {
		h.failPage(w, r, err, "")
		return false
	}
	sessions, err := h.m.ListSessions(ctx, s.userID())
	if err != nil {
		h.failPage(w, r, err, "")
		return false
	}
	d.PageTitle = "Devices & sessions"
	d.User = &s.p.User
	d.CSRF = s.csrf
	d.NeedReauth = d.NeedReauth || !h.recent(s)
	if d.NeedReauth {
		d.SSOURL = h.ssoReauthURL(s)
	}
	for _, a := range aps {
		client, detail := clientLabel(a.LastUsedClient)
		d.AppPasswords = append(d.AppPasswords, appPasswordView{
			ID: a.ID, Name: a.Name, Hint: a.Hint,
			Access: describeAccess(a.Scopes), Expiry: describeExpiry(a.ExpiresAt, a.UnusedExpiresAt),
			Created: timeView{a.CreatedAt}, LastUsed: timeView{a.LastUsedAt},
			LastAddr: a.LastUsedAddr, Client: client, ClientDetail: detail,
		})
	}
	// This session first, then the others, newest activity first.
	var current *sessionView
	var others []sessionView
	for _, x := range sessions {
		client, detail := clientLabel(x.LastUsedClient)
		v := sessionView{
			ID: x.ID, Current: x.ID == s.id(), Created: timeView{x.CreatedAt}, LastUsed: timeView{x.LastUsedAt},
			SignIn: timeView{x.AuthenticatedAt}, LastAddr: x.LastUsedAddr, Client: client, ClientDetail: detail,
		}
		if v.Current {
			current = &v
		} else {
			others = append(others, v)
		}
	}
	for i := len(others) - 1; i >= 0; i-- { // the store lists oldest first
		d.Sessions = append(d.Sessions, others[i])
	}
	if current != nil {
		d.Sessions = append([]sessionView{*current}, d.Sessions...)
	}
	d.Others = len(others)
	if d.Access.Presets == nil {
		d.Access = newAccessForm(nil, h.opts.Now())
	}
	if d.createdGone != "" {
		for _, a := range d.AppPasswords {
			if a.ID == d.createdGone {
				d.Notice = "The password of “" + a.Name + "” was shown once and cannot be shown again. If you did not copy it, revoke it and create a new one."
			}
		}
	}
	h.render(w, r, status, "security.html", d)
	return true
}

func (h *Handler) createForm(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PostForm.Get("name")
	d := &pageData{Name: name, Access: newAccessForm(r.PostForm, h.opts.Now())}
	scopes, expiresAt, accessErr := parseAccess(r.PostForm, h.opts.Now())
	if accessErr != nil {
		d.Error = "Could not create the app password: " + inputMessage(accessErr) + "."
		d.Access.Invalid = true
		d.NeedReauth = !h.recent(s)
		h.renderSecurity(w, r, s, http.StatusBadRequest, d)
		return
	}
	if !h.recent(s) && h.ssoReauthURL(s) != "" {
		d.NeedReauth = true
		d.Error = fmt.Sprintf("For your security, confirm it's you with %s to create an app password (you signed in more than %s ago).", h.opts.SSO.Name(), humanDuration(h.opts.RecentAuth))
		h.renderSecurity(w, r, s, http.StatusForbidden, d)
		return
	}
	if !h.recent(s) {
		password := r.PostForm.Get("password")
		if password == "" {
			d.NeedReauth, d.PasswordBad = true, true
			d.Error = fmt.Sprintf("For your security, enter your password again to create an app password (you signed in more than %s ago).", humanDuration(h.opts.RecentAuth))
			h.renderSecurity(w, r, s, http.StatusForbidden, d)
			return
		}
		if err := h.reauthenticate(w, r, s, password); err != nil {
			status, msg := h.passwordError(w, r, err)
			if status == http.StatusUnauthorized {
				msg = "The password is incorrect."
			}
			d.NeedReauth, d.PasswordBad, d.Error = true, true, msg
			h.renderSecurity(w, r, s, status, d)
			return
		}
	}
	a, secret, err := h.m.IssueAppPassword(r.Context(), &s.p.User, auth.IssueRequest{Name: name, Scopes: scopes, ExpiresAt: expiresAt,
		RemoteAddr: h.clientAddr(r), UserAgent: r.UserAgent()})
	if errors.Is(err, auth.ErrInvalidInput) {
		d.Error = "Could not create the app password: " + inputMessage(err) + "."
		d.NameInvalid = true
		h.renderSecurity(w, r, s, http.StatusBadRequest, d)
		return
	}
	if err != nil {
		h.failPage(w, r, err, "")
		return
	}
	// Post-redirect-get: the secret waits for the page view the redirect
	// leads to, so a reload of that view shows the list, not a new password.
	c := createdView{ID: a.ID, Name: a.Name, Login: h.opts.LoginName(&s.p.User), Password: secret, ServerURL: h.opts.ServerURL,
		Access: describeAccess(a.Scopes)}
	if h.opts.PrincipalURL != nil && len(profilePayloads(a.Scopes)) > 0 {
		c.ProfileURL = h.opts.Prefix + "app-passwords/" + a.ID + "/profile"
	}
	if err := h.held.put(r.Context(), s, heldSecret{view: c, scopes: a.Scopes, user: s.userID()}, h.opts.Now()); err != nil {
		// The password exists but its secret cannot be shown: revoke it
		// rather than leave a password nobody has, also when the client
		// has gone away (the Manager bounds the call).
		if rerr := h.m.RevokeAppPassword(context.WithoutCancel(r.Context()), s.userID(), a.ID); rerr != nil {
			h.log.ErrorContext(r.Context(), "revoke an app password whose secret could not be held", "id", a.ID, "err", rerr)
		}
		h.failPage(w, r, err, "")
		return
	}
	h.redirect(w, r, "security?created="+url.QueryEscape(a.ID)+"#created")
}

func humanDuration(d time.Duration) string {
	switch {
	case d%time.Hour == 0 && d >= time.Hour:
		n := int(d / time.Hour)
		if n == 1 {
			return "1 hour"
		}
		return fmt.Sprintf("%d hours", n)
	case d%time.Minute == 0 && d >= time.Minute:
		n := int(d / time.Minute)
		if n == 1 {
			return "1 minute"
		}
		return fmt.Sprintf("%d minutes", n)
	}
	return d.String()
}

func (h *Handler) renameForm(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	if !validID(id) {
		h.failPage(w, r, auth.ErrNotFound, "app password")
		return
	}
	_, err := h.m.RenameAppPassword(r.Context(), s.userID(), id, r.PostForm.Get("name"))
	if errors.Is(err, auth.ErrInvalidInput) {
		h.renderSecurity(w, r, s, http.StatusBadRequest, &pageData{Error: "Could not rename: " + inputMessage(err) + "."})
		return
	}
	if err != nil {
		h.failPage(w, r, err, "app password")
		return
	}
	h.redirect(w, r, "security?done=renamed")
}

func (h *Handler) revokeAppPasswordForm(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	if !validID(id) {
		h.failPage(w, r, auth.ErrNotFound, "app password")
		return
	}
	if err := h.m.RevokeAppPassword(r.Context(), s.userID(), id); err != nil {
		h.failPage(w, r, err, "app password")
		return
	}
	h.redirect(w, r, "security?done=revoked")
}

func (h *Handler) revokeSessionForm(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	if id == s.id() {
		h.signOutForm(w, r, s)
		return
	}
	if !validID(id) {
		h.failPage(w, r, auth.ErrNotFound, "session")
		return
	}
	if err := h.m.RevokeSession(r.Context(), s.userID(), id); err != nil {
		h.failPage(w, r, err, "session")
		return
	}
	h.redirect(w, r, "security?done=session-revoked")
}

func (h *Handler) revokeOtherSessionsForm(w http.ResponseWriter, r *http.Request, s *session) {
	if _, err := h.m.RevokeOtherSessions(r.Context(), s.userID(), s.id()); err != nil {
		h.failPage(w, r, err, "")
		return
	}
	h.redirect(w, r, "security?done=sessions-revoked")
}

// clientLabel names the program behind a User-Agent for people ("Firefox
// on Android", "DAVx⁵"), and returns the full string for a tooltip.
func clientLabel(ua string) (label, detail string) {
	if ua == "" {
		return "Unknown client", ""
	}
	// RADIUS (package auth/radiusrest): the NAS and the station.
	if rest, ok := strings.CutPrefix(ua, "RADIUS"); ok && (rest == "" || rest[0] == ' ') {
		label = "Wi-Fi/VPN" + rest
		if len(label) > 80 {
			label = strings.ToValidUTF8(label[:80], "") + "…"
		}
		return label, ua
	}
	has := func(s string) bool { return strings.Contains(ua, s) }
	var app string
	switch {
	case has("DAVx5") || has("DAVdroid"):
		app = "DAVx⁵"
	case has("dataaccessd") || has("iOS/") && has("accountsd"):
		app = "Apple Calendar/Contacts"
	case has("CalendarAgent") || has("AddressBook"):
		app = "macOS Calendar/Contacts"
	case has("Thunderbird"):
		app = "Thunderbird"
	case has("Evolution"):
		app = "Evolution"
	case has("vdirsyncer"):
		app = "vdirsyncer"
	case has("Edg/"):
		app = "Edge"
	case has("OPR/"):
		app = "Opera"
	case has("Firefox/"):
		app = "Firefox"
	case has("HeadlessChrome/"):
		app = "Chrome (headless)"
	case has("Chrome/") || has("Chromium/"):
		app = "Chrome"
	case has("Safari/") && has("Version/"):
		app = "Safari"
	case has("curl/"):
		app = "curl"
	case has("Go-http-client"):
		app = "Go HTTP client"
	}
	var os string
	switch {
	case has("Android"):
		os = "Android"
	case has("iPhone"):
		os = "iPhone"
	case has("iPad"):
		os = "iPad"
	case has("CrOS"):
		os = "ChromeOS"
	case has("Mac OS X") || has("Macintosh"):
		os = "macOS"
	case has("Windows"):
		os = "Windows"
	case has("Linux"):
		os = "Linux"
	}
	switch {
	case app != "" && os != "":
		return app + " on " + os, ua
	case app != "":
		return app, ua
	}
	label = ua
	if len(label) > 40 {
		label = strings.ToValidUTF8(label[:40], "") + "…"
	}
	return label, ua
}
