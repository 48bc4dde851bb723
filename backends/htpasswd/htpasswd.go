// Package htpasswd implements [auth.Directory] and [auth.PasswordVerifier]
// on an Apache htpasswd file: the zero-setup directory for small installs.
//
// Each line is "login:hash". Accepted hashes are bcrypt ($2y$, $2a$, $2b$,
// as written by `htpasswd -B`, cost at most 17) and SHA-crypt ($5$, $6$,
// as written by `openssl passwd -5/-6` or `mkpasswd`), with rounds from
// 1,000 to 10,000,000, which bounds a crafted entry to seconds per
// sign-in. Plaintext, crypt(3) DES, MD5 ($apr1$, $1$) and unsalted SHA-1
// ({SHA}) entries are refused with an error naming the line. A hash prefixed with "!" (as `usermod -L` does in
// /etc/shadow) marks a disabled account. Blank lines and lines starting
// with "#" are ignored.
//
// Logins match case-insensitively, so a file with two logins that differ
// only in case is refused. The file is read again when it changes (its
// modification time, size or inode), checked at most once per
// [Options.CheckInterval]. Use [SetPassword] to add or change a user.
//
// The file has no user IDs, so a user's [auth.User].ID is the login: delete
// a user's app passwords (Manager.RevokeAllAppPasswords) before giving their
// login to someone else.
package htpasswd

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-crypt/crypt/algorithm/shacrypt"
	"golang.org/x/crypto/bcrypt"

	"github.com/appauth/appauth/auth"
)

// MaxPasswordLen is the longest password checked, in bytes; longer ones are
// refused without hashing (a SHA-crypt hash costs time in proportion to the
// password's length).
const MaxPasswordLen = 512

// maxLoginLen bounds a login, as the auth Manager does.
const maxLoginLen = 256

// bcryptMaxCost bounds the work one verify may cost, as
// shaCryptMaxParsedRounds does: 17 is the most `htpasswd -C` writes
// (bcrypt allows 31, days per check).
const bcryptMaxCost = 17

// maxFileSize bounds the file read, so a mistake cannot exhaust memory.
const maxFileSize = 64 << 20

// Options configure a [Directory]. The zero value (or nil) means defaults.
type Options struct {
	// Logger receives reloads and errors, never a hash or password.
	// Default: discard.
	Logger *slog.Logger
	// Now is the clock that spaces out checks of the file. Default: time.Now.
	Now func() time.Time
	// CheckInterval is the most often the file is checked for changes, on
	// a lookup. Default 1s; negative: the file is read once, at Open.
	CheckInterval time.Duration
}

// Directory is an [auth.Directory] and [auth.PasswordVerifier] backed by an
// htpasswd file. Create it with [Open]. It is safe for concurrent use and
// starts no goroutine, so it needs no Close.
type Directory struct {
	path     string
	log      *slog.Logger
	now      func() time.Time
	interval time.Duration
	decoyKey []byte // picks an unknown login's decoy entry

	snap      atomic.Pointer[snapshot]
	nextCheck atomic.Int64 // unix nanoseconds
	reloadMu  sync.Mutex
	readAt    time.Time // wall clock at the last read, guarded by reloadMu
}

// racyWindow is the coarsest timestamp granularity allowed for (FAT: 2s):
// a file modified this close before it was read may change again with the
// same size and time, so it is read again at the next check.
const racyWindow = 2 * time.Second

var (
	_ auth.Directory        = (*Directory)(nil)
	_ auth.PasswordVerifier = (*Directory)(nil)
)

// snapshot is one reading of the file. A reading that failed keeps its
// error: every call fails closed with ErrUnavailable until the file is fixed.
type snapshot struct {
	users map[string]*entry // by folded login
	// entries are the users in file order; an unknown login is checked
	// against one of their hashes ([snapshot.decoy]).
	entries []*entry
	err     error
	stat    os.FileInfo
}

