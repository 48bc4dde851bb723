package davstore

import (
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	gowebdav "github.com/emersion/go-webdav"
	"github.com/emersion/go-webdav/caldav"
	"github.com/emersion/go-webdav/carddav"
	"golang.org/x/net/webdav"
)

// allowAll lists every method some part of the tree supports.
const allowAll = "OPTIONS, GET, HEAD, PUT, DELETE, PROPFIND, PROPPATCH, MKCOL, COPY, MOVE, LOCK, UNLOCK, REPORT, MKCALENDAR"

// maxMkcalendarBody bounds a MKCALENDAR request body.
const maxMkcalendarBody = 64 << 10

// ServeHTTP serves every DAV request under the prefix for the user that
// the [UserFunc] returns: 403 for another user's URL, 400 for a path with
// "." or ".." segments or a NUL byte. Without a user, OPTIONS gets the
// server's capabilities (DAV clients probe before they authenticate) and
// anything else 401.
func (s *Store) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user, err := s.currentUser(r.Context())
	if err != nil {
		if r.Method == http.MethodOptions {
			w.Header().Set("DAV", "1, 2, 3, calendar-access, addressbook")
			w.Header().Set("Allow", allowAll)
			w.WriteHeader(http.StatusOK)
			return
		}
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	rest, ok := s.trim(r.URL.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	if badPath(rest) {
		http.Error(w, "Bad Request: path with dot segments", http.StatusBadRequest)
		return
	}
	area, tail, _ := strings.Cut(strings.TrimPrefix(rest, "/"), "/")
	owner, sub, _ := strings.Cut(tail, "/")
	switch area {
	case "":
		s.serveRoot(w, r)
		return
	case "principals", "calendars", "contacts", "files":
	default:
		http.NotFound(w, r)
		return
	}
	if owner == "" {
		// The collections above the users' homes are not browsable.
		http.Error(w, "Forbidden", http.StatusForbidden)
		return
	}
	if owner != user.Login {
		http.Error(w, "Forbidden: another user's data", http.StatusForbidden)
		return
	}
	switch area {
	case "principals":
		if sub != "" {
			http.NotFound(w, r)
			return
		}
		if r.Method == "PROPFIND" && r.ContentLength == 0 {
			// An empty PROPFIND means allprop (RFC 4918, 9.1), which
			// go-webdav's ServePrincipal only takes spelled out.
			r.Body = io.NopCloser(strings.NewReader(`<propfind xmlns="DAV:"><allprop/></propfind>`))
			r.ContentLength = -1
			r.Header.Set("Content-Type", "application/xml")
		}
		gowebdav.ServePrincipal(w, r, &gowebdav.ServePrincipalOptions{
			CurrentUserPrincipalPath: s.PrincipalPath(user.Login),
			HomeSets: []gowebdav.BackendSuppliedHomeSet{
				caldav.NewCalendarHomeSet(s.CalendarHomePath(user.Login)),
				carddav.NewAddressBookHomeSet(s.AddressBookHomePath(user.Login)),
			},
			Capabilities: []gowebdav.Capability{caldav.CapabilityCalendar, carddav.CapabilityAddressBook},
		})
	case "calendars":
		if r.Method == "MKCALENDAR" {
			s.serveMkcalendar(w, r)
			return
		}
		s.serveCollections(w, withConditions(r), area, user, &caldav.Handler{Backend: s, Prefix: s.prefix})
	case "contacts":
		s.serveCollections(w, withConditions(r), area, user, &carddav.Handler{Backend: s, Prefix: s.prefix})
	case "files":
		s.serveFiles(w, r, user, s.FilesPath(user.Login))
	}
}

// serveFiles serves user's files with the folder's root at the URL path
// root (ending in a slash).
func (s *Store) serveFiles(w http.ResponseWriter, r *http.Request, user User, root string) {
	h, err := s.filesHandler(user, root)
	if err != nil {
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		return
	}
	if (r.Method == "COPY" || r.Method == "MOVE") && !inFiles(r.Header.Get("Destination"), root) {
		http.Error(w, "Forbidden: destination outside your files", http.StatusForbidden)
		return
	}
	if r.Method == "COPY" && r.Header.Get("Depth") != "0" && insideSource(r.URL.Path, r.Header.Get("Destination")) {
		// RFC 4918 9.8.3: x/net/webdav would copy the folder into itself
		// a thousand levels deep, its files as many times over.
		http.Error(w, "Forbidden: destination inside the source", http.StatusForbidden)
		return
	}
	if !checkXMLNamespaces(w, r) {
		return
	}
	// A conditional write's check and the write itself are atomic
	// among the user's conditional writes (unconditional ones do not wait); reads,
	// which checkFileConditions lets through, never take the lock.
	if !readMethod(r.Method) && (r.Header.Get("If-Match") != "" || r.Header.Get("If-None-Match") != "" || r.Header.Get("If") != "") {
		mu := s.condLock(user.ID)
		mu.Lock()
		defer mu.Unlock()
	}
	if r.Method == "PROPFIND" {
		r = withStatMemo(r)
	}
	if checkFileConditions(w, r, h) {
		h.ServeHTTP(w, r)
	}
}

// ServeOwnFiles serves the current user's files at root, a URL path
// without the login in it (Nextcloud's legacy "/remote.php/webdav/"),
// with the same checks as under the prefix. Mount it behind the same
// authentication (and files scope) as the Store.
func (s *Store) ServeOwnFiles(root string) http.Handler {
	root = strings.TrimSuffix(root, "/") + "/"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, err := s.currentUser(r.Context())
		if err != nil {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		rest, ok := strings.CutPrefix(r.URL.Path+"/", root)
		if !ok {
			http.NotFound(w, r)
			return
		}
		if badPath("/" + strings.TrimSuffix(rest, "/")) {
			http.Error(w, "Bad Request: path with dot segments", http.StatusBadRequest)
			return
		}
		s.serveFiles(w, r, user, root)
	})
}

