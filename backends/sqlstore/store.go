// Package sqlstore implements [auth.Store] on PostgreSQL (github.com/lib/pq)
// and SQLite (modernc.org/sqlite, pure Go) through github.com/jmoiron/sqlx.
//
// Open a store with [OpenPostgres] or [OpenSQLite], or wrap a *sqlx.DB you
// already have with [New]. Each applies the embedded, versioned schema
// migrations in one transaction before it returns, so several processes may
// open the same database at once. The schema is described in the package's
// README.md.
//
// The Open functions size their connection pool deliberately (as many
// idle connections as open ones, a lifetime and an idle time; see
// [ConfigurePool] and the pool fields of [Options]), so a burst of cache
// misses reuses connections instead of opening new ones.
//
// Driver errors are translated at this boundary: a missing row is
// [auth.ErrNotFound], a duplicate ID or hash [auth.ErrAlreadyExists], and a
// dropped connection, a timeout or a locked database [auth.ErrUnavailable].
package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/internal/stopwait"
)

// DefaultTablePrefix is the table-name prefix used when [Options.TablePrefix]
// is empty.
const DefaultTablePrefix = "appauth_"

// Options configures a [Store]. The zero value (or a nil *Options) means
// defaults.
type Options struct {
	// TablePrefix is prepended to the name of every table and index the
	// store creates ("credentials", "schema_migrations"). It must match
	// [a-z_][a-z0-9_]* and be at most 32 characters. Empty means
	// [DefaultTablePrefix].
	TablePrefix string
	// Logger receives schema migration and warning messages. It never
	// receives a secret, a hash or a DSN. Nil discards them.
	Logger *slog.Logger
	// ListenDSN is the PostgreSQL DSN that [Store.WatchChanges] connects
	// to. [OpenPostgres] sets it from its own DSN; set it for a Store made
	// with [New] so that revocations reach every server at once. Unless it
	// sets connect_timeout, connecting gives up after
	// [DefaultConnectTimeout].
	ListenDSN string

	// MaxOpenConns bounds the connections of a pool the Store opens
	// ([OpenPostgres], [OpenSQLite]); as many are kept idle, so a burst of
	// cache misses reuses them instead of opening new ones. Zero means
	// [DefaultMaxOpenConns]; negative is an error. See [ConfigurePool].
	MaxOpenConns int
	// ConnMaxLifetime is how long a pooled connection is used before it is
	// replaced, so connections move to a database that failed over or was
	// scaled out. Zero means [DefaultConnMaxLifetime]; negative is an error.
	ConnMaxLifetime time.Duration
	// ConnMaxIdleTime is how long a connection may sit idle before it is
	// closed: how the pool shrinks again after a burst. Zero means
	// [DefaultConnMaxIdleTime]; negative is an error.
	ConnMaxIdleTime time.Duration

	// MaxConcurrentLookups bounds the credential lookups by hash (every
	// cache miss of the Manager) that run at once. A lookup that finds
	// them all busy waits for the next to finish, and everything waiting
	// by then is looked up by one query of up to 64 hashes: under load,
	// concurrent misses share round trips, while a lookup that finds a
	// free slot is sent at once, so a lone request never waits. 1 shares
	// the most; negative is an error. Zero means
	// [DefaultMaxConcurrentLookups] on PostgreSQL and no bound on SQLite,
	// whose queries need no round trip and run in this process, on as many
	// cores as there are lookups: there, sharing made verifies slower. It
	// applies to a Store made with [New] too. Unless it is set, the lookups
	// of a Store from [OpenSQLite] have a pool of their own, of
	// MaxOpenConns connections: they never wait for one behind writers.
	MaxConcurrentLookups int
}

var prefixRE = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// maxPrefixLen keeps the longest derived name
// (PREFIX + "credentials_user_kind_created_idx") under PostgreSQL's 63-byte
// identifier limit.
const maxPrefixLen = 32

