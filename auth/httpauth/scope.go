package httpauth

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/appauth/appauth/auth"
)

type principalKey struct{}

// ContextWithPrincipal returns a copy of ctx carrying p, as [Middleware.Wrap]
// does; for other authentication paths (a browser session) and for tests.
func ContextWithPrincipal(ctx context.Context, p *auth.Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFromContext returns the principal [Middleware.Wrap] put in the
// request's context, and false when there is none (an unauthenticated
// OPTIONS request, or a handler not behind the middleware).
func PrincipalFromContext(ctx context.Context) (*auth.Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*auth.Principal)
	return p, ok && p != nil
}

// UserPrincipalPath returns the path of the authenticated user's principal
// under prefix: prefix, a slash if missing, the path-escaped login and a
// slash ("/dav/principals/" and alice give "/dav/principals/alice/"). It
// fits go-webdav's Backend.CurrentUserPrincipal:
//
//	func (b *backend) CurrentUserPrincipal(ctx context.Context) (string, error) {
//		return httpauth.UserPrincipalPath(ctx, "/dav/principals/")
//	}
//
// With no principal in ctx it returns an error matching
// [auth.ErrInvalidCredentials].
func UserPrincipalPath(ctx context.Context, prefix string) (string, error) {
	p, ok := PrincipalFromContext(ctx)
	if !ok {
		return "", fmt.Errorf("httpauth: no authenticated principal in the request context: %w", auth.ErrInvalidCredentials)
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return prefix + url.PathEscape(p.User.Login) + "/", nil
}

// RequireScope returns middleware, to place inside [Middleware.Wrap], that
// answers 403 unless the request's principal may act within scope
// ([auth.Principal.HasScope]: an unrestricted credential may). A request
// without a principal also gets 403: it fails closed.
//
//	mux.Handle("/dav/calendars/", mw.Wrap(httpauth.RequireScope(auth.ScopeCalendars)(caldavHandler)))
func RequireScope(scope string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if p, ok := PrincipalFromContext(r.Context()); !ok || !p.HasScope(scope) {
				writeStatus(w, http.StatusForbidden)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// IsReadRequest reports whether r only reads: GET, HEAD, OPTIONS, PROPFIND
// or REPORT. [Middleware.Wrap] refuses any other method (403) to a
// credential limited to [auth.ScopeReadOnly].
func IsReadRequest(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, "PROPFIND", "REPORT":
		return true
	}
	return false
}
