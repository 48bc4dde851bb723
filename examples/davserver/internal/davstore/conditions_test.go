package davstore

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// putGetETag PUTs body to path as alice and returns the ETag of the
// response (quoted, as clients send it back).
func putGetETag(t *testing.T, srv *httptest.Server, path, contentType, body string) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPut, srv.URL+path, strings.NewReader(body))
	req.SetBasicAuth("alice", "x")
	req.Header.Set("Content-Type", contentType)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusNoContent {
		t.Fatalf("PUT %s: %d", path, resp.StatusCode)
	}
	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Fatalf("PUT %s: no ETag", path)
	}
	return etag
}

const icsTemplate = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//appauth//test//EN\r\nBEGIN:VEVENT\r\nUID:UID\r\nDTSTAMP:20260102T030405Z\r\nDTSTART:20260203T100000Z\r\nSUMMARY:SUMMARY\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"

func ics(uid, summary string) string {
	return strings.NewReplacer("UID:UID", "UID:"+uid, "SUMMARY", summary).Replace(icsTemplate)
}

const vcf = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:card-1\r\nFN:Ada\r\nN:;Ada;;;\r\nEND:VCARD\r\n"

// TestConditionalWrites: in all three areas, a write whose If-Match names
// a stale entity tag, or whose If-None-Match: * meets an existing
// resource, is 412 and changes nothing; with the current tag it goes on.
func TestConditionalWrites(t *testing.T) {
	srv, _, _ := newServer(t)
	if code, body := do(t, srv, "alice", "MKCALENDAR", "/dav/calendars/alice/work/", nil, ""); code != http.StatusCreated {
		t.Fatalf("MKCALENDAR: %d %s", code, body)
	}
	if code, body := do(t, srv, "alice", "MKCOL", "/dav/contacts/alice/book/", nil, ""); code != http.StatusCreated {
		t.Fatalf("MKCOL address book: %d %s", code, body)
	}
	const stale = `"0123456789abcdef"`

	for _, area := range []struct {
		name, path, ctype, v1, v2 string
	}{
		{"calendars", "/dav/calendars/alice/work/a.ics", "text/calendar", ics("a", "one"), ics("a", "two")},
		{"contacts", "/dav/contacts/alice/book/a.vcf", "text/vcard", vcf, strings.Replace(vcf, "Ada", "Bea", 2)},
		// Lengths differ: a file's ETag is its mtime and size, and two writes
		// in one timestamp tick would otherwise share it.
		{"files", "/dav/files/alice/a.txt", "text/plain", "one", "two 2"},
	} {
		t.Run(area.name, func(t *testing.T) {
			etag := putGetETag(t, srv, area.path, area.ctype, area.v1)
			with := func(k, v string) map[string]string { return map[string]string{"Content-Type": area.ctype, k: v} }
			get := func() string {
				code, body := do(t, srv, "alice", "GET", area.path, nil, "")
				if code != http.StatusOK {
					t.Fatalf("GET: %d", code)
				}
				return body
			}
			if code, _ := do(t, srv, "alice", "PUT", area.path, with("If-Match", stale), area.v2); code != http.StatusPreconditionFailed {
				t.Errorf("PUT with a stale If-Match: %d, want 412", code)
			}
			if code, _ := do(t, srv, "alice", "PUT", area.path, with("If-None-Match", "*"), area.v2); code != http.StatusPreconditionFailed {
				t.Errorf("PUT with If-None-Match: * over an existing resource: %d, want 412", code)
			}
			if code, _ := do(t, srv, "alice", "DELETE", area.path, with("If-Match", stale), ""); code != http.StatusPreconditionFailed {
				t.Errorf("DELETE with a stale If-Match: %d, want 412", code)
			}
			if area.name == "files" {
				for _, m := range []string{"MOVE", "COPY"} {
					h := with("If-Match", stale)
					h["Destination"] = srv.URL + "/dav/files/alice/b.txt"
					if code, _ := do(t, srv, "alice", m, area.path, h, ""); code != http.StatusPreconditionFailed {
						t.Errorf("%s with a stale If-Match: %d, want 412", m, code)
					}
				}
				if code, _ := do(t, srv, "alice", "GET", "/dav/files/alice/b.txt", nil, ""); code != http.StatusNotFound {
					t.Errorf("a refused COPY or MOVE made b.txt: GET %d", code)
				}
			}
			if got := get(); !strings.Contains(got, strings.Split(strings.TrimSpace(area.v1), "\r\n")[0]) || strings.Contains(got, "two") || strings.Contains(got, "Bea") {
				t.Fatalf("a refused write changed the resource:\n%s", got)
			}
			// The current tag: the write goes through.
			if code, _ := do(t, srv, "alice", "PUT", area.path, with("If-Match", etag), area.v2); code != http.StatusCreated && code != http.StatusNoContent {
				t.Fatalf("PUT with the current If-Match: %d", code)
			}
			etag2 := putGetETag(t, srv, area.path, area.ctype, area.v2)
			if code, _ := do(t, srv, "alice", "DELETE", area.path, with("If-Match", etag), ""); code != http.StatusPreconditionFailed {
				t.Errorf("DELETE with the previous version's tag: %d, want 412", code)
			}
			if code, _ := do(t, srv, "alice", "DELETE", area.path, with("If-Match", etag2), ""); code != http.StatusNoContent {
				t.Errorf("DELETE with the current tag: %d, want 204", code)
			}
			if code, _ := do(t, srv, "alice", "PUT", area.path, with("If-Match", "*"), area.v1); code != http.StatusPreconditionFailed {
				t.Errorf("PUT with If-Match: * on a missing resource: %d, want 412", code)
			}
			if code, _ := do(t, srv, "alice", "PUT", area.path, with("If-None-Match", "*"), area.v1); code != http.StatusCreated && code != http.StatusNoContent {
				t.Errorf("PUT with If-None-Match: * on a missing resource: %d, want 201", code)
			}
		})
	}

	// A whole calendar has no entity tag: a DELETE with one is refused.
	if code, _ := do(t, srv, "alice", "DELETE", "/dav/calendars/alice/work/", map[string]string{"If-Match": stale}, ""); code != http.StatusPreconditionFailed {
		t.Errorf("DELETE calendar with If-Match: %d, want 412", code)
	}
}

