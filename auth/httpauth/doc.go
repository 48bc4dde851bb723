// Package httpauth is the HTTP side of appauth: middleware that
// authenticates WebDAV, CalDAV and CardDAV requests (or any HTTP request)
// with app passwords sent as HTTP Basic ("Authorization: Basic", RFC 7617,
// UTF-8) or as a bearer token ("Authorization: Bearer <app password>"),
// with brute-force throttling and scopes.
//
// Wrap a handler with [Middleware.Wrap]; the handler finds the
// [auth.Principal] with [PrincipalFromContext], or the principal's path for
// go-webdav's CurrentUserPrincipal with [UserPrincipalPath]. Credentials
// that do not verify get 401 with a Basic challenge, throttled clients 429
// with Retry-After, and an outage of the store or directory 503 with
// Retry-After, never 401, so that clients do not drop a good password.
//
// The account password is refused by default: devices use app passwords.
// [Options].AccountPasswords allows it during a migration, through the same
// [auth.Limiter] as app passwords (package auth/throttle has one): give the
// same one to the Manager and the middleware.
//
// [RequireScope] limits a handler to credentials with a scope (403
// otherwise); credentials limited to [auth.ScopeReadOnly] may only make
// read requests ([IsReadRequest]), whatever the handler.
//
// # Quick start
//
//	limiter, _ := throttle.New(nil)
//	m, _ := auth.NewManager(store, directory, &auth.Options{Peppers: peppers, Limiter: limiter})
//	mw, _ := httpauth.New(m, &httpauth.Options{Realm: "Calendars", Limiter: limiter})
//	mux.Handle("/dav/", mw.Wrap(davHandler))
//
// Behind a reverse proxy, set [Options].ClientAddr (package auth/clientaddr),
// the same one as the settings page's, so that throttling sees the client's
// address rather than the proxy's.
package httpauth