type entry struct {
	login    string
	line     int
	disabled bool
	bcrypt   []byte           // a bcrypt hash, or
	sha      *shacrypt.Digest // a SHA-crypt hash
}

// Open reads the htpasswd file at path. It fails if the file cannot be read
// or holds an entry it refuses (see the package documentation).
func Open(path string, opts *Options) (*Directory, error) {
	if path == "" {
		return nil, errors.New(`htpasswd: missing required argument "path"`)
	}
	if opts == nil {
		opts = &Options{}
	}
	d := &Directory{path: path, log: opts.Logger, now: opts.Now, interval: opts.CheckInterval, decoyKey: make([]byte, 32)}
	rand.Read(d.decoyKey)
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	d.log = d.log.With("backend", "htpasswd", "path", path)
	if d.now == nil {
		d.now = time.Now
	}
	if d.interval == 0 {
		d.interval = time.Second
	}
	d.readAt = time.Now()
	s := d.read()
	if s.err != nil {
		return nil, s.err
	}
	d.snap.Store(s)
	d.nextCheck.Store(d.now().Add(d.interval).UnixNano())
	d.log.Info("htpasswd: loaded", "users", len(s.users))
	return d, nil
}

// read reads and parses the file.
func (d *Directory) read() *snapshot {
	f, err := os.Open(d.path)
	if err != nil {
		return &snapshot{err: fmt.Errorf("htpasswd: %w", err)}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return &snapshot{err: fmt.Errorf("htpasswd: %w", err)}
	}
	if st.Size() > maxFileSize {
		return &snapshot{stat: st, err: fmt.Errorf("htpasswd: %s is larger than %d bytes", d.path, maxFileSize)}
	}
	var buf bytes.Buffer
	// The size above may say nothing (a pipe, a device) or grow meanwhile.
	if _, err := buf.ReadFrom(io.LimitReader(f, maxFileSize+1)); err != nil {
		return &snapshot{stat: st, err: fmt.Errorf("htpasswd: read %s: %w", d.path, err)}
	}
	if buf.Len() > maxFileSize {
		return &snapshot{stat: st, err: fmt.Errorf("htpasswd: %s is larger than %d bytes", d.path, maxFileSize)}
	}
	users, err := parse(buf.Bytes())
	if err != nil {
		return &snapshot{stat: st, err: fmt.Errorf("htpasswd: %s: %w", d.path, err)}
	}
	s := &snapshot{users: users, stat: st}
	for _, e := range users {
		s.entries = append(s.entries, e)
	}
	slices.SortFunc(s.entries, func(a, b *entry) int { return a.line - b.line })
	return s
}

// decoy returns the entry whose hash an unknown login is checked against:
// one picked by a keyed hash of the login, so that in a file whose hashes
// differ in cost an unknown login costs what some user's does, the same
// each time, and cannot be told from a known one by its timing. Nil when
// the file has no users.
func (s *snapshot) decoy(key []byte, folded string) *entry {
	if len(s.entries) == 0 {
		return nil
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(folded))
	return s.entries[binary.BigEndian.Uint64(m.Sum(nil))%uint64(len(s.entries))]
}

// current returns the file's latest reading, reading it again if it
// changed and CheckInterval has passed since the last check.
func (d *Directory) current() *snapshot {
	s := d.snap.Load()
	if d.interval < 0 {
		return s
	}
	now := d.now().UnixNano()
	if now < d.nextCheck.Load() || !d.reloadMu.TryLock() {
		// Another caller is checking: use what we have.
		return s
	}
	defer d.reloadMu.Unlock()
	if now < d.nextCheck.Load() {
		return d.snap.Load()
	}
	d.nextCheck.Store(now + int64(d.interval))
	s = d.snap.Load()
	st, err := os.Stat(d.path)
	if err == nil && s.stat != nil && os.SameFile(st, s.stat) && st.ModTime().Equal(s.stat.ModTime()) && st.Size() == s.stat.Size() &&
		st.ModTime().Before(d.readAt.Add(-racyWindow)) {
		return s
	}
	if err != nil {
		if s.err == nil {
			d.log.Error("htpasswd: file unreadable, refusing every login until it is back", "error", err)
		}
		s = &snapshot{err: fmt.Errorf("htpasswd: %w", err)}
		d.snap.Store(s)
		return s
	}
	d.readAt = time.Now()
	s = d.read()
	if s.err != nil {
		d.log.Error("htpasswd: file changed and is now invalid, refusing every login until it is fixed", "error", s.err)
	} else {
		d.log.Info("htpasswd: reloaded", "users", len(s.users))
	}
	d.snap.Store(s)
	return s
}

