package auth

import (
	"context"
	"slices"
	"time"
)

// User is an identity from a [Directory].
type User struct {
	// ID is stable for the life of the account (LDAP entryUUID, AD objectGUID).
	// Credentials are owned by ID, so a deleted account recreated with the same
	// login does not inherit them.
	ID string
	// Login is the name the person signs in with.
	Login string
	// DisplayName is the person's name for display ("Alice Liddell"); may be empty.
	DisplayName string
	// Email is the person's e-mail address; may be empty.
	Email string
	// Groups are the names of the groups the user is in, nested ones
	// included where the directory resolves them.
	Groups []string
	// Disabled means the account may not sign in, and its credentials are
	// refused.
	Disabled bool
}

// Method says how a [Principal] authenticated.
type Method string

// Authentication methods.
const (
	MethodAppPassword     Method = "app_password"
	MethodSession         Method = "session"
	MethodAccountPassword Method = "account_password"
)

// Principal is an authenticated request's identity.
type Principal struct {
	// User is the owner as the directory last described them.
	User User
	// Method is how the request authenticated.
	Method Method
	// CredentialID is the app password's or session's ID; empty for the
	// account password.
	CredentialID string
	// Scopes limit what the credential may do; empty means unrestricted.
	// The slice is shared and must not be modified.
	Scopes []string
	// AuthTime is when the account password was last entered: set for
	// sessions (for "recent sign-in" checks) and the account password. For
	// a session signed in through an identity provider it is when the
	// provider last authenticated the person (the ID token's auth_time).
	AuthTime time.Time
	// Federation is the identity provider's account behind a session
	// signed in through single sign-on; zero otherwise.
	Federation Federation
}

// HasScope reports whether the principal may act within scope: true when the
// credential is unrestricted or lists scope.
func (p *Principal) HasScope(scope string) bool {
	return len(p.Scopes) == 0 || slices.Contains(p.Scopes, scope)
}

// Well-known scopes. An embedding server maps its requests to these (or its own).
const (
	ScopeCalendars = "calendars"
	ScopeContacts  = "contacts"
	ScopeFiles     = "files"
	// ScopeReadOnly marks a credential that may only read.
	ScopeReadOnly = "read-only"
	// ScopeNetwork is network access: Wi-Fi (802.1X) and VPN sign-ins
	// through a RADIUS server (package auth/radiusrest). A credential
	// limited to other scopes cannot open the network; an unrestricted one
	// can.
	ScopeNetwork = "network"
)

// Attempt is what a client presented in one authentication attempt: the
// username and password it sent, and where it came from.
type Attempt struct {
	Username   string // as presented, before any normalization
	Password   string // the app password or account password presented
	RemoteAddr string // the client's address (see package auth/clientaddr)
	UserAgent  string // the client's User-Agent, for the audit log and the device list
}

// AppPassword is an app password as its owner sees it. It never holds the secret.
type AppPassword struct {
	ID     string   // unique; names it in RenameAppPassword and RevokeAppPassword
	UserID string   // the owner's stable ID
	Login  string   // the owner's login
	Name   string   // the app or device name the person gave it ("My iPhone")
	Scopes []string // empty: unrestricted
	// Hint is the last four characters of the secret, to tell passwords apart.
	Hint           string
	CreatedAt      time.Time // when it was issued
	LastUsedAt     time.Time // zero if never used
	LastUsedAddr   string    // client address of the last use
	LastUsedClient string    // User-Agent of the last use
	ExpiresAt      time.Time // zero if it never expires
	// UnusedExpiresAt is when it expires unless it is used before, with
	// [Options].ExpireUnusedAfter; zero without.
	UnusedExpiresAt time.Time
}

// Session is a browser session as its owner sees it.
type Session struct {
	ID              string    // unique; names it in RevokeSession
	UserID          string    // the owner's stable ID
	Login           string    // the owner's login
	CreatedAt       time.Time // when the person signed in
	AuthenticatedAt time.Time // last time the account password was entered
	LastUsedAt      time.Time // last request with this session
	LastUsedAddr    string    // client address of the last use
	LastUsedClient  string    // User-Agent of the last use
	ExpiresAt       time.Time // absolute lifetime
	// Federation is the identity provider's account this session signed
	// in with; zero for a password sign-in.
	Federation Federation
}

// IssueRequest describes a new app password.
type IssueRequest struct {
	Name      string    // required: the app or device ("My iPhone")
	Scopes    []string  // empty: unrestricted; see ScopeCalendars and the others
	ExpiresAt time.Time // zero: never
	// RemoteAddr and UserAgent are the client that asked for it, for the
	// issued [Event] (and so for notifications); they are not stored.
	RemoteAddr string
	UserAgent  string
}

// Authenticator decides whether an attempt grants access. Every non-nil error
// denies access; check it with errors.Is against the sentinels to pick a status.
type Authenticator interface {
	Authenticate(ctx context.Context, a Attempt) (*Principal, error)
}

// Directory looks up identities.
//
// LookupUser returns ErrNotFound for an unknown login and ErrUnavailable (wrapped)
// when the directory cannot answer. A disabled user is returned with Disabled set.
// Implementations must be safe for concurrent use.
type Directory interface {
	LookupUser(ctx context.Context, login string) (*User, error)
}

// PasswordVerifier checks an account (primary) password, for the web sign-in.
//
// VerifyPassword returns ErrInvalidCredentials for an unknown login, a wrong or
// empty password or a disabled user, and ErrUnavailable when it cannot tell.
// Implementations must be safe for concurrent use.
type PasswordVerifier interface {
	VerifyPassword(ctx context.Context, login, password string) (*User, error)
}
