package auth

import (
	"context"
	"time"
)

// Kind tells the two kinds of [StoredCredential] apart; in an [Event] it
// may also be [KindAccountPassword].
type Kind string

// Kinds of stored credential.
const (
	KindAppPassword Kind = "app_password"
	KindSession     Kind = "session"
)

// StoredCredential is the stored form of an app password or a browser
// session. It holds a keyed hash of the secret, never the secret. Stores
// persist it as given; the [Manager] fills every field.
type StoredCredential struct {
	ID     string   // unique across all credentials
	Kind   Kind     // app password or session
	UserID string   // owner's stable ID
	Login  string   // owner's login; a presented username must match it
	Name   string   // app passwords: the app name; sessions: the browser
	Scopes []string // empty: unrestricted
	// Hash is HMAC-SHA256(pepper[KeyID], canonical secret); unique across all
	// credentials.
	Hash            []byte
	KeyID           string    // the [Pepper] ID the Hash was made with
	Hint            string    // the secret's last four characters, for display
	CreatedAt       time.Time // when it was issued
	ExpiresAt       time.Time // zero: never
	AuthenticatedAt time.Time // sessions: last account-password entry
	LastUsedAt      time.Time // zero: never
	LastUsedAddr    string    // client address of the last use
	LastUsedClient  string    // User-Agent of the last use
	// Federation is the identity provider's account a session was signed
	// in with (single sign-on); zero for app passwords and password
	// sign-ins. Set at creation, never updated.
	Federation Federation
}

// Federation names the account at an OpenID Connect provider behind a
// browser session: the provider (Issuer), the account there (Subject) and
// the provider's session (SID, may be empty). Back-channel logout names
// sessions by it (see [Manager.RevokeFederatedSessions]).
type Federation struct {
	Issuer  string // the provider's issuer URL ("iss")
	Subject string // the account at the provider ("sub")
	SID     string // the provider's session ("sid"); empty if it sent none
}

// IsZero reports whether f names no provider account.
func (f Federation) IsZero() bool { return f == Federation{} }

// Usage is a coalesced last-used update for one credential.
type Usage struct {
	UserID string    // the credential's owner
	ID     string    // the credential
	At     time.Time // the last use
	Addr   string    // client address of the last use
	Client string    // User-Agent of the last use
}

// Store persists credentials by keyed hash. Users call the [Manager], never the
// Store directly.
//
// Every method that names a credential also names its owner, and a credential
// of another owner is ErrNotFound. Times are returned in UTC. Errors wrap the
// sentinels: ErrNotFound, ErrAlreadyExists (duplicate ID or hash), and
// ErrUnavailable when the backend cannot answer (a dropped connection, a
// timeout). Implementations must be safe for concurrent use; the conformance
// suite in package authtest checks all of this.
type Store interface {
	// CreateCredential inserts c.
	CreateCredential(ctx context.Context, c *StoredCredential) error
	// CredentialByHash returns the credential whose Hash equals hash.
	CredentialByHash(ctx context.Context, hash []byte) (*StoredCredential, error)
	// Credential returns the credential id owned by userID.
	Credential(ctx context.Context, userID, id string) (*StoredCredential, error)
	// ListCredentials returns userID's credentials of one kind, oldest first.
	ListCredentials(ctx context.Context, userID string, kind Kind) ([]*StoredCredential, error)
	// UpdateCredential writes the mutable fields of c (Name, Scopes, ExpiresAt,
	// AuthenticatedAt) to the credential c.ID owned by c.UserID.
	UpdateCredential(ctx context.Context, c *StoredCredential) error
	// DeleteCredential removes the credential id owned by userID.
	DeleteCredential(ctx context.Context, userID, id string) error
	// DeleteCredentials removes all of userID's credentials of one kind except
	// the one with ID except (if not empty) and returns how many it removed.
	DeleteCredentials(ctx context.Context, userID string, kind Kind, except string) (int, error)
	// RecordUsage writes last-used times, addresses and clients in one batch.
	// An update for a credential that no longer exists is ignored; an update
	// never moves LastUsedAt backwards.
	RecordUsage(ctx context.Context, usage []Usage) error
}

// ChangeWatcher is an optional [Store] capability: it reports credentials
// revoked or changed by any process, so that every [Manager] sharing the
// store drops them from its cache at once rather than after
// [Options.CacheTTL]. The PostgreSQL store implements it with LISTEN/NOTIFY.
type ChangeWatcher interface {
	// WatchChanges calls changed with the owner and ID of each credential
	// that is deleted or updated, until ctx is done; then it returns nil.
	// Once it is watching, and whenever notifications may have been lost
	// (a reconnect), it calls changed("", ""): forget everything. It returns an error when it cannot
	// watch at all; an error matching errors.ErrUnsupported means it never
	// will.
	WatchChanges(ctx context.Context, changed func(userID, id string)) error
}

