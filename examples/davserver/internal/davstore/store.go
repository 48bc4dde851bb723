// Package davstore keeps the example server's calendars, address books and
// files in a folder, one subfolder per user, and serves them over CalDAV,
// CardDAV (github.com/emersion/go-webdav) and WebDAV (golang.org/x/net/webdav).
//
// It does no authentication: the caller puts the user in the request context
// (the appauth middleware does) and hands davstore a [UserFunc] that reads it
// back. Every request is confined to that user's own subfolder.
//
// URL layout under the prefix (for example "/dav"):
//
//	/                              current-user-principal discovery
//	/principals/USER/              the principal (calendar and address-book home sets)
//	/calendars/USER/               calendar home; /calendars/USER/CAL/OBJ.ics
//	/contacts/USER/                address-book home; /contacts/USER/BOOK/OBJ.vcf
//	/files/USER/                   WebDAV files
//
// On disk, under the root folder, each user's folder is named after the
// user's stable ID, never the login (see [folderOf]); CAL, BOOK and OBJ
// become file names (see [encodeName]):
//
//	ID/calendars/CAL/.calendar.json  CAL/.changes.json  CAL/OBJ.ics
//	ID/contacts/BOOK/.addressbook.json  BOOK/.changes.json  BOOK/OBJ.vcf
//	ID/files/...
package davstore

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/net/webdav"
)

// User is who a request acts for.
type User struct {
	// Login is the name in the user's URLs (/calendars/LOGIN/...).
	Login string
	// ID is the directory's stable ID of the account; it names the data
	// folder, so a new account that is given a deleted one's login starts
	// empty.
	ID string
	// ReadOnly is shown in current-user-privilege-set; refusing writes is
	// the authentication middleware's job.
	ReadOnly bool
}

// UserFunc returns the user a request acts for, from the request's context,
// or an error when there is none.
type UserFunc func(ctx context.Context) (User, error)

// Store is the DAV storage of all users under one folder. It implements
// caldav.Backend and carddav.Backend and, through [Store.ServeHTTP], routes
// every DAV request under its prefix. It is safe for concurrent use.
type Store struct {
	root   string
	prefix string
	user   UserFunc
	*shared
}

// shared is the state of a Store that every [Store.At] copy shares.
type shared struct {
	// mu serializes writes to calendars and address books, so an
	// If-Match/If-None-Match check and the write that follows are atomic.
	mu sync.Mutex

	filesMu sync.Mutex
	files   map[filesKey]*webdav.Handler

	// conds makes a conditional file request's check and write atomic,
	// one lock per user's folder (by ID), so that a slow upload holds up
	// no other user; guarded by filesMu.
	conds map[string]*sync.Mutex
}

// filesKey names one user's files handler.
type filesKey struct{ login, id string }

// New returns a Store keeping its data under root (created if missing) and
// serving URLs under prefix (such as "/dav"; "" for the server root).
func New(root, prefix string, user UserFunc) (*Store, error) {
	if user == nil {
		return nil, errors.New("davstore: missing UserFunc")
	}
	prefix = strings.TrimSuffix(prefix, "/")
	if prefix != "" && !strings.HasPrefix(prefix, "/") {
		return nil, fmt.Errorf("davstore: prefix %q must start with a slash", prefix)
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("davstore: %w", err)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("davstore: %w", err)
	}
	return &Store{root: abs, prefix: prefix, user: user, shared: &shared{files: map[filesKey]*webdav.Handler{}, conds: map[string]*sync.Mutex{}}}, nil
}

// At returns the Store serving the same data under another prefix (such
// as "/remote.php/dav", where Nextcloud clients look), sharing its locks.
func (s *Store) At(prefix string) *Store {
	c := *s
	c.prefix = strings.TrimSuffix(prefix, "/")
	return &c
}

// PrincipalPath is the URL path of user's principal.
func (s *Store) PrincipalPath(user string) string { return s.prefix + "/principals/" + user + "/" }

// CalendarHomePath is the URL path of user's calendar home set.
func (s *Store) CalendarHomePath(user string) string { return s.prefix + "/calendars/" + user + "/" }

// AddressBookHomePath is the URL path of user's address-book home set.
func (s *Store) AddressBookHomePath(user string) string {
	return s.prefix + "/contacts/" + user + "/"
}

// FilesPath is the URL path of user's WebDAV folder.
func (s *Store) FilesPath(user string) string { return s.prefix + "/files/" + user + "/" }

// Area names the part of the DAV tree a URL path is in: "calendars",
// "contacts", "files", or "" for the root and the principals (discovery).
// ok is false for a path outside the prefix.
func (s *Store) Area(urlPath string) (area string, ok bool) {
	rest, ok := s.trim(urlPath)
	if !ok {
		return "", false
	}
	first, _, _ := strings.Cut(strings.TrimPrefix(rest, "/"), "/")
	switch first {
	case "calendars", "contacts", "files":
		return first, true
	}
	return "", true
}

// trim returns urlPath without the prefix, starting with "/".
func (s *Store) trim(urlPath string) (string, bool) {
	if urlPath == s.prefix {
		return "/", true
	}
	rest, ok := strings.CutPrefix(urlPath, s.prefix+"/")
	if !ok {
		return "", false
	}
	return "/" + rest, true
}

// userDir is the folder of the data of the user with this ID.
func (s *Store) userDir(id string) (string, error) {
	if id == "" {
		return "", webdavError(http.StatusUnauthorized, "davstore: user without an ID")
	}
	return filepath.Join(s.root, folderOf(id)), nil
}

// currentUser returns the request's user or an error for ServeError.
func (s *Store) currentUser(ctx context.Context) (User, error) {
	u, err := s.user(ctx)
	if err != nil || u.Login == "" || u.ID == "" {
		return User{}, webdavError(http.StatusUnauthorized, "davstore: no user in the request context")
	}
	return u, nil
}

// CurrentUserPrincipal implements webdav.UserPrincipalBackend.
func (s *Store) CurrentUserPrincipal(ctx context.Context) (string, error) {
	u, err := s.currentUser(ctx)
	if err != nil {
		return "", err
	}
	return s.PrincipalPath(u.Login), nil
}
