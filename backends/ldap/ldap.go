// Package ldap implements [auth.Directory] and [auth.PasswordVerifier] on an
// LDAP directory (OpenLDAP, 389 DS, Active Directory) with
// github.com/go-ldap/ldap/v3: a pooled service connection searches users and
// groups; a password is checked by binding as the user on a connection that
// is never used for searches.
//
// Every login is escaped into the search filter (RFC 4515), a search must
// find exactly one entry whose login attribute equals the login but for
// case, and an empty password is refused before anything is sent (an
// empty-password bind is an anonymous bind, which many servers accept).
// Result 49 is [auth.ErrInvalidCredentials]; a server that cannot be
// reached, times out or is busy is [auth.ErrUnavailable], never invalid
// credentials. TLS (ldaps:// or StartTLS) verifies the certificate and the
// host name; a failed StartTLS stops the login.
//
// See README.md in this directory for OpenLDAP and Active Directory
// configurations.
package ldap

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/appauth/appauth/auth"
)

// MaxPasswordLen is the longest password sent to the directory, in bytes;
// longer ones are refused without a network call.
const MaxPasswordLen = 512

// maxLoginLen bounds a login, as the auth Manager does.
const maxLoginLen = 256

// Options are optional settings of a [Directory]; nil means defaults.
type Options struct {
	// Logger receives connection failures and refusals with the DN
	// concerned, never a password. Default: discard.
	Logger *slog.Logger
}

// Directory is an [auth.Directory] and [auth.PasswordVerifier] on LDAP.
// Create it with [New] and release its connections with [Directory.Close].
// It is safe for concurrent use and starts no goroutine of its own.
type Directory struct {
	cfg       Config
	servers   []server
	deadUntil []atomic.Int64 // per server, unix nanoseconds
	probing   atomic.Bool    // a caller is trying servers that all failed recently
	log       *slog.Logger
	search    *pool // bound as the service account
	binds     *pool // for users' binds only
	attrs     []string
	groups    groupCache
	// decoyDN is bound to for a login that is not found, with the
	// password given: an entry that does not exist, so the bind always
	// fails, and one per Directory, so it cannot be told from a user's DN.
	decoyDN string
}

var (
	_ auth.Directory        = (*Directory)(nil)
	_ auth.PasswordVerifier = (*Directory)(nil)
)

// New checks cfg and returns a Directory. It does not connect: connections
// are made on first use, so a directory that is down at start-up is
// [auth.ErrUnavailable] on use, not an error here.
func New(cfg Config, opts *Options) (*Directory, error) {
	if opts == nil {
		opts = &Options{}
	}
	cfg.URLs = slices.Clone(cfg.URLs)
	cfg.withDefaults()
	servers, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Directory{cfg: cfg, servers: servers, deadUntil: make([]atomic.Int64, len(servers)), log: log.With("backend", "ldap")}
	var nonce [16]byte
	rand.Read(nonce[:])
	d.decoyDN = cfg.LoginAttribute + "=" + goldap.EscapeDN("appauth-"+hex.EncodeToString(nonce[:])) + "," + cfg.BaseDN
	d.search = newPool(d, "search", cfg.PoolSize)
	d.binds = newPool(d, "bind", cfg.PoolSize)
	d.groups.entries = map[string]groupEntry{}
	d.attrs = compact(cfg.IDAttribute, cfg.LoginAttribute, cfg.DisplayNameAttribute, "cn", cfg.EmailAttribute, cfg.GroupsAttribute, cfg.Disabled.Attribute)
	if cfg.InsecureSkipVerify {
		d.log.Warn("ldap: InsecureSkipVerify is set: server certificates are not checked")
	}
	for _, s := range servers {
		if !s.tls && !cfg.StartTLS {
			d.log.Warn("ldap: passwords go to this server in the clear; use ldaps:// or StartTLS", "url", s.url)
		}
	}
	return d, nil
}

func compact(names ...string) []string {
	var out []string
	for _, n := range names {
		if n != "" && !slices.ContainsFunc(out, func(o string) bool { return strings.EqualFold(o, n) }) {
			out = append(out, n)
		}
	}
	return out
}

// Close closes every pooled connection. Calls in flight finish; later ones
// fail.
func (d *Directory) Close() error {
	d.search.close()
	d.binds.close()
	return nil
}

