package davstore

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/net/webdav"
)

// propFS is a webdav.FileSystem on a folder whose files and folders keep
// dead properties (set with PROPPATCH), in one JSON file beside the folder.
// golang.org/x/net/webdav's Dir has none, and WebDAV clients (and litmus)
// expect them.
type propFS struct {
	dir  webdav.Dir
	file string // where the properties are saved

	mu    sync.Mutex
	props map[string][]webdav.Property // by cleaned name ("/a/b")
}

var _ webdav.FileSystem = (*propFS)(nil)

func newPropFS(dir, propsFile string) (*propFS, error) {
	p := &propFS{dir: webdav.Dir(dir), file: propsFile, props: map[string][]webdav.Property{}}
	if err := readJSON(propsFile, &p.props); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return p, nil
}

func cleanName(name string) string {
	return path.Clean("/" + name)
}

// save writes the properties; the caller holds mu.
func (p *propFS) save() error { return writeJSON(p.file, p.props) }

// forget drops the properties of name and everything under it; the caller
// holds mu. It reports whether anything was dropped.
func (p *propFS) forget(name string) bool {
	changed := false
	for k := range p.props {
		if k == name || strings.HasPrefix(k, name+"/") || name == "/" {
			delete(p.props, k)
			changed = true
		}
	}
	return changed
}

func (p *propFS) Mkdir(ctx context.Context, name string, perm os.FileMode) error {
	return p.dir.Mkdir(ctx, name, perm)
}

// Stat answers from the request's stat memo (see withStatMemo) when it
// has one.
func (p *propFS) Stat(ctx context.Context, name string) (os.FileInfo, error) {
	m, _ := ctx.Value(statMemoKey{}).(*statMemo)
	if m == nil {
		return p.dir.Stat(ctx, name)
	}
	name = cleanName(name)
	if m.st != nil && m.name == name {
		return m.st, nil
	}
	st, err := p.dir.Stat(ctx, name)
	if err == nil {
		m.name, m.st = name, st
	}
	return st, err
}

// statMemo is the last stat of one read-only request: x/net/webdav stats
// the target of a PROPFIND, then opens it twice (for the names of its
// properties, then their values), and opens each member of a folder twice
// in a row, each a stat here. One entry serves all of them and keeps a
// PROPFIND of a huge tree in constant memory.
type statMemo struct {
	name string
	st   os.FileInfo
}

type statMemoKey struct{}

// withStatMemo gives a request that only reads (PROPFIND) a stat memo.
func withStatMemo(r *http.Request) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), statMemoKey{}, &statMemo{}))
}

func (p *propFS) RemoveAll(ctx context.Context, name string) error {
	if err := p.dir.RemoveAll(ctx, name); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.forget(cleanName(name)) {
		return p.save()
	}
	return nil
}

func (p *propFS) Rename(ctx context.Context, oldName, newName string) error {
	if err := p.dir.Rename(ctx, oldName, newName); err != nil {
		return err
	}
	oldName, newName = cleanName(oldName), cleanName(newName)
	p.mu.Lock()
	defer p.mu.Unlock()
	moved := map[string][]webdav.Property{}
	for k, v := range p.props {
		if k == oldName || strings.HasPrefix(k, oldName+"/") {
			moved[newName+strings.TrimPrefix(k, oldName)] = v
			delete(p.props, k)
		}
	}
	if len(moved) == 0 {
		return nil
	}
	p.forget(newName)
	for k, v := range moved {
		p.props[k] = v
	}
	return p.save()
}