// Store is an [auth.Store] on PostgreSQL or SQLite. It is safe for
// concurrent use. Create it with [OpenPostgres], [OpenSQLite] or [New].
type Store struct {
	db      *sqlx.DB
	ownDB   bool // Close closes db
	dialect *dialect
	prefix  string
	q       queries
	byHash  *sqlx.Stmt // the hot path, prepared once
	// sqliteLookups, when not nil, runs byHash instead (OpenSQLite).
	sqliteLookups *sqliteLookups
	// byHashes[i] looks up batchSizes[i] hashes (see coalescer).
	byHashes   []*sqlx.Stmt
	batchSizes []int
	lookups    coalescer
	// usageBatch is maxUsageBatch; tests make it smaller.
	usageBatch int
	logger     *slog.Logger
	// listenDSN is where WatchChanges connects; empty: it cannot.
	listenDSN string
	// listenPing is listenPingEvery; tests make it smaller.
	listenPing time.Duration
	// honorsContext: every call returns once its context's deadline has
	// passed (see HonorsContext).
	honorsContext bool
	// abandoned counts calls still running after their caller stopped
	// waiting (see waitBounded).
	abandoned stopwait.Abandoned

	closeOnce sync.Once
	closeErr  error
}

var (
	_ auth.Store                  = (*Store)(nil)
	_ auth.ExpiredPurger          = (*Store)(nil)
	_ auth.UnusedPurger           = (*Store)(nil)
	_ auth.ContextBounded         = (*Store)(nil)
	_ auth.CredentialLister       = (*Store)(nil)
	_ auth.FederatedSessionFinder = (*Store)(nil)
)

// OpenPostgres connects to the PostgreSQL database named by dsn (a lib/pq
// URL or key=value string), applies the schema migrations and returns the
// Store, which owns the connection pool. Errors never contain the DSN's
// password. The pool is sized by [Options.MaxOpenConns] and its neighbours
// (see [ConfigurePool]).
//
// Every call on the pool ends at its context's deadline, also on a hung
// server: the deadline is put on the connection's socket (a statement
// still running then is abandoned with its connection, not cancelled).
// Unless dsn sets connect_timeout, connecting gives up after
// [DefaultConnectTimeout], or at the deadline of the call that needs the
// connection if that comes first.
func OpenPostgres(ctx context.Context, dsn string, opts *Options) (*Store, error) {
	dsn = withConnectTimeout(dsn)
	o := Options{}
	if opts != nil {
		o = *opts
	}
	conn, err := newPGConnector(dsn)
	if err != nil {
		return nil, redactDSN(fmt.Errorf("sqlstore: open postgres: %w", err), dsn)
	}
	db := sqlx.NewDb(sql.OpenDB(conn), "postgres")
	if err := ConfigurePool(db.DB, &o); err != nil {
		db.Close()
		return nil, err
	}
	if o.ListenDSN == "" {
		o.ListenDSN = dsn
	}
	s, err := newStore(ctx, db, true, &o)
	if err != nil {
		db.Close()
		return nil, redactDSN(err, dsn)
	}
	s.honorsContext = true // its connections end each call at its deadline (pgconn.go)
	return s, nil
}