// validLogin refuses logins that cannot be a user's: empty, too long, not
// UTF-8, control characters (NUL included), surrounding spaces.
func validLogin(login string) bool {
	return login != "" && len(login) <= maxLoginLen && utf8.ValidString(login) &&
		strings.TrimSpace(login) == login && !strings.ContainsFunc(login, unicode.IsControl)
}

// validPassword refuses passwords that must not reach a bind: empty (an
// unauthenticated bind, which many servers accept), only spaces, or with a
// NUL byte (servers written in C may read it as an empty string), and
// passwords longer than MaxPasswordLen.
func validPassword(password string) bool {
	return strings.TrimSpace(password) != "" && len(password) <= MaxPasswordLen && !strings.ContainsRune(password, 0)
}

// LookupUser implements [auth.Directory]: one search on a pooled service
// connection (plus group searches if configured).
func (d *Directory) LookupUser(ctx context.Context, login string) (*auth.User, error) {
	if !validLogin(login) {
		return nil, fmt.Errorf("ldap: lookup user: %w", auth.ErrNotFound)
	}
	u, _, err := d.find(ctx, login)
	if err != nil {
		return nil, fmt.Errorf("ldap: lookup user: %w", err)
	}
	return u, nil
}

// VerifyPassword implements [auth.PasswordVerifier]: a search for the user,
// then a bind as the entry found on a connection used only for binds. An
// empty password, an unknown or ambiguous login, and a disabled account are
// refused without a bind.
func (d *Directory) VerifyPassword(ctx context.Context, login, password string) (*auth.User, error) {
	denied := fmt.Errorf("ldap: verify password: %w", auth.ErrInvalidCredentials)
	if !validPassword(password) || !validLogin(login) {
		return nil, denied
	}
	u, dn, err := d.find(ctx, login)
	switch {
	case errors.Is(err, auth.ErrNotFound):
		// An unknown login costs what a wrong password does: the same
		// searches and one bind, so that timing does not tell which
		// logins exist.
		d.decoySearches(ctx, login)
		d.bind(ctx, d.decoyDN, password)
		return nil, denied
	case err != nil:
		return nil, fmt.Errorf("ldap: verify password: %w", err)
	case u.Disabled:
		d.log.InfoContext(ctx, "ldap: disabled account refused", "dn", dn)
		d.bind(ctx, d.decoyDN, password)
		return nil, denied
	}
	if err := d.bind(ctx, dn, password); err != nil {
		return nil, fmt.Errorf("ldap: verify password: %w", err)
	}
	return u, nil
}

// decoySearches sends, for a login that is not found, the searches that a
// found entry costs after the user search (the Disabled filter, groups by
// GroupFilter), with the decoy DN as the entry; their answers are ignored.
func (d *Directory) decoySearches(ctx context.Context, login string) {
	if d.cfg.Disabled.Filter == "" && (d.cfg.GroupsAttribute != "" || d.cfg.GroupFilter == "") {
		return // a found entry costs no further search
	}
	c, _, err := d.search.get(ctx)
	if err != nil {
		return
	}
	e := &goldap.Entry{DN: d.decoyDN}
	_, err = d.disabled(ctx, c, e)
	if err == nil || !transient(err) {
		_, err = d.userGroups(ctx, c, e, login)
	}
	d.search.put(c, err != nil && transient(err))
}

// bind checks password by binding as dn on a binding connection.
func (d *Directory) bind(ctx context.Context, dn, password string) error {
	for attempt := 0; ; attempt++ {
		c, reused, err := d.binds.get(ctx)
		if err != nil {
			return err
		}
		err = d.withTimeout(ctx, c, d.cfg.BindTimeout, func() error {
			_, err := c.SimpleBind(&goldap.SimpleBindRequest{Username: dn, Password: password})
			return err
		})
		if err == nil {
			d.binds.put(c, false)
			return nil
		}
		if !transient(err) {
			d.binds.put(c, false)
			if goldap.IsErrorWithCode(err, goldap.LDAPResultInvalidCredentials) {
				d.log.InfoContext(ctx, "ldap: wrong password", "dn", dn)
			} else {
				d.log.WarnContext(ctx, "ldap: bind refused", "dn", dn, "error", err)
			}
			// 49, and refusals such as 48, 50 or 53 (locked, must change
			// password): the account cannot sign in.
			return auth.ErrInvalidCredentials
		}
		d.binds.put(c, true)
		d.markDeadIfTimeout(ctx, c, err)
		if reused && attempt == 0 && ctx.Err() == nil {
			continue // a stale pooled connection: once more on a fresh one
		}
		d.log.WarnContext(ctx, "ldap: bind failed", "dn", dn, "error", err)
		return fmt.Errorf("%w: bind: %w", auth.ErrUnavailable, ctxErr(ctx, err))
	}
}