// fold returns login's canonical form ([auth.CanonicalLogin]), the key of
// the users map, or "" (no user's) for an invalid one.
func fold(login string) string {
	c, err := auth.CanonicalLogin(login)
	if err != nil {
		return ""
	}
	return c
}

// LookupUser implements [auth.Directory]. It returns ErrUnavailable while
// the file is unreadable or invalid.
func (d *Directory) LookupUser(ctx context.Context, login string) (*auth.User, error) {
	s := d.current()
	if s.err != nil {
		return nil, fmt.Errorf("htpasswd: lookup user: %w: %w", auth.ErrUnavailable, s.err)
	}
	e, ok := s.users[fold(login)]
	if !ok || len(login) > maxLoginLen {
		return nil, fmt.Errorf("htpasswd: lookup user: %w", auth.ErrNotFound)
	}
	return e.user(), nil
}

func (e *entry) user() *auth.User {
	return &auth.User{ID: e.login, Login: e.login, Disabled: e.disabled}
}

// Users returns the file's users in file order, for administration (an
// LDAP directory cannot list its users; this file can). It fails with
// ErrUnavailable while the file is unreadable or invalid.
func (d *Directory) Users(ctx context.Context) ([]*auth.User, error) {
	s := d.current()
	if s.err != nil {
		return nil, fmt.Errorf("htpasswd: users: %w: %w", auth.ErrUnavailable, s.err)
	}
	out := make([]*auth.User, len(s.entries))
	for i, e := range s.entries {
		out[i] = e.user()
	}
	return out, nil
}

// VerifyPassword implements [auth.PasswordVerifier]. An unknown login costs
// the same hash computation as a wrong password.
func (d *Directory) VerifyPassword(ctx context.Context, login, password string) (*auth.User, error) {
	denied := fmt.Errorf("htpasswd: verify password: %w", auth.ErrInvalidCredentials)
	if password == "" || len(password) > MaxPasswordLen || login == "" || len(login) > maxLoginLen {
		return nil, denied
	}
	s := d.current()
	if s.err != nil {
		return nil, fmt.Errorf("htpasswd: verify password: %w: %w", auth.ErrUnavailable, s.err)
	}
	e, known := s.users[fold(login)]
	target := e
	if !known {
		target = s.decoy(d.decoyKey, fold(login))
	}
	if target == nil {
		return nil, denied
	}
	ok := target.check([]byte(password))
	if !known || !ok || e.disabled {
		return nil, denied
	}
	return e.user(), nil
}

func (e *entry) check(password []byte) bool {
	if e.sha != nil {
		return e.sha.MatchBytes(password) // constant-time comparison
	}
	return bcrypt.CompareHashAndPassword(e.bcrypt, password) == nil
}

