package davstore

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	gowebdav "github.com/emersion/go-webdav"
)

// maxName bounds a name (user, collection or object) in bytes.
const maxName = 200

// encodeName turns a user, collection or object name from a URL into one
// file name: names of plain characters stay as they are, anything else (a
// leading dot, a slash, a backslash, NUL, spaces, non-ASCII) becomes "~" and
// the name in hex, so a name can never point outside its folder, collide with
// the metadata files (which start with a dot), or with another name.
func encodeName(name string) (string, error) {
	if name == "" || len(name) > maxName {
		return "", webdavError(http.StatusNotFound, "davstore: bad name")
	}
	plain := name[0] != '.' && name[0] != '~'
	for i := 0; plain && i < len(name); i++ {
		c := name[i]
		plain = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == '-' || c == '@' || c == '+'
	}
	if plain {
		return name, nil
	}
	return "~" + hex.EncodeToString([]byte(name)), nil
}

// decodeName reverses encodeName; ok is false for files that are not names
// (metadata, temporary files).
func decodeName(file string) (string, bool) {
	if file == "" || file[0] == '.' {
		return "", false
	}
	if rest, ok := strings.CutPrefix(file, "~"); ok {
		b, err := hex.DecodeString(rest)
		if err != nil {
			return "", false
		}
		return string(b), true
	}
	return file, true
}

// folderOf names the data folder of the user with this ID: "u=" and the ID
// in lower-case base32hex, or "h=" and its SHA-256 when that would be too
// long for a file name. The "=" keeps these apart from the login-named
// folders of older versions (see [encodeName]), which [Store.MigrateLogins]
// renames.
func folderOf(id string) string {
	if len(id) <= maxName/2 {
		return "u=" + strings.ToLower(base32.HexEncoding.WithPadding(base32.NoPadding).EncodeToString([]byte(id)))
	}
	sum := sha256.Sum256([]byte(id))
	return "h=" + hex.EncodeToString(sum[:])
}

// webdavError is an error that go-webdav serves with the given status; the
// status can also be read back with [statusOf].
func webdavError(code int, msg string) error {
	return gowebdav.NewHTTPError(code, &statusError{code: code, msg: msg})
}

// statusError carries an HTTP status inside a go-webdav error.
type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string { return e.msg }

// statusOf returns the HTTP status of an error made by webdavError, or 500.
func statusOf(err error) int {
	if se, ok := errors.AsType[*statusError](err); ok {
		return se.code
	}
	return http.StatusInternalServerError
}

// fsError maps a file-system error to an HTTP error for go-webdav.
func fsError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return webdavError(http.StatusNotFound, "davstore: not found")
	}
	if errors.Is(err, fs.ErrExist) {
		return webdavError(http.StatusMethodNotAllowed, "davstore: already exists")
	}
	// go-webdav writes an error's text into the 500 body; a file-system
	// error names the path on disk.
	return webdavError(http.StatusInternalServerError, "davstore: storage error")
}

// etagOf is the entity tag of a stored object: a hash of its bytes.
func etagOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// writeFileAtomic writes b to name through a temporary file and a rename, so
// readers never see half an object.
func writeFileAtomic(name string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(name), ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o600)
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

func writeJSON(name string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(name, append(b, '\n'))
}

func readJSON(name string, v any) error {
	b, err := os.ReadFile(name)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// davPath is a parsed URL path inside one area (calendars or contacts):
// /AREA/USER/COLL/OBJ, where COLL and OBJ may be empty.
type davPath struct {
	user, coll, obj string
	id              string // the user's stable ID, which names their folder
}

// parse splits urlPath, which must be under the prefix and area, and checks
// that its user is the request's user (403 otherwise).
func (s *Store) parse(urlPath, area string, current User) (davPath, error) {
	var p davPath
	rest, ok := s.trim(urlPath)
	if !ok {
		return p, webdavError(http.StatusNotFound, "davstore: outside the DAV tree")
	}
	rest, ok = strings.CutPrefix(rest, "/"+area+"/")
	if !ok {
		return p, webdavError(http.StatusNotFound, "davstore: not a "+area+" path")
	}
	segs := strings.Split(strings.TrimSuffix(rest, "/"), "/")
	if len(segs) > 3 {
		return p, webdavError(http.StatusNotFound, "davstore: path too deep")
	}
	for _, seg := range segs {
		if seg == "" || seg == "." || seg == ".." {
			return p, webdavError(http.StatusNotFound, "davstore: bad path")
		}
	}
	p.user, p.id = segs[0], current.ID
	if p.user != current.Login {
		return p, webdavError(http.StatusForbidden, "davstore: another user's data")
	}
	if len(segs) > 1 {
		p.coll = segs[1]
	}
	if len(segs) > 2 {
		p.obj = segs[2]
	}
	return p, nil
}

// dirs returns the folder of p's collection and the file of its object (the
// latter empty when p names no object).
func (s *Store) dirs(p davPath, area string) (collDir, objFile string, err error) {
	udir, err := s.userDir(p.id)
	if err != nil {
		return "", "", err
	}
	c, err := encodeName(p.coll)
	if err != nil {
		return "", "", err
	}
	collDir = filepath.Join(udir, area, c)
	if p.obj != "" {
		o, err := encodeName(p.obj)
		if err != nil {
			return "", "", err
		}
		objFile = filepath.Join(collDir, o)
	}
	return collDir, objFile, nil
}
