package davstore

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The same data at another prefix (At) and at a root without the login
// (ServeOwnFiles): one folder, the hrefs of each path, the same checks.
func TestAtAndOwnFiles(t *testing.T) {
	s, err := New(t.TempDir(), "/dav", userFromContext)
	if err != nil {
		t.Fatal(err)
	}
	nc := s.At("/remote.php/dav")
	mux := http.NewServeMux()
	mux.Handle("/dav/", s)
	mux.Handle("/remote.php/dav/", nc)
	mux.Handle("/remote.php/webdav/", s.ServeOwnFiles("/remote.php/webdav/"))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, _, ok := r.BasicAuth(); ok {
			r = r.WithContext(context.WithValue(r.Context(), userKey{}, User{Login: u, ID: u}))
		}
		mux.ServeHTTP(w, r)
	}))
	defer srv.Close()

	if code, _ := do(t, srv, "alice", "PUT", "/remote.php/webdav/a.txt", nil, "one"); code != http.StatusCreated {
		t.Fatalf("PUT at the legacy root: %d", code)
	}
	for _, p := range []string{"/dav/files/alice/a.txt", "/remote.php/dav/files/alice/a.txt", "/remote.php/webdav/a.txt"} {
		if code, body := do(t, srv, "alice", "GET", p, nil, ""); code != http.StatusOK || body != "one" {
			t.Errorf("GET %s: %d %q", p, code, body)
		}
	}
	code, body := do(t, srv, "alice", "PROPFIND", "/remote.php/dav/files/alice/", map[string]string{"Depth": "1"}, "")
	if code != http.StatusMultiStatus || !strings.Contains(body, "<D:href>/remote.php/dav/files/alice/a.txt</D:href>") ||
		!strings.Contains(body, "http://owncloud.org/ns") || !strings.Contains(body, "RGDNVW") {
		t.Errorf("PROPFIND under /remote.php/dav: %d\n%s", code, body)
	}
	code, body = do(t, srv, "alice", "PROPFIND", "/remote.php/webdav/", map[string]string{"Depth": "1"}, "")
	if code != http.StatusMultiStatus || !strings.Contains(body, "<D:href>/remote.php/webdav/a.txt</D:href>") {
		t.Errorf("PROPFIND at the legacy root: %d\n%s", code, body)
	}
	// Another user sees only their own files there; dot segments and a
	// destination outside the root are refused.
	if code, _ := do(t, srv, "bob", "GET", "/remote.php/webdav/a.txt", nil, ""); code != http.StatusNotFound {
		t.Errorf("bob's GET of a.txt at the legacy root: %d, want 404", code)
	}
	// (A ServeMux cleans paths first; the handler refuses them alone too.)
	r := httptest.NewRequest("GET", "/remote.php/webdav/x/../a.txt", nil)
	r = r.WithContext(context.WithValue(r.Context(), userKey{}, User{Login: "alice", ID: "alice"}))
	w := httptest.NewRecorder()
	s.ServeOwnFiles("/remote.php/webdav/").ServeHTTP(w, r)
	if w.Code != http.StatusBadRequest {
		t.Errorf("dot segments: %d, want 400", w.Code)
	}
	if code, _ := do(t, srv, "alice", "MOVE", "/remote.php/webdav/a.txt", map[string]string{"Destination": srv.URL + "/remote.php/webdavx/a.txt"}, ""); code != http.StatusForbidden {
		t.Errorf("MOVE outside the root: %d, want 403", code)
	}
	if code, _ := do(t, srv, "", "GET", "/remote.php/webdav/a.txt", nil, ""); code != http.StatusUnauthorized {
		t.Errorf("no user: %d, want 401", code)
	}
	// A lock taken under one path holds under the other (one lock system).
	lock := `<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>`
	if code, _ := do(t, srv, "alice", "LOCK", "/remote.php/webdav/a.txt", map[string]string{"Content-Type": "application/xml"}, lock); code != http.StatusOK {
		t.Fatalf("LOCK: %d", code)
	}
	if code, _ := do(t, srv, "alice", "PUT", "/dav/files/alice/a.txt", nil, "two"); code != http.StatusLocked {
		t.Errorf("PUT under /dav of a file locked under /remote.php/webdav: %d, want 423", code)
	}
}