// parse reads an htpasswd file. Errors name the line (and login) but never
// include a hash.
func parse(data []byte) (map[string]*entry, error) {
	users := map[string]*entry{}
	lineNo := 0
	for len(data) > 0 {
		lineNo++
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(bytes.TrimSpace(line)) == 0 || line[0] == '#' {
			continue
		}
		login, hash, found := strings.Cut(string(line), ":")
		if !found {
			return nil, fmt.Errorf("line %d: no ':' between login and hash", lineNo)
		}
		if err := checkLogin(login); err != nil {
			return nil, fmt.Errorf("line %d: %w", lineNo, err)
		}
		e := &entry{login: login, line: lineNo}
		hash = strings.TrimRightFunc(hash, unicode.IsSpace)
		if rest, ok := strings.CutPrefix(hash, "!"); ok {
			e.disabled, hash = true, rest
		}
		if err := e.setHash(hash); err != nil {
			return nil, fmt.Errorf("line %d (login %q): %w", lineNo, login, err)
		}
		k := fold(login)
		if prev, dup := users[k]; dup {
			return nil, fmt.Errorf("line %d: login %q already appears on line %d (logins match ignoring case and width)", lineNo, login, prev.line)
		}
		users[k] = e
	}
	return users, nil
}

// checkLogin refuses logins that could not be typed back or would be
// ambiguous: empty, too long, not UTF-8, control characters, surrounding
// spaces, or that the file cannot hold (':', a leading '#').
func checkLogin(login string) error {
	switch {
	case login == "":
		return errors.New("empty login")
	case len(login) > maxLoginLen:
		return fmt.Errorf("login longer than %d bytes", maxLoginLen)
	case !utf8.ValidString(login):
		return errors.New("login is not valid UTF-8")
	case strings.TrimSpace(login) != login:
		return fmt.Errorf("login %q has leading or trailing spaces", login)
	case strings.ContainsFunc(login, unicode.IsControl):
		return fmt.Errorf("login %q has control characters", login)
	case strings.ContainsRune(login, ':'):
		return fmt.Errorf("login %q contains ':'", login)
	case login[0] == '#':
		return fmt.Errorf("login %q starts with '#' (a comment line)", login)
	case fold(login) == "":
		return fmt.Errorf("login %q is not a valid login (PRECIS UsernameCaseMapped, RFC 8265)", login)
	}
	return nil
}

// setHash accepts bcrypt and SHA-crypt and explains every refusal.
func (e *entry) setHash(h string) error {
	switch {
	case h == "":
		return errors.New("empty hash (the account would have no password); refused")
	case strings.HasPrefix(h, "$2y$"), strings.HasPrefix(h, "$2a$"), strings.HasPrefix(h, "$2b$"):
		cost, err := bcrypt.Cost([]byte(h))
		if err != nil || len(h) != 60 {
			return errors.New("malformed bcrypt hash")
		}
		if cost > bcryptMaxCost {
			return fmt.Errorf("bcrypt cost %d is refused: at most %d (the most `htpasswd -C` writes)", cost, bcryptMaxCost)
		}
		e.bcrypt = []byte(h)
		return nil
	case strings.HasPrefix(h, "$5$"), strings.HasPrefix(h, "$6$"):
		s, err := parseShaCrypt(h)
		if err != nil {
			return err
		}
		e.sha = s
		return nil
	case strings.HasPrefix(h, "$apr1$"), strings.HasPrefix(h, "$1$"):
		return errors.New("MD5-crypt hashes ($apr1$, $1$) are too weak and refused; set the password again with `htpasswd -B` (bcrypt)")
	case strings.HasPrefix(h, "{SHA}"):
		return errors.New("unsalted SHA-1 hashes ({SHA}) are too weak and refused; set the password again with `htpasswd -B` (bcrypt)")
	case strings.HasPrefix(h, "$"):
		return errors.New("unsupported hash scheme; use bcrypt (`htpasswd -B`) or SHA-crypt ($5$, $6$)")
	case len(h) == 13 && onlyCryptAlphabet(h):
		return errors.New("crypt(3) DES hashes are too weak and refused; set the password again with `htpasswd -B` (bcrypt)")
	default:
		return errors.New("not a password hash (plaintext passwords are refused); set the password with `htpasswd -B` (bcrypt)")
	}
}
