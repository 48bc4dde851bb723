// Package settings serves the web side of appauth: the sign-in page, the
// "Devices & sessions" page (Settings > Security) where people create, see,
// rename and revoke their app passwords and browser sessions, and the same
// operations as a JSON API under {prefix}api/v1/.
//
// A [Handler] is an [http.Handler] mounted at a path prefix:
//
//	h, err := settings.New(manager, directory, &settings.Options{
//		Prefix:    "/account/",
//		Title:     "Example Cloud",
//		ServerURL: "https://dav.example.com/",
//	})
//	mux.Handle("/account/", h)
//	mux.Handle("/dav/", davMiddleware.Wrap(davHandler))
//
// # Pages
//
//	GET  {prefix}                              redirect to the sign-in or security page
//	GET  {prefix}signin, POST {prefix}signin   sign in with the account password
//	POST {prefix}signout                       sign out (ends the session on the server)
//	GET  {prefix}security                      Devices & sessions
//	POST {prefix}app-passwords                 create (asks for the password again when
//	                                           the sign-in is older than RecentAuth), with
//	                                           access=PRESET, expires=never|30d|90d|1y|date
//	                                           and expires-date=YYYY-MM-DD; answers 303 to
//	                                           security?created=ID, which shows the secret once
//	GET  {prefix}app-passwords                 redirect to the security page
//	GET  {prefix}app-passwords/{id}/profile    the Apple configuration profile (PrincipalURL
//	                                           set), only while the new secret is shown
//	POST {prefix}app-passwords/{id}/rename     rename
//	POST {prefix}app-passwords/{id}/revoke     revoke
//	POST {prefix}sessions/{id}/revoke          sign out one session
//	POST {prefix}sessions/revoke-others        sign out every other session
//	GET  {prefix}login/v2/flow/{token}         Login Flow v2 grant page, when
//	POST {prefix}login/v2/flow/{token}         [Options].LoginFlows is set: sign in
//	                                           (again when not recent), then grant
//	                                           with the access choices, or deny;
//	                                           with [Options].SSO, ?sso=signin and
//	                                           ?sso=reauth go through the provider
//	                                           and back to the same grant page
//
// # JSON API
//
// Errors are {"error":"message"}. State changes need the session cookie and
// the X-CSRF-Token header from POST session.
//
//	POST   api/v1/session              {"username","password"} -> 200 {"user","csrfToken"} + cookie;
//	                                   replaces any session the request carries (new cookie
//	                                   and csrfToken); use it to re-authenticate
//	DELETE api/v1/session              sign out -> 204
//	GET    api/v1/app-passwords        -> 200 {"appPasswords":[...]} (never a secret)
//	POST   api/v1/app-passwords        {"name","scopes"?,"expiresAt"?} -> 201
//	                                   {"id","name","loginName","password",...};
//	                                   403 when the sign-in is not recent
//	PATCH  api/v1/app-passwords/{id}   {"name"} -> 200
//	DELETE api/v1/app-passwords/{id}   -> 204; another user's or an unknown id: 404
//	GET    api/v1/sessions             -> 200 {"sessions":[...]}, this one "current"
//	DELETE api/v1/sessions/{id}        -> 204
//
// Bodies must be application/json, at most 64 KiB, one object without
// unknown fields; anything else is 400 (415 for another media type).
//
// # Security
//
// The session cookie is HttpOnly, SameSite=Lax, limited to the prefix, and
// Secure behind TLS (see [Options.Secure]). Every state change is checked
// twice against cross-site request forgery: the browser's Sec-Fetch-Site or
// Origin must be this site ([http.CrossOriginProtection]), and the
// session's CSRF token (a keyed hash of the session secret) must be sent,
// compared in constant time. Every response has Cache-Control: no-store, a
// strict Content-Security-Policy (scripts and styles from files only,
// frame-ancestors 'none'), X-Content-Type-Options: nosniff and
// Referrer-Policy: no-referrer. Password attempts go through
// [auth.Manager.VerifyAccountPassword]: the Manager's Limiter (for example
// a throttle.Throttle of package auth/throttle, given as
// [auth.Options].Limiter) and its audit log; a directory outage is a 503,
// never "wrong password".
package settings
