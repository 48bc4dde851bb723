package davstore

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFileProperties: a PROPFIND answers each file's Nextcloud ID (its
// inode, "%08d" then "ocappauth"), file ID and permissions, its dead
// properties, and its size and ETag after a PUT that changed it (the Stat
// a read-only open remembers is never a written file's).
func TestFileProperties(t *testing.T) {
	srv, _, root := newServer(t)
	base := "/dav/files/alice/"
	if code, _ := do(t, srv, "alice", "PUT", base+"a.txt", nil, "one"); code != http.StatusCreated {
		t.Fatalf("PUT: %d", code)
	}
	const proppatch = `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:x-test"><D:set><D:prop><Z:color>blue</Z:color></D:prop></D:set></D:propertyupdate>`
	if code, body := do(t, srv, "alice", "PROPPATCH", base+"a.txt", nil, proppatch); code != http.StatusMultiStatus {
		t.Fatalf("PROPPATCH: %d %s", code, body)
	}
	st, err := os.Stat(filepath.Join(root, folderOf("alice"), "files", "a.txt"))
	if err != nil {
		t.Fatal(err)
	}
	id := fileID(st)
	code, body := do(t, srv, "alice", "PROPFIND", base+"a.txt", map[string]string{"Depth": "0"}, "")
	if code != http.StatusMultiStatus {
		t.Fatalf("PROPFIND: %d %s", code, body)
	}
	for _, want := range []string{
		fmt.Sprintf(">%08docappauth<", id),
		fmt.Sprintf(">%d<", id),
		">RGDNVW<",
		">blue<",
		">3<", // getcontentlength
	} {
		if !strings.Contains(body, want) {
			t.Errorf("PROPFIND of a.txt lacks %q:\n%s", want, body)
		}
	}
	etag := between(body, "getetag>", "<")

	if code, _ := do(t, srv, "alice", "PUT", base+"a.txt", nil, "longer text"); code != http.StatusNoContent && code != http.StatusCreated {
		t.Fatalf("second PUT: %d", code)
	}
	_, body = do(t, srv, "alice", "PROPFIND", base+"a.txt", map[string]string{"Depth": "0"}, "")
	if !strings.Contains(body, ">11<") || between(body, "getetag>", "<") == etag {
		t.Errorf("PROPFIND after a PUT of 11 bytes shows the old size or ETag (%s):\n%s", etag, body)
	}
	_, body = do(t, srv, "alice", "PROPFIND", base, map[string]string{"Depth": "0"}, "")
	if !strings.Contains(body, ">RGDNVCK<") {
		t.Errorf("PROPFIND of the folder lacks its permissions RGDNVCK:\n%s", body)
	}

	// Depth 1: each member's own size and ID, not its neighbour's (the
	// request's stat memo holds one file at a time).
	if code, _ := do(t, srv, "alice", "PUT", base+"b.txt", nil, "four"); code != http.StatusCreated {
		t.Fatalf("PUT b.txt: %d", code)
	}
	stB, err := os.Stat(filepath.Join(root, folderOf("alice"), "files", "b.txt"))
	if err != nil {
		t.Fatal(err)
	}
	_, body = do(t, srv, "alice", "PROPFIND", base, map[string]string{"Depth": "1"}, "")
	for name, want := range map[string][]string{
		"a.txt": {">11<", fmt.Sprintf(">%08docappauth<", id)},
		"b.txt": {">4<", fmt.Sprintf(">%08docappauth<", fileID(stB))},
	} {
		resp := between(body, "/dav/files/alice/"+name+"<", "</D:response>")
		for _, w := range want {
			if !strings.Contains(resp, w) {
				t.Errorf("Depth 1: %s's answer lacks %q:\n%s", name, w, resp)
			}
		}
	}
}

// TestEmptyNamespaceRefused: a PROPFIND or PROPPATCH body that binds a
// prefix to the empty namespace name is refused however the attribute is
// quoted or spaced; the pre-check that skips the parse of most bodies
// must not let one through.
func TestEmptyNamespaceRefused(t *testing.T) {
	srv, _, _ := newServer(t)
	if code, _ := do(t, srv, "alice", "MKCOL", "/dav/files/alice/d/", nil, ""); code != http.StatusCreated {
		t.Fatalf("MKCOL: %d", code)
	}
	for _, binding := range []string{`xmlns:p=""`, `xmlns:p=''`, `xmlns:p = ""`, "xmlns:p=\n''"} {
		for _, method := range []string{"PROPFIND", "PROPPATCH"} {
			body := `<?xml version="1.0"?><D:propfind xmlns:D="DAV:" ` + binding + `><D:prop><D:getetag/></D:prop></D:propfind>`
			if method == "PROPPATCH" {
				body = `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" ` + binding + `><D:set><D:prop><D:x>1</D:x></D:prop></D:set></D:propertyupdate>`
			}
			if code, _ := do(t, srv, "alice", method, "/dav/files/alice/d/", map[string]string{"Depth": "0"}, body); code != http.StatusBadRequest {
				t.Errorf("%s with %s: %d, want 400", method, binding, code)
			}
		}
	}
}

// between is the text of s after the first from, up to the next to.
func between(s, from, to string) string {
	_, rest, _ := strings.Cut(s, from)
	v, _, _ := strings.Cut(rest, to)
	return v
}