// serveCollections serves the calendars or contacts area through next
// (go-webdav's handler), answering itself what go-webdav does not know:
// REPORT sync-collection and the extra properties of a PROPFIND.
func (s *Store) serveCollections(w http.ResponseWriter, r *http.Request, area string, user User, next http.Handler) {
	switch r.Method {
	case "REPORT":
		body, ok := readBody(w, r)
		if !ok {
			return
		}
		if rootElement(body) == (xml.Name{Space: nsDAV, Local: "sync-collection"}) {
			s.serveSyncCollection(w, r, area, user, body)
			return
		}
	case "PROPFIND":
		body, ok := readBody(w, r)
		if !ok {
			return
		}
		if extras := extrasRequested(body); len(extras) > 0 {
			s.servePropfindExtras(w, r, area, user, extras, next)
			return
		}
	}
	next.ServeHTTP(w, r)
}

// inFiles reports whether a COPY or MOVE Destination (empty or malformed:
// x/net/webdav answers 400) is inside the files folder at URL path root.
// x/net/webdav only checks that it starts with the handler's prefix, so
// "/dav/files/alice2/x" would land in alice's folder as "2/x".
func inFiles(destination, root string) bool {
	u, err := url.Parse(destination)
	if destination == "" || err != nil {
		return true
	}
	rest, ok := strings.CutPrefix(u.Path, root)
	return ok && !badPath("/"+rest)
}

// insideSource reports whether a COPY Destination is inside the source
// at URL path src (a folder copied into itself).
func insideSource(src, destination string) bool {
	u, err := url.Parse(destination)
	if err != nil {
		return false
	}
	return strings.HasPrefix(strings.TrimSuffix(u.Path, "/"), strings.TrimSuffix(src, "/")+"/")
}

// badPath reports whether p has a ".", ".." or empty segment inside it, or a
// NUL or backslash: clients never send those, and refusing them keeps every
// later check simple.
func badPath(p string) bool {
	if strings.ContainsAny(p, "\x00\\") {
		return true
	}
	rest := strings.TrimPrefix(p, "/")
	for {
		seg, after, more := strings.Cut(rest, "/")
		if seg == "." || seg == ".." || seg == "" && more {
			return true
		}
		if !more {
			return false
		}
		rest = after
	}
}

// ServeDiscovery answers a PROPFIND at another path, such as the server's
// root "/" that people are told to enter in their devices, as at the prefix
// itself: with the current-user-principal. Mount it for PROPFIND only, behind
// the same authentication as the Store.
func (s *Store) ServeDiscovery(w http.ResponseWriter, r *http.Request) {
	r2 := r.Clone(r.Context())
	r2.URL.Path, r2.URL.RawPath = s.prefix+"/", ""
	s.ServeHTTP(w, r2)
}