// OpenSQLite opens (creating it if needed) the SQLite database in the file
// at path, applies the schema migrations and returns the Store, which owns
// the connection pool. path must be a file name, not ":memory:" or a
// "file:" URI: every pooled connection must see the same database.
//
// A new database file, and with it its -wal and -shm files, is created
// mode 0600. Every connection is in WAL journal mode (one that cannot be
// fails) with synchronous=FULL (a committed revocation survives a power
// loss) and foreign keys on.
func OpenSQLite(ctx context.Context, path string, opts *Options) (*Store, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("sqlstore: open sqlite: %q is not a plain file path", path)
	}
	// Concurrency: WAL lets any number of readers run beside the one writer,
	// so the pool holds several connections and CredentialByHash never
	// queues behind a write (SetMaxOpenConns(1) would serialize reads too);
	// its bound (ConfigurePool) costs no write throughput, since writers
	// take turns on one lock anyway, and bounds the memory of the
	// connections' page caches. A writer waiting for the lock holds its
	// connection, but the lock holder already has its own. Writers take
	// turns on the database's write lock:
	//   - _busy_timeout makes a writer wait for the lock (up to 10 s, far
	//     longer than any of our transactions) instead of failing at once;
	//   - _txlock=immediate makes every read-write transaction take the
	//     write lock at BEGIN. A deferred transaction that reads and then
	//     writes must upgrade its lock, and SQLite answers a contended
	//     upgrade with SQLITE_BUSY immediately, without waiting, to avoid a
	//     deadlock; immediate transactions never upgrade. Single statements
	//     outside a transaction wait under busy_timeout by themselves.
	// Create the file 0600 before SQLite does (0644 under the usual
	// umask): SQLite gives the -wal and -shm files the database's mode.
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		f.Close()
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("sqlstore: open sqlite: %w", err)
	}
	// The pragmas that read the file run under a context (sqliteConnector).
	connector, err := newSQLiteConnector(path + "?_busy_timeout=10000&_foreign_keys=1&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open sqlite: %w", err)
	}
	db := sqlx.NewDb(sql.OpenDB(connector), "sqlite")
	if err := ConfigurePool(db.DB, opts); err != nil {
		db.Close()
		return nil, err
	}
	s, err := newStore(ctx, db, true, opts)
	if err != nil {
		db.Close()
		return nil, err
	}
	if s.lookups.slots == math.MaxInt { // not coalesced: see sqliteLookups
		if s.sqliteLookups, err = openSQLiteLookups(ctx, path, opts, s.q.byHash); err != nil {
			s.Close()
			return nil, fmt.Errorf("sqlstore: open sqlite: %w", err)
		}
	}
	return s, nil
}

// New returns a Store on db, whose DriverName must be "postgres"
// (github.com/lib/pq) or "sqlite" (modernc.org/sqlite), after applying the
// schema migrations. The caller keeps ownership of db: [Store.Close] does
// not close it. A SQLite db should be opened like [OpenSQLite] does (a file;
// journal_mode=WAL, synchronous=FULL, foreign_keys=1, _busy_timeout and
// _txlock=immediate). The pool is the caller's:
// size it with [ConfigurePool]; New refuses the pool fields of Options
// rather than ignore them.
func New(ctx context.Context, db *sqlx.DB, opts *Options) (*Store, error) {
	if db == nil {
		return nil, errors.New("sqlstore: New: nil *sqlx.DB")
	}
	if opts != nil && (opts.MaxOpenConns != 0 || opts.ConnMaxLifetime != 0 || opts.ConnMaxIdleTime != 0) {
		return nil, errors.New("sqlstore: New: MaxOpenConns, ConnMaxLifetime and ConnMaxIdleTime size a pool the Store opens; size yours with ConfigurePool")
	}
	return newStore(ctx, db, false, opts)
}