// TestFilesIfHeaderETag: an If header list whose entity tag is stale fails
// (RFC 4918 10.4), as litmus's fail_cond_put expects.
func TestFilesIfHeaderETag(t *testing.T) {
	srv, _, _ := newServer(t)
	etag := putGetETag(t, srv, "/dav/files/alice/a.txt", "text/plain", "one")
	req, _ := http.NewRequestWithContext(t.Context(), "LOCK", srv.URL+"/dav/files/alice/a.txt", strings.NewReader(
		`<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>`))
	req.SetBasicAuth("alice", "x")
	req.Header.Set("Content-Type", "application/xml")
	req.Header.Set("Timeout", "Second-60")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	token := strings.Trim(resp.Header.Get("Lock-Token"), "<>")
	if resp.StatusCode != http.StatusOK || token == "" {
		t.Fatalf("LOCK: %d, token %q", resp.StatusCode, token)
	}
	if code, _ := do(t, srv, "alice", "PUT", "/dav/files/alice/a.txt", map[string]string{"If": `(<` + token + `> ["bogus"])`}, "two"); code != http.StatusPreconditionFailed {
		t.Errorf("PUT with the lock token and a bogus entity tag: %d, want 412", code)
	}
	if code, _ := do(t, srv, "alice", "PUT", "/dav/files/alice/a.txt", map[string]string{"If": `(<` + token + `> [` + etag + `])`}, "two"); code != http.StatusCreated {
		t.Errorf("PUT with the lock token and the current entity tag: %d, want 201", code)
	}
}

// TestUIDConflict: a second object with the same UID in one calendar is
// refused with CalDAV's no-uid-conflict; rewriting the same object is not.
func TestUIDConflict(t *testing.T) {
	srv, _, _ := newServer(t)
	if code, body := do(t, srv, "alice", "MKCALENDAR", "/dav/calendars/alice/work/", nil, ""); code != http.StatusCreated {
		t.Fatalf("MKCALENDAR: %d %s", code, body)
	}
	ct := map[string]string{"Content-Type": "text/calendar"}
	putGetETag(t, srv, "/dav/calendars/alice/work/a.ics", "text/calendar", ics("same-uid", "one"))
	code, body := do(t, srv, "alice", "PUT", "/dav/calendars/alice/work/b.ics", ct, ics("same-uid", "two"))
	if code != http.StatusConflict && code != http.StatusForbidden || !strings.Contains(body, "no-uid-conflict") {
		t.Errorf("a second object with the same UID: %d %s, want 409 with no-uid-conflict", code, body)
	}
	if code, _ := do(t, srv, "alice", "GET", "/dav/calendars/alice/work/b.ics", nil, ""); code != http.StatusNotFound {
		t.Errorf("the refused object exists: GET %d", code)
	}
	putGetETag(t, srv, "/dav/calendars/alice/work/a.ics", "text/calendar", ics("same-uid", "edited"))
	putGetETag(t, srv, "/dav/calendars/alice/work/c.ics", "text/calendar", ics("other-uid", "three"))
}

// TestErrorBodiesHideDiskPaths: a 500 says what failed, never where on disk.
func TestErrorBodiesHideDiskPaths(t *testing.T) {
	srv, _, root := newServer(t)
	if code, body := do(t, srv, "alice", "MKCALENDAR", "/dav/calendars/alice/work/", nil, ""); code != http.StatusCreated {
		t.Fatalf("MKCALENDAR: %d %s", code, body)
	}
	// An object that is a folder on disk cannot be read.
	if err := os.Mkdir(filepath.Join(root, folderOf("alice"), "calendars", "work", "broken.ics"), 0o700); err != nil {
		t.Fatal(err)
	}
	code, body := do(t, srv, "alice", "GET", "/dav/calendars/alice/work/broken.ics", nil, "")
	if code != http.StatusInternalServerError {
		t.Fatalf("GET an unreadable object: %d %s, want 500", code, body)
	}
	if strings.Contains(body, root) || strings.Contains(body, "/calendars/work/broken") {
		t.Errorf("the 500 body names the disk path: %q", body)
	}
}