// serveRoot answers discovery at the prefix itself: OPTIONS with both DAV
// capabilities, PROPFIND with the current-user-principal.
func (s *Store) serveRoot(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodOptions:
		w.Header().Set("DAV", "1, 3, calendar-access, addressbook")
		w.Header().Set("Allow", "OPTIONS, PROPFIND")
		w.WriteHeader(http.StatusNoContent)
	case "PROPFIND":
		(&caldav.Handler{Backend: s, Prefix: s.prefix}).ServeHTTP(w, r)
	case http.MethodGet, http.MethodHead:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "This is a CalDAV, CardDAV and WebDAV server. Point your client at this address.\n")
	default:
		w.Header().Set("Allow", "OPTIONS, PROPFIND, GET, HEAD")
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
	}
}

// mkcalendar is the body of a MKCALENDAR request (RFC 4791, 5.3.1).
type mkcalendar struct {
	XMLName xml.Name `xml:"urn:ietf:params:xml:ns:caldav mkcalendar"`
	Set     struct {
		Prop struct {
			DisplayName  string `xml:"DAV: displayname"`
			Description  string `xml:"urn:ietf:params:xml:ns:caldav calendar-description"`
			ComponentSet *struct {
				Comps []struct {
					Name string `xml:"name,attr"`
				} `xml:"urn:ietf:params:xml:ns:caldav comp"`
			} `xml:"urn:ietf:params:xml:ns:caldav supported-calendar-component-set"`
		} `xml:"DAV: prop"`
	} `xml:"DAV: set"`
}

// serveMkcalendar creates a calendar. go-webdav v0.6.0 only knows the
// extended MKCOL; clients such as python-caldav, Thunderbird and Apple
// Calendar send MKCALENDAR.
func (s *Store) serveMkcalendar(w http.ResponseWriter, r *http.Request) {
	cal := caldav.Calendar{Path: r.URL.Path}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxMkcalendarBody))
	if err != nil {
		http.Error(w, "Bad Request: body too large", http.StatusRequestEntityTooLarge)
		return
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		var m mkcalendar
		if err := xml.Unmarshal(body, &m); err != nil {
			http.Error(w, "Bad Request: malformed MKCALENDAR body", http.StatusBadRequest)
			return
		}
		cal.Name = m.Set.Prop.DisplayName
		cal.Description = m.Set.Prop.Description
		if cs := m.Set.Prop.ComponentSet; cs != nil {
			for _, c := range cs.Comps {
				cal.SupportedComponentSet = append(cal.SupportedComponentSet, c.Name)
			}
		}
	}
	if !strings.HasSuffix(cal.Path, "/") {
		cal.Path += "/"
	}
	if err := s.CreateCalendar(r.Context(), &cal); err != nil {
		serveError(w, err)
		return
	}
	w.Header().Set("Location", cal.Path)
	w.WriteHeader(http.StatusCreated)
}

// serveError writes err's status without internal details.
func serveError(w http.ResponseWriter, err error) {
	code := statusOf(err)
	http.Error(w, http.StatusText(code), code)
}

// condLock is the lock of the conditional file requests to the folder of
// the user with this ID.
func (s *Store) condLock(id string) *sync.Mutex {
	s.filesMu.Lock()
	defer s.filesMu.Unlock()
	mu := s.conds[id]
	if mu == nil {
		mu = new(sync.Mutex)
		s.conds[id] = mu
	}
	return mu
}

// filesHandler returns user's WebDAV handler at the URL path root, creating
// the folder and the handler (with its lock system, which must outlive one
// request) on first use. Every URL root of the folder gets a copy of the
// one stored handler with its own Prefix, so they share the lock system.
func (s *Store) filesHandler(user User, root string) (*webdav.Handler, error) {
	s.filesMu.Lock()
	defer s.filesMu.Unlock()
	key := filesKey{user.Login, user.ID}
	h, ok := s.files[key]
	if !ok {
		udir, err := s.userDir(user.ID)
		if err != nil {
			return nil, err
		}
		dir := filepath.Join(udir, "files")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		pfs, err := newPropFS(dir, filepath.Join(udir, ".files-props.json"))
		if err != nil {
			return nil, err
		}
		h = &webdav.Handler{FileSystem: pfs, LockSystem: &etagLS{LockSystem: webdav.NewMemLS(), fs: pfs}}
		s.files[key] = h
	}
	c := *h
	c.Prefix = strings.TrimSuffix(root, "/")
	return &c, nil
}
