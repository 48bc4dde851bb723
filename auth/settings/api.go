package settings

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/appauth/appauth/auth"
)

// Request bodies of the JSON API.
type (
	signInRequest struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	createRequest struct {
		Name      string   `json:"name"`
		Scopes    []string `json:"scopes"`
		ExpiresAt string   `json:"expiresAt"` // RFC 3339; empty: never
	}
	renameRequest struct {
		Name string `json:"name"`
	}
)

// Response bodies.
type (
	userJSON struct {
		ID          string `json:"id"`
		Login       string `json:"login"`
		DisplayName string `json:"displayName,omitempty"`
		Email       string `json:"email,omitempty"`
	}
	signInResponse struct {
		User      userJSON `json:"user"`
		CSRFToken string   `json:"csrfToken"`
	}
	appPasswordJSON struct {
		ID             string     `json:"id"`
		Name           string     `json:"name"`
		Scopes         []string   `json:"scopes"`
		Hint           string     `json:"hint"`
		CreatedAt      time.Time  `json:"createdAt"`
		LastUsedAt     *time.Time `json:"lastUsedAt"`
		LastUsedAddr   string     `json:"lastUsedAddr"`
		LastUsedClient string     `json:"lastUsedClient"`
		ExpiresAt      *time.Time `json:"expiresAt"`
		// UnusedExpiresAt is when it expires unless used before
		// (auth.Options.ExpireUnusedAfter); absent without.
		UnusedExpiresAt *time.Time `json:"unusedExpiresAt,omitempty"`
	}
	createResponse struct {
		appPasswordJSON
		LoginName string `json:"loginName"`
		Password  string `json:"password"`
		ServerURL string `json:"serverURL,omitempty"`
	}
	sessionJSON struct {
		ID              string     `json:"id"`
		Current         bool       `json:"current"`
		CreatedAt       time.Time  `json:"createdAt"`
		AuthenticatedAt time.Time  `json:"authenticatedAt"`
		LastUsedAt      *time.Time `json:"lastUsedAt"`
		LastUsedAddr    string     `json:"lastUsedAddr"`
		LastUsedClient  string     `json:"lastUsedClient"`
		ExpiresAt       time.Time  `json:"expiresAt"`
	}
	errorJSON struct {
		Error string `json:"error"`
	}
	// reauthJSON: a session signed in through single sign-on needs a
	// recent sign-in; the browser confirms it at ReauthURL.
	reauthJSON struct {
		Error     string `json:"error"`
		ReauthURL string `json:"reauthURL"`
	}
)

func toUserJSON(u *auth.User) userJSON {
	return userJSON{ID: u.ID, Login: u.Login, DisplayName: u.DisplayName, Email: u.Email}
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func toAppPasswordJSON(a *auth.AppPassword) appPasswordJSON {
	scopes := a.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	return appPasswordJSON{
		ID: a.ID, Name: a.Name, Scopes: scopes, Hint: a.Hint, CreatedAt: a.CreatedAt,
		LastUsedAt: optTime(a.LastUsedAt), LastUsedAddr: a.LastUsedAddr, LastUsedClient: a.LastUsedClient,
		ExpiresAt: optTime(a.ExpiresAt), UnusedExpiresAt: optTime(a.UnusedExpiresAt),
	}
}

func toSessionJSON(s *auth.Session, current string) sessionJSON {
	return sessionJSON{
		ID: s.ID, Current: s.ID == current, CreatedAt: s.CreatedAt, AuthenticatedAt: s.AuthenticatedAt,
		LastUsedAt: optTime(s.LastUsedAt), LastUsedAddr: s.LastUsedAddr, LastUsedClient: s.LastUsedClient,
		ExpiresAt: s.ExpiresAt,
	}
}

// requestError is a refused request: its status and a message for the client.
type requestError struct {
	status int
	msg    string
}

func (e *requestError) Error() string { return e.msg }

func badRequest(format string, args ...any) *requestError {
	return &requestError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

// decodeJSON reads one JSON object of at most maxBodyBytes into dst,
// refusing other media types, unknown fields and trailing data.
func decodeJSON(w http.ResponseWriter, r *http.Request, dst any) *requestError {
	return decodeBody(r.Header.Get("Content-Type"), http.MaxBytesReader(w, r.Body, maxBodyBytes), dst)
}

// decodeBody is decodeJSON without the HTTP plumbing (and the fuzz target's
// subject). body must already be limited to maxBodyBytes.
func decodeBody(contentType string, body io.Reader, dst any) *requestError {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "application/json" {
		return &requestError{http.StatusUnsupportedMediaType, "request body must be JSON (Content-Type: application/json)"}
	}
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return jsonError(err)
		}
		return badRequest("request body must hold exactly one JSON object")
	}
	return nil
}

