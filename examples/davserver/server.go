package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/httpauth"
	"github.com/appauth/appauth/examples/davserver/internal/davstore"
	"github.com/appauth/appauth/internal/safetext"
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
	mux.Handle(davPrefix+"/", authenticate(requireAreaScope(store, limitBodiesIf(store, limits, store))))
	mux.Handle(davPrefix, http.RedirectHandler(davPrefix+"/", http.StatusPermanentRedirect))
	// People are told to enter the server's root in their devices: a
	// PROPFIND there is discovery, like one on the DAV root; GET stays the
	// settings page.
	mux.Handle("PROPFIND /{$}", authenticate(limitBodiesIf(store, limits, http.HandlerFunc(store.ServeDiscovery))))
	mux.Handle("/", settings)
	return mux
}

// recordUser notes the authenticated user for the request log, in the
// log's statusWriter (found through the writers wrapped around it), so
// that the log needs no context value and no copy of the request.
func recordUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sw := findStatusWriter(w); sw != nil {
			if p, ok := httpauth.PrincipalFromContext(r.Context()); ok {
				sw.user = p.User.Login
			}
		}
		next.ServeHTTP(w, r)
	})
}

// findStatusWriter is the request log's writer under w, or nil.
func findStatusWriter(w http.ResponseWriter) *statusWriter {
	for range 8 { // a few wrappers at most; never a loop
		switch t := w.(type) {
		case *statusWriter:
			return t
		case interface{ Unwrap() http.ResponseWriter }:
			w = t.Unwrap()
		default:
			return nil
		}
	}
	return nil
}

// statusWriter records the status and size of a response, and the user
// that recordUser found.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
	user   string
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

// requestLogInterval is how often the request log's coalesced lines are
// written, like the Manager's last-used times.
const requestLogInterval = time.Minute

// maxPendingRequestLines bounds the coalesced lines held between writes;
// past it, a successful request is logged at once, one line each.
const maxPendingRequestLines = 10_000

// maxLoggedUserAgent bounds the User-Agent kept with a coalesced line
// (anonymous requests, status.php and the settings page, are counted too)
// and written in a line; maxLoggedPath bounds a line's path. A client
// sending megabyte headers gets neither megabyte lines nor pending ones.
const (
	maxLoggedUserAgent = 256
	maxLoggedPath      = 1024
)

// requestLog is the example server's request log. A failed request (status
// 400 or more) is one line at Info; successful requests are counted into
// one "requests" line per user, address and client per
// requestLogInterval, with the count, bytes and first request's time
// (a line per request costs more than authenticating it). At Debug,
// every request also has a line of its own. Close writes what is pending.
// Lines hold method, path (never the query string, which may carry
// tokens), status, size, duration, peer address, user agent and user;
// never a header value that could hold a secret.
type requestLog struct {
	logger  *slog.Logger
	mu      sync.Mutex
	pending map[requestKey]*requestCount
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

type requestKey struct{ user, addr, client string }

type requestCount struct {
	n, bytes int64
	since    time.Time
}

// newRequestLog returns a request log writing to logger; its background
// writer runs until Close.
func newRequestLog(logger *slog.Logger) *requestLog {
	l := &requestLog{logger: logger, pending: map[requestKey]*requestCount{}, stop: make(chan struct{}), done: make(chan struct{})}
	go l.loop()
	return l
}

func (l *requestLog) loop() {
	defer close(l.done)
	t := time.NewTicker(requestLogInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			l.flush()
		case <-l.stop:
			l.flush()
			return
		}
	}
}

// Close writes the pending lines and stops the background writer.
func (l *requestLog) Close() {
	l.once.Do(func() { close(l.stop) })
	<-l.done
}

// flush writes and forgets every pending line.
func (l *requestLog) flush() {
	l.mu.Lock()
	pending := l.pending
	l.pending = map[requestKey]*requestCount{}
	l.mu.Unlock()
	for k, c := range pending {
		l.logger.LogAttrs(context.Background(), slog.LevelInfo, "requests",
			slog.String("user", k.user),
			slog.Int64("count", c.n),
			slog.Int64("bytes", c.bytes),
			slog.Time("since", c.since),
			slog.String("remote_addr", k.addr),
			slog.String("user_agent", k.client),
		)
	}
}

// count adds a successful request to its pending line, and reports false
// when there is no room for a new one.
func (l *requestLog) count(k requestKey, bytes int64, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.pending[k]
	if c == nil {
		if len(l.pending) >= maxPendingRequestLines {
			return false
		}
		c = &requestCount{since: now}
		k.client = strings.Clone(k.client) // not the header's memory
		l.pending[k] = c
	}
	c.n++
	c.bytes += bytes
	return true
}

// Wrap returns next with its requests logged.
func (l *requestLog) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		level := slog.LevelInfo
		if sw.status < 400 {
			level = slog.LevelDebug
			if l.logger.Enabled(r.Context(), slog.LevelInfo) &&
				!l.count(requestKey{sw.user, r.RemoteAddr, safetext.Truncate(r.UserAgent(), maxLoggedUserAgent)}, sw.bytes, start) {
				level = slog.LevelInfo // no room to coalesce: a line of its own
			}
		}
		if !l.logger.Enabled(r.Context(), level) {
			return
		}
		l.logger.LogAttrs(r.Context(), level, "request",
			slog.String("method", r.Method),
			slog.String("path", safetext.Truncate(logPath(r.URL.Path), maxLoggedPath)),
			slog.Int("status", sw.status),
			slog.Int64("bytes", sw.bytes),
			slog.Duration("duration", time.Since(start)),
			slog.String("remote_addr", r.RemoteAddr),
			slog.String("user_agent", safetext.Truncate(r.UserAgent(), maxLoggedUserAgent)),
			slog.String("user", sw.user),
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