func newStore(ctx context.Context, db *sqlx.DB, own bool, opts *Options) (*Store, error) {
	if opts == nil {
		opts = &Options{}
	}
	prefix := opts.TablePrefix
	if prefix == "" {
		prefix = DefaultTablePrefix
	}
	if len(prefix) > maxPrefixLen || !prefixRE.MatchString(prefix) {
		return nil, fmt.Errorf("sqlstore: invalid TablePrefix %q: want [a-z_][a-z0-9_]*, at most %d characters", prefix, maxPrefixLen)
	}
	d, err := dialectFor(db.DriverName())
	if err != nil {
		return nil, err
	}
	if opts.MaxConcurrentLookups < 0 {
		return nil, errors.New("sqlstore: MaxConcurrentLookups must not be negative (zero means the default)")
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{
		db:         db,
		ownDB:      own,
		dialect:    d,
		prefix:     prefix,
		q:          d.queries(prefix + "credentials"),
		logger:     logger.With("backend", "sqlstore", "dialect", d.name, "table_prefix", prefix),
		usageBatch: maxUsageBatch,
		listenPing: listenPingEvery,
		// The driver interrupts a statement, and a wait for the write
		// lock, once its context is done.
		honorsContext: d == sqliteDialect,
	}
	if opts.ListenDSN != "" {
		// The listener's handshake is bounded like the pool's connects.
		s.listenDSN = withConnectTimeout(opts.ListenDSN)
	}
	if err := s.migrate(ctx); err != nil {
		return nil, err
	}
	if s.byHash, err = db.PreparexContext(ctx, s.q.byHash); err != nil {
		return nil, translate("prepare credential by hash", err)
	}
	s.batchSizes = d.batchSizes()
	for _, n := range s.batchSizes {
		st, err := db.PreparexContext(ctx, d.byHashes(prefix+"credentials", n))
		if err != nil {
			s.closeStatements()
			return nil, translate("prepare credentials by hash", err)
		}
		s.byHashes = append(s.byHashes, st)
	}
	slots := opts.MaxConcurrentLookups
	if slots == 0 {
		slots = math.MaxInt
		if d == postgresDialect {
			slots = DefaultMaxConcurrentLookups
		}
	}
	s.lookups = coalescer{one: s.queryOne, many: s.queryMany, slots: slots}
	return s, nil
}

// HonorsContext implements [auth.ContextBounded]: true on SQLite, whose
// driver interrupts a statement, and a wait for a lock, once its context
// is done (a credential lookup of a Store from [OpenSQLite] waits under its
// context for a connection of its own, and for a lock its query cannot
// take: see sqliteLookups), and on a PostgreSQL pool opened by [OpenPostgres],
// whose connections end a call at its context's deadline even on a hung
// server (a context cancelled earlier ends it at that deadline). False on
// a PostgreSQL *sqlx.DB given to [New]: lib/pq itself waits for its cancel
// request, which a hung server never answers.
func (s *Store) HonorsContext() bool { return s.honorsContext }

// maxAbandoned bounds the calls of a Store that does not honor its context
// still running after their caller stopped waiting (see waitBounded).
const maxAbandoned = 256

// waitBounded runs f under ctx. On a Store that does not honor its
// context (a PostgreSQL pool given to New: lib/pq waits for a hung server
// whatever the context says), f runs on a goroutine of its own and the
// caller stops waiting once ctx is done, as a call on a pool from
// OpenPostgres ends at its deadline; past maxAbandoned such calls still
// running, a call fails at once. For the calls made by edges and the
// Limiter, which the Manager does not bound.
func waitBounded[T any](s *Store, ctx context.Context, f func(context.Context) (T, error)) (T, error) {
	if s.honorsContext {
		return f(ctx)
	}
	var zero T
	if n := s.abandoned.Running(); n >= maxAbandoned {
		return zero, fmt.Errorf("%w: %d earlier calls have not returned", auth.ErrUnavailable, n)
	}
	v, err, done := stopwait.Do(ctx, &s.abandoned, f)
	if !done {
		return zero, ctx.Err()
	}
	return v, err
}

// rebind turns ? placeholders into the dialect's.
func (s *Store) rebind(q string) string { return sqlx.Rebind(s.dialect.bindType, q) }

// Close releases the prepared statements and, if the Store opened the
// database itself ([OpenPostgres], [OpenSQLite]), closes it. A Store made
// by [New] leaves its *sqlx.DB open. Further calls return the same result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		err := s.closeStatements()
		if s.sqliteLookups != nil {
			err = errors.Join(err, s.sqliteLookups.close())
		}
		if s.ownDB {
			err = errors.Join(err, s.db.Close())
		}
		if err != nil {
			s.closeErr = fmt.Errorf("sqlstore: close: %w", err)
		}
	})
	return s.closeErr
}

// closeStatements closes the prepared statements.
func (s *Store) closeStatements() error {
	var err error
	if s.byHash != nil {
		err = s.byHash.Close()
	}
	for _, st := range s.byHashes {
		err = errors.Join(err, st.Close())
	}
	return err
}

// row is a credentials row as scanned.
type row struct {
	ID              string `db:"id"`
	Kind            string `db:"kind"`
	UserID          string `db:"user_id"`
	Login           string `db:"login"`
	Name            string `db:"name"`
	Scopes          string `db:"scopes"`
	Hash            []byte `db:"hash"`
	KeyID           string `db:"key_id"`
	Hint            string `db:"hint"`
	CreatedAt       dbTime `db:"created_at"`
	ExpiresAt       dbTime `db:"expires_at"`
	AuthenticatedAt dbTime `db:"authenticated_at"`
	LastUsedAt      dbTime `db:"last_used_at"`
	LastUsedAddr    string `db:"last_used_addr"`
	LastUsedClient  string `db:"last_used_client"`
	FedIssuer       string `db:"fed_issuer"`
	FedSubject      string `db:"fed_subject"`
	FedSID          string `db:"fed_sid"`
}