// jsonError turns a decoding error into a message that says what is wrong.
func jsonError(err error) *requestError {
	var (
		tooBig    *http.MaxBytesError
		syntax    *json.SyntaxError
		typeError *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &tooBig):
		return badRequest("request body is larger than %d KiB", maxBodyBytes>>10)
	case errors.Is(err, io.EOF):
		return badRequest("request body is empty; want a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("request body is truncated JSON")
	case errors.As(err, &syntax):
		return badRequest("request body is malformed JSON at byte %d", syntax.Offset)
	case errors.As(err, &typeError):
		if typeError.Field == "" {
			return badRequest("request body must be a JSON object, not %s", typeError.Value)
		}
		return badRequest("field %q must be %s, not %s", typeError.Field, jsonTypeName(typeError.Type.Kind().String()), typeError.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return badRequest("unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return badRequest("request body is not valid JSON")
}

func jsonTypeName(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "slice":
		return "an array"
	case "struct", "map":
		return "an object"
	case "bool":
		return "a boolean"
	}
	return "a " + kind
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(true)
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":"internal error"}` + "\n")
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorJSON{Error: msg})
}

// Messages of the JSON API.
const (
	msgInvalidCredentials = "invalid username or password"
	msgUnavailable        = "the service is temporarily unavailable; try again in a minute"
	msgThrottled          = "too many attempts; try again later"
	msgRecentAuth         = "recent sign-in required: sign in again (POST api/v1/session with your password) to create an app password"
	msgCSRF               = "missing or wrong X-CSRF-Token header"
	msgRecentSSO          = "recent sign-in required: confirm it's you through single sign-on (open reauthURL in the browser) to create an app password"
)

// writeAuthError answers with the status and message for err, an error
// from the Manager or a password check. what names the object ("app
// password") for a 404.
func (h *Handler) writeAuthError(w http.ResponseWriter, r *http.Request, err error, what string) {
	status, msg := h.classify(r, err, what)
	if status == http.StatusTooManyRequests {
		setRetryAfter(w, err)
	}
	writeError(w, status, msg)
}

// classify maps an error to a status and a message that is safe to show.
func (h *Handler) classify(r *http.Request, err error, what string) (int, string) {
	var re *requestError
	switch {
	case errors.As(err, &re):
		return re.status, re.msg
	case errors.Is(err, errEmptyCredentials):
		return http.StatusBadRequest, "username and password are required"
	case errors.Is(err, auth.ErrInvalidCredentials):
		return http.StatusUnauthorized, msgInvalidCredentials
	case errors.Is(err, auth.ErrThrottled):
		return http.StatusTooManyRequests, msgThrottled
	case errors.Is(err, auth.ErrUnavailable):
		h.log.WarnContext(r.Context(), "unavailable", "path", r.URL.Path, "error", err)
		return http.StatusServiceUnavailable, msgUnavailable
	case errors.Is(err, auth.ErrNotFound):
		return http.StatusNotFound, what + " not found"
	case errors.Is(err, auth.ErrInvalidInput):
		return http.StatusBadRequest, inputMessage(err)
	}
	h.log.ErrorContext(r.Context(), "request failed", "path", r.URL.Path, "error", err)
	return http.StatusInternalServerError, "internal error"
}

// inputMessage returns what an [auth.InputError] says, fit to show.
func inputMessage(err error) string {
	var ie *auth.InputError
	if errors.As(err, &ie) {
		return ie.Message
	}
	return "invalid input"
}

func setRetryAfter(w http.ResponseWriter, err error) {
	secs := 60
	var te *auth.ThrottleError
	if errors.As(err, &te) {
		secs = max(1, int((te.RetryAfter+time.Second-1)/time.Second))
	}
	w.Header().Set("Retry-After", strconv.Itoa(secs))
}

// api wraps a handler that needs a signed-in person: 401 without a valid
// session, and on state changes 403 without the session's X-CSRF-Token.
func (h *Handler) api(fn func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, err := h.currentSession(r)
		if errors.Is(err, errNoSession) {
			if _, cerr := r.Cookie(h.opts.CookieName); cerr == nil {
				h.clearCookie(w, r)
			}
			writeError(w, http.StatusUnauthorized, "not signed in")
			return
		}
		if err != nil {
			h.writeAuthError(w, r, err, "")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead && !s.validCSRF(r.Header.Get("X-CSRF-Token")) {
			writeError(w, http.StatusForbidden, msgCSRF)
			return
		}
		fn(w, r, s)
	}
}

// apiRoute answers a known API path with a method it does not support.
func apiMethodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed here; use %s", r.Method, allow))
	}
}

