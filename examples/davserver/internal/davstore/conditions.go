package davstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/emersion/go-ical"
	gowebdav "github.com/emersion/go-webdav"
	"github.com/emersion/go-webdav/caldav"
	"golang.org/x/net/webdav"
)

// Conditional requests (RFC 7232, RFC 4918 10.4): every write honours
// If-Match and If-None-Match with 412, so a client with a stale copy never
// overwrites or deletes a newer one. go-webdav hands PUT's conditions to
// the backend but not DELETE's, and x/net/webdav ignores both headers and
// the entity tags in an If header; this file adds what they leave out.

// conditionsKey is the context key of a request's conditions.
type conditionsKey struct{}

// conditions are a request's If-Match and If-None-Match headers.
type conditions struct {
	ifMatch, ifNoneMatch gowebdav.ConditionalMatch
}

// withConditions puts r's If-Match and If-None-Match into its context, for
// the backend methods that go-webdav calls without them (DELETE).
func withConditions(r *http.Request) *http.Request {
	c := conditions{
		ifMatch:     gowebdav.ConditionalMatch(r.Header.Get("If-Match")),
		ifNoneMatch: gowebdav.ConditionalMatch(r.Header.Get("If-None-Match")),
	}
	if !c.ifMatch.IsSet() && !c.ifNoneMatch.IsSet() {
		return r
	}
	return r.WithContext(context.WithValue(r.Context(), conditionsKey{}, c))
}

// checkDeleteConditions applies the request's conditions to a DELETE of
// the object in file, or of a whole collection when file is "" (which has
// no entity tag: only If-Match: * matches it). The caller holds s.mu.
func checkDeleteConditions(ctx context.Context, file string) error {
	c, ok := ctx.Value(conditionsKey{}).(conditions)
	if !ok {
		return nil
	}
	if file != "" {
		return checkConditions(file, c.ifNoneMatch, c.ifMatch)
	}
	if c.ifNoneMatch.IsSet() || c.ifMatch.IsSet() && !c.ifMatch.IsWildcard() {
		return webdavError(http.StatusPreconditionFailed, "davstore: precondition failed")
	}
	return nil
}

// checkUIDConflict refuses (CalDAV no-uid-conflict, RFC 4791 5.3.2.1) a
// calendar object whose UID another object in the calendar folder dir
// already has; file is the object being written. The caller holds s.mu.
func checkUIDConflict(dir, file, uid string) error {
	if uid == "" {
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fsError(err)
	}
	needle := []byte(uid)
	for _, e := range entries {
		other := filepath.Join(dir, e.Name())
		if _, ok := decodeName(e.Name()); !ok || e.IsDir() || other == file {
			continue
		}
		b, err := os.ReadFile(other)
		if err != nil || !bytes.Contains(b, needle) {
			continue // cheap filter before parsing
		}
		cal, err := ical.NewDecoder(bytes.NewReader(b)).Decode()
		if err != nil {
			continue
		}
		if _, otherUID, err := caldav.ValidateCalendarObject(cal); err == nil && otherUID == uid {
			return caldav.NewPreconditionError(caldav.PreconditionNoUIDConflict)
		}
	}
	return nil
}

// fileETag is the entity tag x/net/webdav gives a file (modification time
// and size, quoted); ok is false for a missing file or a folder.
func fileETag(ctx context.Context, fsys webdav.FileSystem, name string) (etag string, exists, ok bool, err error) {
	fi, err := fsys.Stat(ctx, name)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, false, nil
	}
	if err != nil {
		return "", false, false, err
	}
	if fi.IsDir() {
		return "", true, false, nil
	}
	return fmt.Sprintf(`"%x%x"`, fi.ModTime().UnixNano(), fi.Size()), true, true, nil
}

// matchesAny reports whether the If-Match or If-None-Match value list
// (RFC 7232 3.1: "*" or entity tags) matches the current entity tag
// (strong comparison: weak tags never match).
func matchesAny(list, etag string, exists bool) bool {
	if strings.TrimSpace(list) == "*" {
		return exists
	}
	for t := range strings.SplitSeq(list, ",") {
		if t = strings.TrimSpace(t); t != "" && etag != "" && t == etag {
			return true
		}
	}
	return false
}

// checkFileConditions answers 412 (and reports false) when a write to the
// file that r addresses fails its If-Match or If-None-Match. GET and HEAD
// are left to x/net/webdav, whose http.ServeContent evaluates both.
func checkFileConditions(w http.ResponseWriter, r *http.Request, h *webdav.Handler) bool {
	ifMatch, ifNoneMatch := r.Header.Get("If-Match"), r.Header.Get("If-None-Match")
	if ifMatch == "" && ifNoneMatch == "" {
		return true
	}
	if readMethod(r.Method) {
		return true
	}
	name := strings.TrimPrefix(r.URL.Path, h.Prefix)
	etag, exists, _, err := fileETag(r.Context(), h.FileSystem, name)
	if err != nil {
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		return false
	}
	if ifMatch != "" && !matchesAny(ifMatch, etag, exists) || ifNoneMatch != "" && matchesAny(ifNoneMatch, etag, exists) {
		http.Error(w, "Precondition Failed", http.StatusPreconditionFailed)
		return false
	}
	return true
}

// readMethod reports whether a request with method only reads a file.
func readMethod(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, "PROPFIND":
		return true
	}
	return false
}

// etagLS is a lock system that also checks the entity tags of an If
// header's conditions (x/net/webdav's memLS checks only lock tokens): a
// list whose entity tag does not match fails, and with every list failed
// x/net/webdav answers 412 (RFC 4918 10.4).
type etagLS struct {
	webdav.LockSystem
	fs webdav.FileSystem
}

// Confirm implements webdav.LockSystem.
func (l *etagLS) Confirm(now time.Time, name0, name1 string, conds ...webdav.Condition) (func(), error) {
	for _, c := range conds {
		if c.ETag == "" || name0 == "" {
			continue
		}
		etag, _, _, err := fileETag(context.Background(), l.fs, name0)
		if err != nil {
			return nil, err
		}
		if (etag != "" && etag == c.ETag) == c.Not {
			return nil, webdav.ErrConfirmationFailed
		}
	}
	return l.LockSystem.Confirm(now, name0, name1, conds...)
}