// withTimeout runs op on c with the request timeout, shortened to ctx's
// deadline, and closes c if ctx is cancelled meanwhile.
func (d *Directory) withTimeout(ctx context.Context, c *conn, timeout time.Duration, op func() error) error {
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	if timeout <= 0 {
		return fmt.Errorf("%w: %w", auth.ErrUnavailable, context.DeadlineExceeded)
	}
	c.SetTimeout(timeout)
	stop := context.AfterFunc(ctx, func() { c.Close() })
	err := op()
	stop()
	return err
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return errors.Join(ctx.Err(), err)
	}
	return err
}

// markDeadIfTimeout skips a server that stopped answering for a while, so
// the retry and the next connections fail over.
// A caller's own deadline or cancellation says nothing about the server.
func (d *Directory) markDeadIfTimeout(ctx context.Context, c *conn, err error) {
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
		return
	}
	if goldap.IsErrorAnyOf(err, goldap.LDAPResultTimeout, goldap.ErrorNetwork) || !isLDAPError(err) {
		d.markDead(c.server, err)
	}
}

func isLDAPError(err error) bool {
	var le *goldap.Error
	return errors.As(err, &le)
}

// find searches for login and returns the user and their DN.
//
// It searches for login's [auth.CanonicalLogin] form and keeps the entry
// whose login attribute has that canonical form; a login with none
// (no account can have it) is not found, without a request.
func (d *Directory) find(ctx context.Context, login string) (*auth.User, string, error) {
	login, err := auth.CanonicalLogin(login)
	if err != nil {
		return nil, "", notFound()
	}
	for attempt := 0; ; attempt++ {
		c, reused, err := d.search.get(ctx)
		if err != nil {
			return nil, "", err
		}
		u, dn, err := d.findOn(ctx, c, login)
		if err == nil || !transient(err) {
			d.search.put(c, false)
			return u, dn, err
		}
		d.search.put(c, true)
		d.markDeadIfTimeout(ctx, c, err)
		if reused && attempt == 0 && ctx.Err() == nil {
			continue
		}
		d.log.WarnContext(ctx, "ldap: search failed", "error", err)
		return nil, "", fmt.Errorf("%w: search: %w", auth.ErrUnavailable, ctxErr(ctx, err))
	}
}

// answerError marks an error that is the directory's answer (not found,
// ambiguous, a refused search), so it is not retried as an outage would be.
type answerError struct{ err error }

func (e *answerError) Error() string { return e.err.Error() }
func (e *answerError) Unwrap() error { return e.err }

// findOn runs the user search (and group searches) on c. Errors that are
// the directory's answers (not found, ambiguous, misconfiguration) are
// *answerError; transient ones are returned as they are.
func (d *Directory) findOn(ctx context.Context, c *conn, login string) (*auth.User, string, error) {
	filter := strings.ReplaceAll(d.cfg.UserFilter, "{login}", goldap.EscapeFilter(login))
	req := goldap.NewSearchRequest(d.cfg.BaseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 2, 0, false, filter, d.attrs, nil)
	var res *goldap.SearchResult
	err := d.withTimeout(ctx, c, d.cfg.RequestTimeout, func() (err error) {
		res, err = c.Search(req)
		return err
	})
	if goldap.IsErrorWithCode(err, goldap.LDAPResultSizeLimitExceeded) {
		d.log.ErrorContext(ctx, "ldap: login matches more than one entry: refused", "filter", filter)
		return nil, "", notFound()
	}
	if err != nil {
		if transient(err) {
			return nil, "", err
		}
		d.log.ErrorContext(ctx, "ldap: user search refused; check BaseDN and UserFilter", "filter", filter, "error", err)
		return nil, "", fmt.Errorf("%w: user search: %w", auth.ErrUnavailable, &answerError{err})
	}
	// The server's matching ignores more than case (insignificant spaces,
	// for one): keep only entries whose login is the login, compared in
	// canonical form as the Manager and the throttle compare them.
	var found []*goldap.Entry
	var spelled []string
	for _, e := range res.Entries {
		for _, v := range e.GetEqualFoldAttributeValues(d.cfg.LoginAttribute) {
			if auth.SameLogin(v, login) {
				found = append(found, e)
				spelled = append(spelled, v)
				break
			}
		}
	}
	switch {
	case len(found) == 0:
		return nil, "", notFound()
	case len(found) > 1:
		d.log.ErrorContext(ctx, "ldap: login matches more than one entry: refused", "filter", filter, "entries", len(found))
		return nil, "", notFound()
	}
	e := found[0]
	u := &auth.User{
		Login:       spelled[0],
		DisplayName: e.GetEqualFoldAttributeValue(d.cfg.DisplayNameAttribute),
		Email:       e.GetEqualFoldAttributeValue(d.cfg.EmailAttribute),
	}
	if u.DisplayName == "" {
		u.DisplayName = e.GetEqualFoldAttributeValue("cn")
	}
	if u.ID = d.entryID(e); u.ID == "" {
		d.log.ErrorContext(ctx, "ldap: entry has no ID attribute; check IDAttribute", "dn", e.DN, "attribute", d.cfg.IDAttribute)
		return nil, "", &answerError{fmt.Errorf("%w: entry %s has no %s", auth.ErrUnavailable, e.DN, d.cfg.IDAttribute)}
	}
	u.Disabled, err = d.disabled(ctx, c, e)
	if err != nil {
		return nil, "", err
	}
	u.Groups, err = d.userGroups(ctx, c, e, u.Login)
	if err != nil {
		return nil, "", err
	}
	return u, e.DN, nil
}