func (h *Handler) apiNotFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, "no such API endpoint")
}

// validID reports whether id could name a credential; others are 404 unread.
func validID(id string) bool { return id != "" && len(id) <= 64 }

func (h *Handler) apiSignIn(w http.ResponseWriter, r *http.Request) {
	var req signInRequest
	if e := decodeJSON(w, r, &req); e != nil {
		writeError(w, e.status, e.msg)
		return
	}
	u, s, err := h.signIn(w, r, req.Username, req.Password)
	if err != nil {
		h.writeAuthError(w, r, err, "")
		return
	}
	writeJSON(w, http.StatusOK, signInResponse{User: toUserJSON(u), CSRFToken: s.csrf})
}

func (h *Handler) apiSignOut(w http.ResponseWriter, r *http.Request, s *session) {
	if err := h.signOut(r.Context(), w, r, s); err != nil {
		h.writeAuthError(w, r, err, "session")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) apiListAppPasswords(w http.ResponseWriter, r *http.Request, s *session) {
	list, err := h.m.ListAppPasswords(r.Context(), s.userID())
	if err != nil {
		h.writeAuthError(w, r, err, "")
		return
	}
	out := make([]appPasswordJSON, len(list))
	for i, a := range list {
		out[i] = toAppPasswordJSON(a)
	}
	writeJSON(w, http.StatusOK, map[string]any{"appPasswords": out})
}

func (h *Handler) apiCreateAppPassword(w http.ResponseWriter, r *http.Request, s *session) {
	var req createRequest
	if e := decodeJSON(w, r, &req); e != nil {
		writeError(w, e.status, e.msg)
		return
	}
	ir := auth.IssueRequest{Name: req.Name, Scopes: req.Scopes, RemoteAddr: h.clientAddr(r), UserAgent: r.UserAgent()}
	if req.ExpiresAt != "" {
		t, err := time.Parse(time.RFC3339, req.ExpiresAt)
		if err != nil {
			writeError(w, http.StatusBadRequest, `field "expiresAt" must be an RFC 3339 time such as "2030-01-02T15:04:05Z"`)
			return
		}
		ir.ExpiresAt = t
	}
	if !h.recent(s) {
		if u := h.ssoReauthURL(s); u != "" {
			writeJSON(w, http.StatusForbidden, reauthJSON{Error: msgRecentSSO, ReauthURL: u})
			return
		}
		writeError(w, http.StatusForbidden, msgRecentAuth)
		return
	}
	a, secret, err := h.m.IssueAppPassword(r.Context(), &s.p.User, ir)
	if err != nil {
		h.writeAuthError(w, r, err, "")
		return
	}
	w.Header().Set("Location", h.opts.Prefix+"api/v1/app-passwords/"+a.ID)
	writeJSON(w, http.StatusCreated, createResponse{
		appPasswordJSON: toAppPasswordJSON(a), LoginName: h.opts.LoginName(&s.p.User),
		Password: secret, ServerURL: h.opts.ServerURL,
	})
}

func (h *Handler) apiRenameAppPassword(w http.ResponseWriter, r *http.Request, s *session) {
	var req renameRequest
	if e := decodeJSON(w, r, &req); e != nil {
		writeError(w, e.status, e.msg)
		return
	}
	id := r.PathValue("id")
	if !validID(id) {
		writeError(w, http.StatusNotFound, "app password not found")
		return
	}
	a, err := h.m.RenameAppPassword(r.Context(), s.userID(), id, req.Name)
	if err != nil {
		h.writeAuthError(w, r, err, "app password")
		return
	}
	writeJSON(w, http.StatusOK, toAppPasswordJSON(a))
}

func (h *Handler) apiRevokeAppPassword(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	if !validID(id) {
		writeError(w, http.StatusNotFound, "app password not found")
		return
	}
	if err := h.m.RevokeAppPassword(r.Context(), s.userID(), id); err != nil {
		h.writeAuthError(w, r, err, "app password")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) apiListSessions(w http.ResponseWriter, r *http.Request, s *session) {
	list, err := h.m.ListSessions(r.Context(), s.userID())
	if err != nil {
		h.writeAuthError(w, r, err, "")
		return
	}
	out := make([]sessionJSON, len(list))
	for i, x := range list {
		out[i] = toSessionJSON(x, s.id())
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out})
}

func (h *Handler) apiRevokeSession(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	if !validID(id) {
		writeError(w, http.StatusNotFound, "session not found")
		return
	}
	if id == s.id() {
		h.apiSignOut(w, r, s)
		return
	}
	if err := h.m.RevokeSession(r.Context(), s.userID(), id); err != nil {
		h.writeAuthError(w, r, err, "session")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
