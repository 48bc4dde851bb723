package davstore

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Every calendar and address book keeps a change log in .changes.json: a
// counter that every write and delete of an object raises, and the last
// change of each object name (deletions included, as tombstones), so that
// REPORT sync-collection (RFC 6578) can tell a client what changed and what
// was deleted since its token. The log is bounded: beyond maxChanges names,
// the oldest are dropped and tokens from before them are refused, so the
// client does a full resync.

const changesFile = ".changes.json"

// maxChanges bounds the names a change log remembers (a variable for tests).
var maxChanges = 2000

// changeLog is what .changes.json holds.
type changeLog struct {
	// Instance is random, new for each collection, so a token of a deleted
	// collection is refused by a new one of the same name.
	Instance string `json:"instance"`
	// Seq counts the changes so far.
	Seq uint64 `json:"seq"`
	// Oldest is the lowest token still valid: changes up to it were dropped.
	Oldest uint64 `json:"oldest"`
	// Changes are in ascending Seq, one per name.
	Changes []change `json:"changes,omitempty"`
}

// change is the last change of one object.
type change struct {
	Seq     uint64 `json:"seq"`
	Name    string `json:"name"`
	Deleted bool   `json:"deleted,omitempty"`
}

// newChangeLog is the log of a new (or older, log-less) collection.
func newChangeLog() *changeLog {
	b := make([]byte, 8)
	rand.Read(b) // never fails (crypto/rand)
	return &changeLog{Instance: hex.EncodeToString(b)}
}

// loadChanges returns the change log of the collection in dir, creating it
// when missing. The caller holds s.mu.
func loadChanges(dir string) (*changeLog, error) {
	var l changeLog
	err := readJSON(filepath.Join(dir, changesFile), &l)
	if errors.Is(err, os.ErrNotExist) {
		nl := newChangeLog()
		if err := writeJSON(filepath.Join(dir, changesFile), nl); err != nil {
			return nil, err
		}
		return nl, nil
	}
	if err != nil || l.Instance == "" {
		// A corrupt log: start a new instance, which refuses every old
		// token, so clients resync in full rather than miss a change.
		nl := newChangeLog()
		if err := writeJSON(filepath.Join(dir, changesFile), nl); err != nil {
			return nil, err
		}
		return nl, nil
	}
	return &l, nil
}

// recordChange notes that the object name of the collection in dir changed
// or was deleted. It is called before the object is written or removed, so
// a crash in between costs a client one needless fetch, never a missed
// change. The caller holds s.mu.
func recordChange(dir, name string, deleted bool) error {
	l, err := loadChanges(dir)
	if err != nil {
		return fsError(err)
	}
	l.Seq++
	kept := l.Changes[:0]
	for _, c := range l.Changes {
		if c.Name != name {
			kept = append(kept, c)
		}
	}
	l.Changes = append(kept, change{Seq: l.Seq, Name: name, Deleted: deleted})
	if drop := len(l.Changes) - maxChanges; drop > 0 {
		l.Oldest = l.Changes[drop-1].Seq
		l.Changes = append([]change(nil), l.Changes[drop:]...)
	}
	return fsError(writeJSON(filepath.Join(dir, changesFile), l))
}

// token is the collection's DAV:sync-token, an opaque URI.
func (l *changeLog) token() string {
	return "data:,appauth-sync-" + l.Instance + "-" + strconv.FormatUint(l.Seq, 10)
}

// ctag is the collection's CalendarServer getctag: it changes with every
// change of a member.
func (l *changeLog) ctag() string { return l.Instance + "-" + strconv.FormatUint(l.Seq, 10) }

// since returns the changes after token, or ok false when the token is not
// one of this collection's or is older than the log remembers.
func (l *changeLog) since(token string) (changes []change, ok bool) {
	rest, ok := strings.CutPrefix(token, "data:,appauth-sync-"+l.Instance+"-")
	if !ok {
		return nil, false
	}
	n, err := strconv.ParseUint(rest, 10, 64)
	if err != nil || n < l.Oldest || n > l.Seq {
		return nil, false
	}
	for _, c := range l.Changes {
		if c.Seq > n {
			changes = append(changes, c)
		}
	}
	return changes, true
}