// TransientStore keeps short-lived, single-use records for edges whose
// state must be shared by every server of a deployment: pending Login Flow
// v2 flows (auth/loginflow), pending sign-ins. A record is named by a kind
// (the edge's namespace) and a key that is a keyed hash, never a token; its
// value is opaque bytes that hold no secret in clear. Every method treats a
// record past its expiry as absent, returns [ErrNotFound] (wrapped or not)
// for an absent one, and is safe for concurrent use; the single-use
// guarantees (one Take, one Swap) hold across servers.
type TransientStore interface {
	// PutTransient adds a record; [ErrAlreadyExists] if one with that kind
	// and key is there (expired ones are replaced).
	PutTransient(ctx context.Context, kind string, key, value []byte, expires, now time.Time) error
	// Transient returns the value of the unexpired record.
	Transient(ctx context.Context, kind string, key []byte, now time.Time) ([]byte, error)
	// SwapTransient replaces the unexpired record's value by value only if
	// it is still old: of two swaps from one value, one succeeds, the
	// other gets [ErrNotFound].
	SwapTransient(ctx context.Context, kind string, key, old, value []byte, now time.Time) error
	// TakeTransient removes the unexpired record and returns its value:
	// of two takes, one gets it.
	TakeTransient(ctx context.Context, kind string, key []byte, now time.Time) ([]byte, error)
	// DeleteExpiredTransients removes the records of kind expired at now
	// and returns their values; with an error, those of the records it
	// removed before the failure, as far as it knows them.
	DeleteExpiredTransients(ctx context.Context, kind string, now time.Time) ([][]byte, error)
}

// JobClaimer is an optional [Store] capability for servers that share a
// store: ClaimJob reports whether the caller should run the periodic job
// name now, which is true for one caller only until every has passed since
// the last claim (a claimed job row), so that the hourly purges run once
// for all servers, not once per server. An error means nobody could claim.
type JobClaimer interface {
	ClaimJob(ctx context.Context, name string, now time.Time, every time.Duration) (bool, error)
}

// ExpiredPurger is an optional [Store] capability: deleting credentials whose
// ExpiresAt has passed, so that abandoned browser sessions and expired app
// passwords do not pile up. A [Manager] calls it once an hour.
type ExpiredPurger interface {
	// DeleteExpired removes every credential with a non-zero ExpiresAt at
	// or before now and returns how many it removed.
	DeleteExpired(ctx context.Context, now time.Time) (int, error)
}

// UnusedPurger is an optional [Store] capability: deleting app passwords
// that have gone unused, for [Options].ExpireUnusedAfter. A [Manager] with
// that option calls it once an hour, after writing the queued last-used
// times.
type UnusedPurger interface {
	// DeleteUnused removes every credential of kind whose LastUsedAt (its
	// CreatedAt when it was never used) is at or before cutoff, and returns
	// how many it removed.
	DeleteUnused(ctx context.Context, kind Kind, cutoff time.Time) (int, error)
}

// PepperRegistry is an optional [Store] capability: it remembers, per
// [Pepper] ID, a check value derived from the key, so that a [Manager]
// given another key under the same ID (a lost pepper file replaced by a new
// one) refuses to start rather than silently making every stored credential
// of that ID useless. See [Manager.Check].
type PepperRegistry interface {
	// RegisterPepper records check as keyID's check value unless one is
	// recorded (or replace is set), and returns the value recorded now.
	RegisterPepper(ctx context.Context, keyID string, check []byte, replace bool) ([]byte, error)
	// CredentialsByKey returns how many credentials are stored per KeyID.
	CredentialsByKey(ctx context.Context) (map[string]int, error)
}

// CredentialLister is an optional [Store] capability: listing every user's
// credentials, for administration (which devices has nobody used for a
// year?). The [Manager] never calls it; it is for tools that run beside
// it, such as the example server's command line, which revoke what they
// find through the Manager so that caches and audit events stay right.
type CredentialLister interface {
	// AllCredentials returns every user's credentials of one kind, ordered
	// by UserID, then oldest first (as ListCredentials orders one user's).
	AllCredentials(ctx context.Context, kind Kind) ([]*StoredCredential, error)
}

// FederatedSessionFinder is an optional [Store] capability, needed for
// back-channel logout: finding the browser sessions signed in through one
// identity provider's account or session. See
// [Manager.RevokeFederatedSessions].
type FederatedSessionFinder interface {
	// FederatedSessions returns the sessions (KindSession) whose
	// Federation.Issuer is f.Issuer and, for each of f.Subject and f.SID
	// that is not empty, whose Federation has the same value. f.Issuer and
	// at least one of the two are not empty.
	FederatedSessions(ctx context.Context, f Federation) ([]*StoredCredential, error)
}

// ContextBounded is an optional [Store] capability. A store whose every call
// returns promptly once its context's deadline has passed, whatever its
// server does (its driver interrupts the work, waits for locks included),
// says so, and the [Manager] calls it directly, on the caller's goroutine,
// under [Options.StoreTimeout] (or the caller's deadline if that comes
// first). Such a store may let a call whose context is cancelled earlier
// run on until that deadline. Any other store's calls run on a goroutine
// of their own, so that the Manager can stop waiting at the deadline for a
// driver that ignores its context (lib/pq on its own waits on a hung
// server); that costs a goroutine hand-off per call.
type ContextBounded interface {
	// HonorsContext reports whether every call returns promptly once its
	// context's deadline has passed.
	HonorsContext() bool
}
