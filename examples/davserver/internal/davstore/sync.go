package davstore

import (
	"bytes"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// go-webdav v0.6.0 knows neither REPORT sync-collection (RFC 6578) nor the
// properties clients use to find out cheaply whether a collection changed
// (getctag, sync-token), what it supports (supported-report-set) and what
// they may do (current-user-privilege-set). This file answers those.

// Namespaces of the properties and reports below.
const (
	nsDAV     = "DAV:"
	nsCalDAV  = "urn:ietf:params:xml:ns:caldav"
	nsCardDAV = "urn:ietf:params:xml:ns:carddav"
	nsCS      = "http://calendarserver.org/ns/"
)

// maxReportBody bounds a REPORT body that davstore reads itself.
const maxReportBody = 1 << 20

// syncCollection is the body of a REPORT sync-collection.
type syncCollection struct {
	XMLName   xml.Name `xml:"DAV: sync-collection"`
	SyncToken string   `xml:"DAV: sync-token"`
	SyncLevel string   `xml:"DAV: sync-level"`
	Prop      propList `xml:"DAV: prop"`
}

// propList is a DAV:prop element of property names.
type propList struct {
	Names []struct {
		XMLName xml.Name
	} `xml:",any"`
}

// names returns the property names, at most maxProps of them.
func (p propList) names() []xml.Name {
	const maxProps = 100
	var out []xml.Name
	for i, n := range p.Names {
		if i == maxProps {
			break
		}
		out = append(out, n.XMLName)
	}
	return out
}

// readBody reads a bounded XML request body and puts it back for the next
// handler. ok is false when it answered 413 itself.
func readBody(w http.ResponseWriter, r *http.Request) (body []byte, ok bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxReportBody))
	if err != nil {
		http.Error(w, "Request Entity Too Large", http.StatusRequestEntityTooLarge)
		return nil, false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return body, true
}

// rootElement returns the name of the document element of an XML body.
func rootElement(body []byte) xml.Name {
	d := xml.NewDecoder(bytes.NewReader(body))
	for range 64 { // a prolog, comments and the like come first
		tok, err := d.Token()
		if err != nil {
			return xml.Name{}
		}
		if se, ok := tok.(xml.StartElement); ok {
			return se.Name
		}
	}
	return xml.Name{}
}

// collectionDir returns the folder of the calendar or address book at
// urlPath (area "calendars" or "contacts"), or ok false when urlPath is not
// one of the user's collections.
func (s *Store) collectionDir(urlPath, area string, u User) (string, bool) {
	p, err := s.parse(urlPath, area, u)
	if err != nil || p.coll == "" || p.obj != "" {
		return "", false
	}
	dir, _, err := s.dirs(p, area)
	if err != nil {
		return "", false
	}
	meta := calendarMeta
	if area == "contacts" {
		meta = addressBookMeta
	}
	if _, err := os.Stat(filepath.Join(dir, meta)); err != nil {
		return "", false
	}
	return dir, true
}