// OpenFile opens name. In a PROPFIND (a request with a stat memo), a
// read-only open is only a stat until the file is read: x/net/webdav
// opens each file twice (for the names of its properties, then their
// values) to read nothing but its metadata, and an open costs four system
// calls where a stat costs one, none with the memo. Elsewhere (a GET reads
// the file) the file is opened at once.
func (p *propFS) OpenFile(ctx context.Context, name string, flag int, perm os.FileMode) (webdav.File, error) {
	readOnly := flag&(os.O_WRONLY|os.O_RDWR|os.O_CREATE|os.O_TRUNC|os.O_APPEND|os.O_EXCL) == 0
	if _, memo := ctx.Value(statMemoKey{}).(*statMemo); memo && readOnly {
		st, err := p.Stat(ctx, name)
		if err != nil {
			return nil, err
		}
		return &propFile{fs: p, name: cleanName(name), readOnly: true, st: st, ctx: ctx}, nil
	}
	f, err := p.dir.OpenFile(ctx, name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &propFile{File: f, fs: p, name: cleanName(name), readOnly: readOnly}, nil
}

// propFile is a file of a propFS, whose dead properties live in the propFS.
// One opened lazily (File nil, st set) opens the file on its first Read,
// Seek or Readdir.
type propFile struct {
	File     webdav.File
	fs       *propFS
	name     string
	readOnly bool
	st       os.FileInfo     // a read-only file's first Stat
	ctx      context.Context // for the deferred open
	err      error           // of the deferred open
}

var _ webdav.File = (*propFile)(nil)

// file is the open file, opened now if it was deferred.
func (f *propFile) file() (webdav.File, error) {
	if f.File == nil && f.err == nil {
		f.File, f.err = f.fs.dir.OpenFile(f.ctx, f.name, os.O_RDONLY, 0)
	}
	return f.File, f.err
}

// Stat answers a read-only file's later calls from its first: a PROPFIND
// asks for the live properties and again for the file ID. A file open for
// writing is asked anew (a PUT stats it after writing).
func (f *propFile) Stat() (os.FileInfo, error) {
	if f.st != nil {
		return f.st, nil
	}
	st, err := f.File.Stat()
	if err == nil && f.readOnly {
		f.st = st
	}
	return st, err
}

func (f *propFile) Read(p []byte) (int, error) {
	file, err := f.file()
	if err != nil {
		return 0, err
	}
	return file.Read(p)
}

func (f *propFile) Seek(offset int64, whence int) (int64, error) {
	file, err := f.file()
	if err != nil {
		return 0, err
	}
	return file.Seek(offset, whence)
}

func (f *propFile) Readdir(count int) ([]fs.FileInfo, error) {
	file, err := f.file()
	if err != nil {
		return nil, err
	}
	return file.Readdir(count)
}

func (f *propFile) Write(p []byte) (int, error) {
	if f.File == nil {
		return 0, &os.PathError{Op: "write", Path: f.name, Err: os.ErrPermission} // opened read-only
	}
	return f.File.Write(p)
}

func (f *propFile) Close() error {
	if f.File == nil {
		return nil
	}
	return f.File.Close()
}

var _ webdav.DeadPropsHolder = (*propFile)(nil)

func (f *propFile) DeadProps() (map[xml.Name]webdav.Property, error) {
	own := f.ownCloudProps()
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	dead := f.fs.props[f.name]
	m := make(map[xml.Name]webdav.Property, len(dead)+len(own))
	for _, prop := range dead {
		m[prop.XMLName] = prop
	}
	for _, prop := range own {
		m[prop.XMLName] = prop
	}
	return m, nil
}

// nsOwnCloud is the namespace of the properties Nextcloud clients read.
const nsOwnCloud = "http://owncloud.org/ns"

// ownCloudProps are the file ID and permissions that Nextcloud clients
// (the desktop client, nextcloudcmd) refuse to sync without: the ID is the
// file's inode, kept across renames, so a move is seen as one; the
// permissions are all of them (the middleware refuses what a read-only
// credential may not do).
func (f *propFile) ownCloudProps() []webdav.Property {
	st, err := f.Stat()
	if err != nil {
		return nil
	}
	id := fileID(st)
	perms := permsFile
	if st.IsDir() {
		perms = permsDir
	}
	// Digits and letters: nothing to escape. One buffer holds both IDs:
	// the file ID, then the zeros that pad it to 8 digits, the file ID
	// again and the suffix.
	buf := make([]byte, 0, 2*20+len("00000000ocappauth"))
	buf = strconv.AppendUint(buf, id, 10)
	n := len(buf)
	for i := n; i < 8; i++ {
		buf = append(buf, '0')
	}
	buf = strconv.AppendUint(buf, id, 10) // after the zeros: "%08d"
	buf = append(buf, "ocappauth"...)
	fileid, ocid := buf[:n:n], buf[n:]
	return []webdav.Property{
		{XMLName: xml.Name{Space: nsOwnCloud, Local: "id"}, InnerXML: ocid},
		{XMLName: xml.Name{Space: nsOwnCloud, Local: "fileid"}, InnerXML: fileid},
		{XMLName: xml.Name{Space: nsOwnCloud, Local: "permissions"}, InnerXML: perms},
	}
}

// The permissions of ownCloudProps, shared by every answer (never written to).
var (
	permsFile = []byte("RGDNVW")
	permsDir  = []byte("RGDNVCK")
)

func (f *propFile) Patch(patches []webdav.Proppatch) ([]webdav.Propstat, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	current := map[xml.Name]webdav.Property{}
	for _, prop := range f.fs.props[f.name] {
		current[prop.XMLName] = prop
	}
	stat := webdav.Propstat{Status: http.StatusOK}
	for _, patch := range patches {
		for _, prop := range patch.Props {
			stat.Props = append(stat.Props, webdav.Property{XMLName: prop.XMLName})
			if patch.Remove {
				delete(current, prop.XMLName)
			} else {
				current[prop.XMLName] = prop
			}
		}
	}
	list := make([]webdav.Property, 0, len(current))
	for _, prop := range current {
		list = append(list, prop)
	}
	if len(list) == 0 {
		delete(f.fs.props, f.name)
	} else {
		f.fs.props[f.name] = list
	}
	if err := f.fs.save(); err != nil {
		return nil, err
	}
	return []webdav.Propstat{stat}, nil
}

// maxPropBody bounds a PROPFIND or PROPPATCH body.
const maxPropBody = 1 << 20

// checkXMLNamespaces refuses (400) a PROPFIND or PROPPATCH body that binds a
// prefix to the empty namespace name ("xmlns:p=\"\""), which XML Namespaces
// 1.0 forbids but encoding/xml accepts. It reports whether the request may
// go on, with its body restored.
func checkXMLNamespaces(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != "PROPFIND" && r.Method != "PROPPATCH" || r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return true // no body: PROPFIND allprop
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPropBody))
	if err != nil {
		http.Error(w, "Request Entity Too Large", http.StatusRequestEntityTooLarge)
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	// An empty namespace name is an attribute value of two quotes in a
	// row; a body without one (most) needs no parse.
	if !bytes.Contains(body, []byte(`""`)) && !bytes.Contains(body, []byte(`''`)) {
		return true
	}
	d := xml.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := d.RawToken()
		if err != nil {
			return true // EOF, or malformed XML that x/net/webdav refuses itself
		}
		if se, ok := tok.(xml.StartElement); ok {
			for _, a := range se.Attr {
				if a.Name.Space == "xmlns" && a.Value == "" {
					http.Error(w, "Bad Request: empty namespace name for a prefix", http.StatusBadRequest)
					return false
				}
			}
		}
	}
}
