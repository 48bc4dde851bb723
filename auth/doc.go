// Package auth is the core of appauth: app passwords and browser sessions for
// WebDAV, CalDAV and CardDAV servers (or any HTTP service that speaks Basic
// auth), so that devices never hold the account password.
//
// A person signs in on the web with their directory password, creates one
// app password per device ("My iPhone"), sees when each was last used, and
// revokes any one of them without touching the others. DAV clients then
// authenticate with the app password; the account password stays off phones.
//
// # Parts
//
//   - [Manager] issues, verifies, lists, renames and revokes credentials. It
//     implements [Authenticator], which HTTP middleware calls per request.
//   - [Store] persists credentials by keyed hash only (backends/sqlstore for
//     PostgreSQL and SQLite, backends/memory for tests).
//   - [Directory] says who a login is and whether they are still enabled
//     (backends/ldap, backends/htpasswd, backends/memory);
//     [PasswordVerifier] checks the account password for the web sign-in,
//     always through [Manager.VerifyAccountPassword] (the Limiter, a bound
//     on concurrent checks, the audit events).
//   - [CanonicalLogin] is the one spelling of a login that the Manager, the
//     throttle and every directory compare.
//
// # Quick start
//
//	store := memory.NewStore()           // or sqlstore.OpenSQLite / OpenPostgres
//	dir := memory.NewDirectory()         // or an LDAP or htpasswd directory
//	m, err := auth.NewManager(store, dir, &auth.Options{
//		Peppers: []auth.Pepper{{ID: "2026-11", Key: key}}, // 32+ random bytes, kept outside the database
//	})
//	defer m.Close()
//	err = m.Check(ctx) // at start: refuses a pepper that is not the stored credentials' key
//	ap, secret, err := m.IssueAppPassword(ctx, user, auth.IssueRequest{Name: "My iPhone"})
//	// show secret once; then, on every request:
//	p, err := m.Authenticate(ctx, auth.Attempt{Username: "alice", Password: secret})
//
// # Security model
//
// Secrets have 153 random bits, a recognisable "aap-" prefix and a checksum
// that rejects typos before any lookup. Only HMAC-SHA256(pepper, secret) is
// stored, so one indexed lookup verifies a secret and a stolen database
// reveals nothing. Unknown user, wrong password, revoked, expired and
// disabled owner all return the same [ErrInvalidCredentials]; an outage is
// [ErrUnavailable] (HTTP 503), never a 401 and never a reason to revoke.
// Revocation takes effect on this Manager before it returns. Failed app
// passwords never reach the directory, so an old phone cannot lock the
// account. Every store call runs under [Options.StoreTimeout], and the
// Manager stops waiting at that deadline even when the store's driver does
// not; while the directory is down, owners are served from the last good
// answer for [Options.OwnerGracePeriod] without waiting on it. A store that
// implements [PepperRegistry] lets [Manager.Check] refuse a pepper that is
// not the key of the stored credentials.
//
// # Speed
//
// Verified credentials and directory answers are cached (bounded, with
// short TTLs); last-used times are written in the background, at most once
// per credential per [Options.LastUsedInterval], and successful uses are
// audited the same way: one "auth used" line per credential, address and
// client per interval, with a count (every refusal is a line of its own).
// A cached verify costs about one HMAC, takes no lock shared with verifies
// of other credentials, and allocates only the returned [Principal].
//
// # Architecture
//
// The layers (this core, the edges auth/httpauth and auth/settings, the
// backends), the verify path step by step, the key decisions and what each
// package may import are described in [docs/architecture.md]; the security
// promises and the tests that keep them in [SECURITY.md].
//
// [docs/architecture.md]: https://github.com/appauth/appauth/blob/main/docs/architecture.md
// [SECURITY.md]: https://github.com/appauth/appauth/blob/main/SECURITY.md
package auth
