package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/httpauth"
	"github.com/appauth/appauth/examples/davserver/internal/davstore"
)

// davPrefix is where the DAV tree is served.
const davPrefix = "/dav"

// userFromContext is davstore's UserFunc: the principal the authentication
// middleware put in the request's context. Its login names the URLs, its
// stable ID the data folder.
func userFromContext(ctx context.Context) (davstore.User, error) {
	p, ok := httpauth.PrincipalFromContext(ctx)
	if !ok {
		return davstore.User{}, errors.New("no authenticated user")
	}
	return davstore.User{Login: p.User.Login, ID: p.User.ID, ReadOnly: slices.Contains(p.Scopes, auth.ScopeReadOnly)}, nil
}

// areaFinder names the part of the DAV tree a URL path is in
// ("calendars", "contacts", "files"): a *davstore.Store, or ownFiles.
type areaFinder interface {
	Area(urlPath string) (area string, ok bool)
}

// areaScopes maps a part of the DAV tree to the scope a credential needs.
var areaScopes = map[string]string{
	"calendars": auth.ScopeCalendars,
	"contacts":  auth.ScopeContacts,
	"files":     auth.ScopeFiles,
}

// requireAreaScope answers 403 when the request's credential lacks the scope
// of the part of the tree it addresses (calendars, contacts or files).
// Discovery (the root and the principal) is open to any credential; a
// request without a principal (an OPTIONS probe, let through by the
// middleware) reaches the store, which answers it with capabilities only.
// Read-only credentials are refused writes by the middleware itself.
func requireAreaScope(store areaFinder, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := httpauth.PrincipalFromContext(r.Context()); ok {
			area, _ := store.Area(r.URL.Path)
			if scope := areaScopes[area]; scope != "" && !p.HasScope(scope) {
				http.Error(w, http.StatusText(http.StatusForbidden), http.StatusForbidden)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// routes is the server's HTTP handler: the DAV tree behind authenticate
// (its request bodies bounded by limits; nil only in benchmarks), the
// well-known redirects, discovery by PROPFIND on "/", and the settings
// pages at "/".
func routes(store *davstore.Store, limits *bodyLimits, authenticate func(http.Handler) http.Handler, settings http.Handler) *http.ServeMux {
	mux := http.NewServeMux()
	// RFC 6764: clients start discovery here. The redirect reveals nothing,
	// so it needs no credentials; the DAV root then names the principal.
	mux.Handle("/.well-known/caldav", http.RedirectHandler(davPrefix+"/", http.StatusPermanentRedirect))
	mux.Handle("/.well-known/carddav", http.RedirectHandler(davPrefix+"/", http.StatusPermanentRedirect))
	limit := func(h http.Handler) http.Handler {
		if limits == nil {
			return h
		}
		return limitBodies(store, *limits, h)
	}
	mux.Handle(davPrefix+"/", authenticate(requireAreaScope(store, limit(store))))
	mux.Handle(davPrefix, http.RedirectHandler(davPrefix+"/", http.StatusPermanentRedirect))
	// People are told to enter the server's root in their devices: a
	// PROPFIND there is discovery, like one on the DAV root; GET stays the
	// settings page.
	mux.Handle("PROPFIND /{$}", authenticate(limit(http.HandlerFunc(store.ServeDiscovery))))
	mux.Handle("/", settings)
	return mux
}

// requestInfo is filled in by inner handlers for the request log line.
type requestInfo struct {
	user string
}

type requestInfoKey struct{}

// recordUser notes the authenticated user for the request log.
func recordUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if info, ok := r.Context().Value(requestInfoKey{}).(*requestInfo); ok {
			if p, ok := httpauth.PrincipalFromContext(r.Context()); ok {
				info.user = p.User.Login
			}
		}
		next.ServeHTTP(w, r)
	})
}

// statusWriter records the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logRequests writes one log line per request: method, path (never the query
// string, which may carry tokens), status, size, duration, peer address,
// user agent and authenticated user. Never a header value that could hold a
// secret.
func logRequests(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := &requestInfo{}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), requestInfoKey{}, info)))
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		logger.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("method", r.Method),
			slog.String("path", logPath(r.URL.Path)),
			slog.Int("status", sw.status),
			slog.Int64("bytes", sw.bytes),
			slog.Duration("duration", time.Since(start)),
			slog.String("remote_addr", r.RemoteAddr),
			slog.String("user_agent", r.UserAgent()),
			slog.String("user", info.user),
		)
	})
}

// logPath is the path as logged: a Login Flow link's token is cut, since
// the log is no place for it.
func logPath(p string) string {
	const flow = "/login/v2/flow/"
	if i := strings.Index(p, flow); i >= 0 {
		return p[:i+len(flow)] + "…"
	}
	return p
}