func notFound() error { return &answerError{auth.ErrNotFound} }

// entryID renders the ID attribute; objectGUID (binary) as a GUID string.
func (d *Directory) entryID(e *goldap.Entry) string {
	if strings.EqualFold(d.cfg.IDAttribute, "objectGUID") {
		b := e.GetEqualFoldRawAttributeValue(d.cfg.IDAttribute)
		if len(b) != 16 {
			return ""
		}
		return fmt.Sprintf("%08x-%04x-%04x-%x-%x", binary.LittleEndian.Uint32(b[0:4]), binary.LittleEndian.Uint16(b[4:6]),
			binary.LittleEndian.Uint16(b[6:8]), b[8:10], b[10:16])
	}
	return e.GetEqualFoldAttributeValue(d.cfg.IDAttribute)
}

// disabled applies the DisabledRule to entry e.
func (d *Directory) disabled(ctx context.Context, c *conn, e *goldap.Entry) (bool, error) {
	r := d.cfg.Disabled
	if r.Attribute != "" {
		vals := e.GetEqualFoldAttributeValues(r.Attribute)
		switch {
		case r.BitMask != 0:
			for _, v := range vals {
				n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				if err != nil || n&r.BitMask != 0 {
					return true, nil // unreadable: fail closed
				}
			}
		case len(r.Values) > 0:
			for _, v := range vals {
				if slices.ContainsFunc(r.Values, func(w string) bool { return strings.EqualFold(v, w) }) {
					return true, nil
				}
			}
		case len(vals) > 0:
			return true, nil
		}
	}
	if r.Filter != "" {
		req := goldap.NewSearchRequest(e.DN, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 1, 0, false, r.Filter, []string{"1.1"}, nil)
		var res *goldap.SearchResult
		err := d.withTimeout(ctx, c, d.cfg.RequestTimeout, func() (err error) {
			res, err = c.Search(req)
			return err
		})
		if err != nil {
			if transient(err) {
				return false, err
			}
			return true, fmt.Errorf("%w: disabled filter: %w", auth.ErrUnavailable, &answerError{err})
		}
		if len(res.Entries) > 0 {
			return true, nil
		}
	}
	return false, nil
}

// groupCache remembers the parents of groups, for NestedGroups.
type groupCache struct {
	mu      sync.Mutex
	entries map[string]groupEntry // by group DN, lower case
}

type groupEntry struct {
	parents []group
	expires time.Time
}

type group struct{ dn, name string }

const maxGroups = 1000