// serveSyncCollection answers a REPORT sync-collection on a calendar or an
// address book: the members changed since the request's token (all of them
// without one), the deleted ones as 404, and the new token. A token that is
// not the collection's, or older than its change log, is 403
// DAV:valid-sync-token: the client then syncs in full.
func (s *Store) serveSyncCollection(w http.ResponseWriter, r *http.Request, area string, u User, body []byte) {
	var req syncCollection
	if err := xml.Unmarshal(body, &req); err != nil {
		http.Error(w, "Bad Request: malformed sync-collection", http.StatusBadRequest)
		return
	}
	dir, ok := s.collectionDir(r.URL.Path, area, u)
	if !ok {
		writeDAVError(w, http.StatusForbidden, "supported-report")
		return
	}
	if lvl := strings.TrimSpace(req.SyncLevel); lvl != "" && lvl != "1" && lvl != "infinite" {
		http.Error(w, "Bad Request: sync-level", http.StatusBadRequest)
		return
	}
	collPath := r.URL.Path
	if !strings.HasSuffix(collPath, "/") {
		collPath += "/"
	}

	// The token and the members are read under the write lock: a write
	// records its change before it writes, so a token read unlocked could
	// name a change whose object is not written yet. The lock is let go
	// before the answer is written (the short error answers fit in the
	// socket's buffer): a client that does not read it would otherwise
	// hold up every write of every user.
	s.mu.Lock()
	locked := true
	unlock := func() {
		if locked {
			locked = false
			s.mu.Unlock()
		}
	}
	defer unlock()
	l, err := loadChanges(dir)
	if err != nil {
		serveError(w, fsError(err))
		return
	}
	var names []string
	deleted := map[string]bool{}
	if token := strings.TrimSpace(req.SyncToken); token == "" {
		entries, err := os.ReadDir(dir)
		if err != nil {
			serveError(w, fsError(err))
			return
		}
		for _, e := range entries {
			if name, ok := decodeName(e.Name()); ok && !e.IsDir() {
				names = append(names, name)
			}
		}
	} else {
		changes, ok := l.since(token)
		if !ok {
			writeDAVError(w, http.StatusForbidden, "valid-sync-token")
			return
		}
		for _, c := range changes {
			names = append(names, c.Name)
			deleted[c.Name] = c.Deleted
		}
	}

	props := req.Prop.names()
	var out bytes.Buffer
	out.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	out.WriteString(`<multistatus xmlns="DAV:">`)
	for _, name := range names {
		href := escapePath(collPath + name)
		var b []byte
		var mod time.Time
		if !deleted[name] {
			file, err := objectFile(dir, name)
			if err == nil {
				b, mod, err = readStored(file)
			}
			if err != nil {
				deleted[name] = true // removed without a log entry
			}
		}
		if deleted[name] {
			out.WriteString(`<response><href>` + href + `</href><status>HTTP/1.1 404 Not Found</status></response>`)
			continue
		}
		out.WriteString(`<response><href>` + href + `</href>`)
		writeMemberProps(&out, area, props, b, mod)
		out.WriteString(`</response>`)
	}
	out.WriteString(`<sync-token>` + escapeText(l.token()) + `</sync-token></multistatus>`)
	unlock()
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.WriteHeader(http.StatusMultiStatus)
	w.Write(out.Bytes())
}

// objectFile is the file of object name in the collection folder dir.
func objectFile(dir, name string) (string, error) {
	enc, err := encodeName(name)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, enc), nil
}

// writeMemberProps writes the propstats of one member (stored bytes b,
// modified at mod) for the requested properties.
func writeMemberProps(out *bytes.Buffer, area string, props []xml.Name, b []byte, mod time.Time) {
	contentType, dataName := "text/calendar; charset=utf-8", xml.Name{Space: nsCalDAV, Local: "calendar-data"}
	if area == "contacts" {
		contentType, dataName = "text/vcard; charset=utf-8", xml.Name{Space: nsCardDAV, Local: "address-data"}
	}
	var found, missing bytes.Buffer
	for _, n := range props {
		var value string
		switch {
		case n == xml.Name{Space: nsDAV, Local: "getetag"}:
			value = escapeText(`"` + etagOf(b) + `"`)
		case n == xml.Name{Space: nsDAV, Local: "getcontenttype"}:
			value = contentType
		case n == xml.Name{Space: nsDAV, Local: "getcontentlength"}:
			value = strconv.Itoa(len(b))
		case n == xml.Name{Space: nsDAV, Local: "getlastmodified"}:
			value = mod.UTC().Format(http.TimeFormat)
		case n == xml.Name{Space: nsDAV, Local: "resourcetype"}:
			value = ""
		case n == dataName:
			value = escapeText(string(b))
		default:
			writeEmpty(&missing, n)
			continue
		}
		writeElement(&found, n, value)
	}
	if found.Len() > 0 || missing.Len() == 0 {
		out.WriteString(`<propstat><prop>` + found.String() + `</prop><status>HTTP/1.1 200 OK</status></propstat>`)
	}
	if missing.Len() > 0 {
		out.WriteString(`<propstat><prop>` + missing.String() + `</prop><status>HTTP/1.1 404 Not Found</status></propstat>`)
	}
}

// writeElement writes <name>inner</name>, inner being XML already, with the
// name's namespace as the default one.
func writeElement(out *bytes.Buffer, n xml.Name, inner string) {
	out.WriteString(`<` + n.Local + ` xmlns="` + escapeText(n.Space) + `">` + inner + `</` + n.Local + `>`)
}

// writeEmpty writes an empty element named n.
func writeEmpty(out *bytes.Buffer, n xml.Name) {
	out.WriteString(`<` + n.Local + ` xmlns="` + escapeText(n.Space) + `"/>`)
}

func escapeText(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// escapePath is a URL path as an href.
func escapePath(p string) string { return escapeText((&url.URL{Path: p}).EscapedPath()) }

// writeDAVError answers code with a DAV:error body naming a precondition.
func writeDAVError(w http.ResponseWriter, code int, condition string) {
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.WriteHeader(code)
	io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<error xmlns="DAV:"><`+condition+`/></error>`)
}