// dest returns pointers to r's fields in the order of credentialColumns, for
// a plain Scan: the verify path avoids sqlx's reflection.
func (r *row) dest() []any {
	return []any{&r.ID, &r.Kind, &r.UserID, &r.Login, &r.Name, &r.Scopes, &r.Hash, &r.KeyID, &r.Hint,
		&r.CreatedAt, &r.ExpiresAt, &r.AuthenticatedAt, &r.LastUsedAt, &r.LastUsedAddr, &r.LastUsedClient,
		&r.FedIssuer, &r.FedSubject, &r.FedSID}
}

func (r *row) credential() *auth.StoredCredential {
	return &auth.StoredCredential{
		ID:              r.ID,
		Kind:            auth.Kind(r.Kind),
		UserID:          r.UserID,
		Login:           r.Login,
		Name:            r.Name,
		Scopes:          decodeScopes(r.Scopes),
		Hash:            r.Hash,
		KeyID:           r.KeyID,
		Hint:            r.Hint,
		CreatedAt:       r.CreatedAt.t,
		ExpiresAt:       r.ExpiresAt.t,
		AuthenticatedAt: r.AuthenticatedAt.t,
		LastUsedAt:      r.LastUsedAt.t,
		LastUsedAddr:    r.LastUsedAddr,
		LastUsedClient:  r.LastUsedClient,
		Federation:      auth.Federation{Issuer: r.FedIssuer, Subject: r.FedSubject, SID: r.FedSID},
	}
}

// encodeScopes joins scopes with spaces; a scope must be non-empty and hold
// no whitespace, or it would not split back the same.
func encodeScopes(scopes []string) (string, error) {
	for _, sc := range scopes {
		if sc == "" || strings.ContainsFunc(sc, unicode.IsSpace) {
			return "", fmt.Errorf("%w: scope %q is empty or contains whitespace", auth.ErrInvalidInput, sc)
		}
	}
	return strings.Join(scopes, " "), nil
}

func decodeScopes(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Fields(s)
}