// userGroups returns the names of e's groups, nested ones resolved if
// configured, sorted.
func (d *Directory) userGroups(ctx context.Context, c *conn, e *goldap.Entry, login string) ([]string, error) {
	var direct []group
	switch {
	case d.cfg.GroupsAttribute != "":
		for _, dn := range e.GetEqualFoldAttributeValues(d.cfg.GroupsAttribute) {
			direct = append(direct, group{dn: dn, name: rdnValue(dn)})
		}
	case d.cfg.GroupFilter != "":
		var err error
		if direct, err = d.searchGroups(ctx, c, e.DN, login); err != nil {
			return nil, err
		}
	default:
		return nil, nil
	}
	seen := map[string]bool{}
	var names []string
	level := direct
	for depth := 0; len(level) > 0; depth++ {
		var next []group
		for _, g := range level {
			k := strings.ToLower(g.dn)
			if seen[k] {
				continue
			}
			seen[k] = true
			if g.name != "" {
				names = append(names, g.name)
			}
			if len(seen) > maxGroups {
				d.log.WarnContext(ctx, "ldap: more than 1000 groups; the rest are ignored", "dn", e.DN)
				level = nil
				break
			}
			if !d.cfg.NestedGroups || depth+1 >= d.cfg.MaxGroupDepth {
				continue
			}
			parents, err := d.groupParents(ctx, c, g.dn)
			if err != nil {
				return nil, err
			}
			next = append(next, parents...)
		}
		level = next
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// searchGroups runs GroupFilter for a member (a user or, nested, a group).
func (d *Directory) searchGroups(ctx context.Context, c *conn, memberDN, login string) ([]group, error) {
	// One pass: a placeholder inside a value put in is not replaced.
	filter := strings.NewReplacer("{dn}", goldap.EscapeFilter(memberDN), "{login}", goldap.EscapeFilter(login)).Replace(d.cfg.GroupFilter)
	req := goldap.NewSearchRequest(d.cfg.GroupBaseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, maxGroups, 0, false, filter, []string{d.cfg.GroupNameAttribute}, nil)
	var res *goldap.SearchResult
	err := d.withTimeout(ctx, c, d.cfg.RequestTimeout, func() (err error) {
		res, err = c.Search(req)
		return err
	})
	if err != nil && !goldap.IsErrorWithCode(err, goldap.LDAPResultSizeLimitExceeded) {
		if transient(err) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: group search: %w", auth.ErrUnavailable, &answerError{err})
	}
	var out []group
	for _, e := range res.Entries {
		name := e.GetEqualFoldAttributeValue(d.cfg.GroupNameAttribute)
		if name == "" {
			name = rdnValue(e.DN)
		}
		out = append(out, group{dn: e.DN, name: name})
	}
	return out, nil
}

// groupParents returns the groups that group dn is a member of, cached for
// GroupCacheTTL.
func (d *Directory) groupParents(ctx context.Context, c *conn, dn string) ([]group, error) {
	k := strings.ToLower(dn)
	now := time.Now()
	if d.cfg.GroupCacheTTL > 0 {
		d.groups.mu.Lock()
		ge, ok := d.groups.entries[k]
		d.groups.mu.Unlock()
		if ok && now.Before(ge.expires) {
			return ge.parents, nil
		}
	}
	var parents []group
	if d.cfg.GroupsAttribute != "" {
		req := goldap.NewSearchRequest(dn, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 1, 0, false, "(objectClass=*)", []string{d.cfg.GroupsAttribute}, nil)
		var res *goldap.SearchResult
		err := d.withTimeout(ctx, c, d.cfg.RequestTimeout, func() (err error) {
			res, err = c.Search(req)
			return err
		})
		switch {
		case goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject):
			// A dangling memberOf: no parents.
		case err != nil && transient(err):
			return nil, err
		case err != nil:
			return nil, fmt.Errorf("%w: group %s: %w", auth.ErrUnavailable, dn, &answerError{err})
		default:
			for _, e := range res.Entries {
				for _, p := range e.GetEqualFoldAttributeValues(d.cfg.GroupsAttribute) {
					parents = append(parents, group{dn: p, name: rdnValue(p)})
				}
			}
		}
	} else {
		var err error
		if parents, err = d.searchGroups(ctx, c, dn, ""); err != nil {
			return nil, err
		}
	}
	if d.cfg.GroupCacheTTL > 0 {
		d.groups.mu.Lock()
		if len(d.groups.entries) >= 10*maxGroups {
			clear(d.groups.entries) // bounded: start over
		}
		d.groups.entries[k] = groupEntry{parents: parents, expires: now.Add(d.cfg.GroupCacheTTL)}
		d.groups.mu.Unlock()
	}
	return parents, nil
}

// rdnValue returns the value of dn's first RDN ("staff" for
// "cn=staff,ou=groups,dc=example,dc=org"), unescaped.
func rdnValue(dn string) string {
	p, err := goldap.ParseDN(dn)
	if err != nil || len(p.RDNs) == 0 || len(p.RDNs[0].Attributes) == 0 {
		return ""
	}
	return p.RDNs[0].Attributes[0].Value
}
