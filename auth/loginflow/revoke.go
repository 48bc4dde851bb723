package loginflow

import (
	"context"
	"errors"
	"net/http"

	"github.com/appauth/appauth/auth"
)

// RevokeHandler serves DELETE /ocs/v2.php/core/apppassword, with which a
// Nextcloud client removes its own app password (on "log out" or "remove
// account"). Mount it behind the authentication middleware; principal
// reads what the middleware found (httpauth.PrincipalFromContext). Only
// the app password the request authenticated with is revoked; a request
// made any other way gets 403.
func RevokeHandler(m *auth.Manager, principal func(context.Context) (*auth.Principal, bool)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if r.Method != http.MethodDelete {
			w.Header().Set("Allow", http.MethodDelete)
			ocs(w, http.StatusMethodNotAllowed, "method not allowed")
			return
		}
		p, ok := principal(r.Context())
		if !ok || p.Method != auth.MethodAppPassword || p.CredentialID == "" {
			ocs(w, http.StatusForbidden, "only an app password can remove itself")
			return
		}
		err := m.RevokeAppPassword(r.Context(), p.User.ID, p.CredentialID)
		switch {
		case err == nil, errors.Is(err, auth.ErrNotFound):
			ocs(w, http.StatusOK, "OK")
		case errors.Is(err, auth.ErrUnavailable):
			w.Header().Set("Retry-After", "10")
			ocs(w, http.StatusServiceUnavailable, "try again later")
		default:
			ocs(w, http.StatusInternalServerError, "internal error")
		}
	})
}

// ocs writes an OCS v2 JSON envelope (the status is also the HTTP one).
func ocs(w http.ResponseWriter, status int, msg string) {
	st := "ok"
	if status != http.StatusOK {
		st = "failure"
	}
	writeJSON(w, status, map[string]any{"ocs": map[string]any{
		"meta": map[string]any{"status": st, "statuscode": status, "message": msg},
		"data": []any{},
	}})
}
