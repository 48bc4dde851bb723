package davstore

import (
	"io/fs"
	"net/http"
	"path/filepath"
	"testing"
)

// TestCopyIntoItselfRefused: a COPY of a folder into a folder inside it
// (RFC 4918 9.8.3 warns of the infinite recursion) is 403 and copies
// nothing: x/net/webdav would copy it into itself a thousand levels deep,
// the folder's data a thousand times over, from one request.
func TestCopyIntoItselfRefused(t *testing.T) {
	srv, _, root := newServer(t)
	if code, _ := do(t, srv, "alice", "MKCOL", "/dav/files/alice/a/", nil, ""); code != http.StatusCreated {
		t.Fatalf("MKCOL: %d", code)
	}
	if code, _ := do(t, srv, "alice", "PUT", "/dav/files/alice/a/f.txt", nil, "data"); code != http.StatusCreated {
		t.Fatalf("PUT: %d", code)
	}
	for _, tc := range []struct{ src, dst string }{
		{"/dav/files/alice/a/", "/dav/files/alice/a/b/"},
		{"/dav/files/alice/a", "/dav/files/alice/a/b"},
		{"/dav/files/alice/", "/dav/files/alice/c/"},
	} {
		code, _ := do(t, srv, "alice", "COPY", tc.src, map[string]string{"Destination": srv.URL + tc.dst}, "")
		n := 0
		filepath.WalkDir(filepath.Join(root, folderOf("alice"), "files"), func(_ string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				n++
			}
			return nil
		})
		if code != http.StatusForbidden || n != 1 {
			t.Errorf("COPY %s to %s: %d, %d files in the folder after it; want 403 and 1", tc.src, tc.dst, code, n)
		}
	}
	// A copy beside the source still works.
	if code, _ := do(t, srv, "alice", "COPY", "/dav/files/alice/a/", map[string]string{"Destination": srv.URL + "/dav/files/alice/ab/"}, ""); code != http.StatusCreated {
		t.Errorf("COPY a/ to ab/: %d, want 201", code)
	}
}