// clientText makes a client's address or User-Agent (also a session's
// name) storable: valid UTF-8 without NUL (PostgreSQL refuses anything
// else, which failed a whole RecordUsage batch, and a sign-in), each bad
// byte replaced by U+FFFD. They come from the client; they are shown,
// never compared. (An app password's name is checked by the Manager.)
func clientText(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// unstorable reports whether one of texts is one PostgreSQL cannot hold
// (not UTF-8, or with a NUL), and so names no credential there: a query
// with it would fail, an outage's ErrUnavailable, where the answer is
// ErrNotFound, as on SQLite and in the memory store.
func (s *Store) unstorable(texts ...string) bool {
	if s.dialect != postgresDialect {
		return false
	}
	for _, t := range texts {
		if !utf8.ValidString(t) || strings.IndexByte(t, 0) >= 0 {
			return true
		}
	}
	return false
}

// CreateCredential implements [auth.Store]. ID, Hash, UserID and CreatedAt
// are required.
func (s *Store) CreateCredential(ctx context.Context, c *auth.StoredCredential) error {
	if c.ID == "" || len(c.Hash) == 0 || c.UserID == "" || c.CreatedAt.IsZero() {
		return fmt.Errorf("sqlstore: create credential: %w: ID, Hash, UserID and CreatedAt are required", auth.ErrInvalidInput)
	}
	scopes, err := encodeScopes(c.Scopes)
	if err != nil {
		return fmt.Errorf("sqlstore: create credential: %w", err)
	}
	d := s.dialect
	_, err = s.db.ExecContext(ctx, s.q.insert,
		c.ID, string(c.Kind), c.UserID, c.Login, clientText(c.Name), scopes, c.Hash, c.KeyID, c.Hint,
		d.timeArg(c.CreatedAt), d.nullTime(c.ExpiresAt), d.nullTime(c.AuthenticatedAt), d.nullTime(c.LastUsedAt),
		clientText(c.LastUsedAddr), clientText(c.LastUsedClient), c.Federation.Issuer, c.Federation.Subject, c.Federation.SID)
	return translate("create credential", err)
}

// FederatedSessions implements [auth.FederatedSessionFinder] with one
// indexed query.
func (s *Store) FederatedSessions(ctx context.Context, f auth.Federation) ([]*auth.StoredCredential, error) {
	if f.Issuer == "" || f.Subject == "" && f.SID == "" {
		return nil, fmt.Errorf("sqlstore: federated sessions: %w: an issuer and a subject or session ID are required", auth.ErrInvalidInput)
	}
	var rows []row
	if err := s.db.SelectContext(ctx, &rows, s.q.federated, string(auth.KindSession), f.Issuer, f.Subject, f.Subject, f.SID, f.SID); err != nil {
		return nil, translate("federated sessions", err)
	}
	out := make([]*auth.StoredCredential, len(rows))
	for i := range rows {
		out[i] = rows[i].credential()
	}
	return out, nil
}

// CredentialByHash implements [auth.Store] with statements prepared at
// open; concurrent calls share queries (see [Options.MaxConcurrentLookups]).
func (s *Store) CredentialByHash(ctx context.Context, hash []byte) (*auth.StoredCredential, error) {
	if s.lookups.slots == math.MaxInt {
		// No bound (SQLite's default): nothing is ever queued, so the
		// coalescer's lock and result slice would be all it adds to the
		// SELECT, twice per lookup, on every cache miss.
		s.lookups.lookups.Add(1)
		s.lookups.queries.Add(1)
		var r row
		var err error
		if s.sqliteLookups != nil {
			err = s.sqliteLookups.get(ctx, hash, r.dest()...)
		} else {
			err = s.byHash.QueryRowContext(ctx, hash).Scan(r.dest()...)
		}
		if err != nil {
			return nil, translate("credential by hash", err)
		}
		return r.credential(), nil
	}
	c, err := s.lookups.get(ctx, hash)
	if err != nil {
		return nil, translate("credential by hash", err)
	}
	return c, nil
}

// queryOne is the one-hash query of the coalescer.
func (s *Store) queryOne(ctx context.Context, hash []byte) ([]row, error) {
	var r row
	switch err := s.byHash.QueryRowContext(ctx, hash).Scan(r.dest()...); {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return []row{r}, nil
}

// queryMany is the coalescer's query for up to maxBatch distinct hashes.
func (s *Store) queryMany(ctx context.Context, hashes [][]byte) ([]row, error) {
	i, _ := slices.BinarySearch(s.batchSizes, len(hashes))
	n := s.batchSizes[i]
	rs, err := s.byHashes[i].QueryContext(ctx, s.dialect.byHashesArgs(hashes, n)...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	rows := make([]row, 0, len(hashes))
	for rs.Next() {
		rows = append(rows, row{})
		if err := rs.Scan(rows[len(rows)-1].dest()...); err != nil {
			return nil, err
		}
	}
	return rows, rs.Err()
}

// Credential implements [auth.Store].
func (s *Store) Credential(ctx context.Context, userID, id string) (*auth.StoredCredential, error) {
	if s.unstorable(userID, id) {
		return nil, fmt.Errorf("sqlstore: credential: %w", auth.ErrNotFound)
	}
	var r row
	if err := s.db.GetContext(ctx, &r, s.q.byID, id, userID); err != nil {
		return nil, translate("credential", err)
	}
	return r.credential(), nil
}

// ListCredentials implements [auth.Store].
func (s *Store) ListCredentials(ctx context.Context, userID string, kind auth.Kind) ([]*auth.StoredCredential, error) {
	if s.unstorable(userID, string(kind)) {
		return nil, nil
	}
	var rows []row
	if err := s.db.SelectContext(ctx, &rows, s.q.list, userID, string(kind)); err != nil {
		return nil, translate("list credentials", err)
	}
	out := make([]*auth.StoredCredential, len(rows))
	for i := range rows {
		out[i] = rows[i].credential()
	}
	return out, nil
}

// AllCredentials implements [auth.CredentialLister]: one query over the
// table, for the administration commands. It sorts in Go: a database's
// collation may order user IDs otherwise than byte by byte.
func (s *Store) AllCredentials(ctx context.Context, kind auth.Kind) ([]*auth.StoredCredential, error) {
	var rows []row
	if err := s.db.SelectContext(ctx, &rows, s.q.listAll, string(kind)); err != nil {
		return nil, translate("list all credentials", err)
	}
	out := make([]*auth.StoredCredential, len(rows))
	for i := range rows {
		out[i] = rows[i].credential()
	}
	slices.SortFunc(out, func(a, b *auth.StoredCredential) int {
		return cmp.Or(cmp.Compare(a.UserID, b.UserID), a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// CountCredentials returns how many credentials (app passwords and
// sessions, of every user) the store holds: one COUNT over the table, for
// sizing [auth.Options.CacheSize] at start.
func (s *Store) CountCredentials(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, s.q.count).Scan(&n); err != nil {
		return 0, translate("count credentials", err)
	}
	return n, nil
}

// Ping reports whether the database answers, for readiness probes: an
// error matching [auth.ErrUnavailable] when it does not. It is bounded by
// ctx.
func (s *Store) Ping(ctx context.Context) error {
	_, err := waitBounded(s, ctx, func(ctx context.Context) (struct{}, error) { return struct{}{}, s.db.PingContext(ctx) })
	return translate("ping", err)
}

// UpdateCredential implements [auth.Store].
func (s *Store) UpdateCredential(ctx context.Context, c *auth.StoredCredential) error {
	scopes, err := encodeScopes(c.Scopes)
	if err != nil {
		return fmt.Errorf("sqlstore: update credential: %w", err)
	}
	if s.unstorable(c.UserID, c.ID) {
		return fmt.Errorf("sqlstore: update credential: %w", auth.ErrNotFound)
	}
	res, err := s.db.ExecContext(ctx, s.q.update,
		c.Name, scopes, s.dialect.nullTime(c.ExpiresAt), s.dialect.nullTime(c.AuthenticatedAt), c.ID, c.UserID)
	return oneRow("update credential", res, err)
}

// DeleteCredential implements [auth.Store].
func (s *Store) DeleteCredential(ctx context.Context, userID, id string) error {
	if s.unstorable(userID, id) {
		return fmt.Errorf("sqlstore: delete credential: %w", auth.ErrNotFound)
	}
	res, err := s.db.ExecContext(ctx, s.q.del, id, userID)
	return oneRow("delete credential", res, err)
}

// oneRow checks that a statement naming one credential found it.
func oneRow(op string, res interface{ RowsAffected() (int64, error) }, err error) error {
	if err != nil {
		return translate(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return translate(op, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlstore: %s: %w", op, auth.ErrNotFound)
	}
	return nil
}

// DeleteCredentials implements [auth.Store].
func (s *Store) DeleteCredentials(ctx context.Context, userID string, kind auth.Kind, except string) (int, error) {
	if s.unstorable(userID, string(kind)) {
		return 0, nil
	}
	if s.unstorable(except) {
		except = "" // no credential's ID: none is kept
	}
	res, err := s.db.ExecContext(ctx, s.q.delAll, userID, string(kind), except)
	if err != nil {
		return 0, translate("delete credentials", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, translate("delete credentials", err)
	}
	return int(n), nil
}

// DeleteExpired implements [auth.ExpiredPurger].
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	res, err := s.db.ExecContext(ctx, s.q.delExpired, s.dialect.timeArg(now))
	if err != nil {
		return 0, translate("delete expired", err)
	}
	n, err := res.RowsAffected()
	return int(n), translate("delete expired", err)
}

// DeleteUnused implements [auth.UnusedPurger].
func (s *Store) DeleteUnused(ctx context.Context, kind auth.Kind, cutoff time.Time) (int, error) {
	res, err := s.db.ExecContext(ctx, s.q.delUnused, string(kind), s.dialect.timeArg(cutoff))
	if err != nil {
		return 0, translate("delete unused", err)
	}
	n, err := res.RowsAffected()
	return int(n), translate("delete unused", err)
}

// maxUsageBatch bounds the last uses written by one statement (PostgreSQL)
// or one transaction (SQLite): a larger flush is written in several, so
// no flush holds row locks, or SQLite's write lock, for long. Each batch
// stands alone: the condition on last_used_at makes a retry harmless.
const maxUsageBatch = 500

// RecordUsage implements [auth.Store]. Each usage is a conditional update:
// the condition on last_used_at keeps the time from moving backwards, also
// against a concurrent flush; updates for missing credentials or another
// owner match no row and are ignored. Of several usages of one credential
// the latest wins. On PostgreSQL a batch of up to maxUsageBatch is one
// statement (one round trip, rows locked in id order, so two servers'
// flushes cannot deadlock); on SQLite one transaction running one prepared
// statement per usage.
func (s *Store) RecordUsage(ctx context.Context, usage []auth.Usage) error {
	us := make([]auth.Usage, 0, len(usage))
	for _, u := range usage {
		if !u.At.IsZero() && u.ID != "" {
			u.Addr, u.Client = clientText(u.Addr), clientText(u.Client)
			us = append(us, u)
		}
	}
	// One order for every flush (ids, then the latest use first), and one
	// usage per credential and owner: the latest. (A usage naming another
	// owner matches nothing, so it must not displace the owner's.)
	slices.SortFunc(us, func(a, b auth.Usage) int {
		return cmp.Or(strings.Compare(a.ID, b.ID), strings.Compare(a.UserID, b.UserID), b.At.Compare(a.At))
	})
	us = slices.CompactFunc(us, func(a, b auth.Usage) bool { return a.ID == b.ID && a.UserID == b.UserID })
	for batch := range slices.Chunk(us, s.usageBatch) {
		var err error
		if s.dialect == postgresDialect {
			err = s.recordUsageStatement(ctx, batch)
		} else {
			err = s.recordUsageTx(ctx, batch)
		}
		if err != nil {
			return translate("record usage", err)
		}
	}
	return nil
}

// recordUsageStatement writes a batch in one statement (PostgreSQL).
func (s *Store) recordUsageStatement(ctx context.Context, us []auth.Usage) error {
	ids, users, ats, addrs, clients := make([]string, len(us)), make([]string, len(us)),
		make([]string, len(us)), make([]string, len(us)), make([]string, len(us))
	for i, u := range us {
		ids[i], users[i], addrs[i], clients[i] = u.ID, u.UserID, u.Addr, u.Client
		ats[i] = u.At.UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano)
	}
	_, err := s.db.ExecContext(ctx, s.q.usageBatch, pq.StringArray(ids), pq.StringArray(users),
		pq.StringArray(ats), pq.StringArray(addrs), pq.StringArray(clients))
	return err
}

// recordUsageTx writes a batch in one transaction, through one prepared
// statement (SQLite: no round trips to save, but one commit, and so one
// sync of the log, for the batch).
func (s *Store) recordUsageTx(ctx context.Context, us []auth.Usage) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	st, err := tx.PreparexContext(ctx, s.q.usage)
	if err != nil {
		return err
	}
	defer st.Close()
	for _, u := range us {
		at := s.dialect.timeArg(u.At)
		if _, err := st.ExecContext(ctx, at, u.Addr, u.Client, u.ID, u.UserID, at); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// LookupStats counts the credential lookups by hash of a [Store] and the
// queries that answered them (see [Options.MaxConcurrentLookups]).
type LookupStats struct {
	Lookups uint64 // CredentialByHash calls
	Queries uint64 // queries sent for them
	Shared  uint64 // lookups answered by a query sent for a queue of them
}

// LookupStats returns the counts since the Store was opened.
func (s *Store) LookupStats() LookupStats {
	return LookupStats{Lookups: s.lookups.lookups.Load(), Queries: s.lookups.queries.Load(), Shared: s.lookups.batched.Load()}
}

// Stats returns the connection pool's statistics, for metrics and to check
// the pool's size.
func (s *Store) Stats() sql.DBStats { return s.db.Stats() }
