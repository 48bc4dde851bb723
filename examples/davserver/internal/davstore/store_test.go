package davstore

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-ical"
	"github.com/emersion/go-vcard"
	gowebdav "github.com/emersion/go-webdav"
	"github.com/emersion/go-webdav/caldav"
	"github.com/emersion/go-webdav/carddav"
)

type userKey struct{}

func userFromContext(ctx context.Context) (User, error) {
	u, _ := ctx.Value(userKey{}).(User)
	if u.Login == "" {
		return User{}, errors.New("no user")
	}
	return u, nil
}

// newServer serves a Store under /dav/. The user is the Basic-auth username,
// unchecked, and its ID the password, or the username when the password is
// "x": this fake stands in for the authentication middleware.
func newServer(t *testing.T) (*httptest.Server, *Store, string) {
	t.Helper()
	return newServerAt(t, t.TempDir())
}

// newServerAt is newServer on the folder root.
func newServerAt(t *testing.T, root string) (*httptest.Server, *Store, string) {
	t.Helper()
	s, err := New(root, "/dav", userFromContext)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/dav/", s)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, pw, ok := r.BasicAuth(); ok {
			id := pw
			if pw == "x" {
				id = u
			}
			r = r.WithContext(context.WithValue(r.Context(), userKey{}, User{Login: u, ID: id}))
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, s, root
}

// do sends a request with a raw (unnormalized) path as user.
func do(t *testing.T, srv *httptest.Server, user, method, rawPath string, hdr map[string]string, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Opaque = rawPath // sent as is: no client-side cleaning
	if user != "" {
		req.SetBasicAuth(user, "x")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func client(srv *httptest.Server, user string) gowebdav.HTTPClient {
	return gowebdav.HTTPClientWithBasicAuth(srv.Client(), user, "x")
}

const mkcalendarBody = `<?xml version="1.0" encoding="utf-8"?>
<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:set><D:prop>
    <D:displayname>Work</D:displayname>
    <C:supported-calendar-component-set><C:comp name="VEVENT"/></C:supported-calendar-component-set>
  </D:prop></D:set>
</C:mkcalendar>`

func event(uid, summary string) *ical.Calendar {
	cal := ical.NewCalendar()
	cal.Props.SetText(ical.PropVersion, "2.0")
	cal.Props.SetText(ical.PropProductID, "-//appauth//davstore test//EN")
	ev := ical.NewEvent()
	ev.Props.SetText(ical.PropUID, uid)
	ev.Props.SetDateTime(ical.PropDateTimeStamp, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	ev.Props.SetDateTime(ical.PropDateTimeStart, time.Date(2026, 2, 3, 10, 0, 0, 0, time.UTC))
	ev.Props.SetText(ical.PropSummary, summary)
	cal.Children = append(cal.Children, ev.Component)
	return cal
}

func TestCalDAV(t *testing.T) {
	srv, _, root := newServer(t)
	ctx := t.Context()

	// Discovery: root -> principal -> calendar home.
	wc, err := gowebdav.NewClient(client(srv, "alice"), srv.URL+"/dav/")
	if err != nil {
		t.Fatal(err)
	}
	principal, err := wc.FindCurrentUserPrincipal(ctx)
	if err != nil || principal != "/dav/principals/alice/" {
		t.Fatalf("principal = %q, %v", principal, err)
	}
	cc, err := caldav.NewClient(client(srv, "alice"), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if code, body := do(t, srv, "alice", "PROPFIND", principal, nil, ""); code != http.StatusMultiStatus || !strings.Contains(body, "calendar-home-set") || !strings.Contains(body, "addressbook-home-set") {
		t.Fatalf("PROPFIND principal without a body: %d %s", code, body)
	}
	home, err := cc.FindCalendarHomeSet(ctx, principal)
	if err != nil || home != "/dav/calendars/alice/" {
		t.Fatalf("calendar home = %q, %v", home, err)
	}

	if code, body := do(t, srv, "alice", "MKCALENDAR", "/dav/calendars/alice/work/", map[string]string{"Content-Type": "application/xml"}, mkcalendarBody); code != http.StatusCreated {
		t.Fatalf("MKCALENDAR: %d %s", code, body)
	}
	if code, _ := do(t, srv, "alice", "MKCALENDAR", "/dav/calendars/alice/work/", nil, ""); code != http.StatusMethodNotAllowed {
		t.Fatalf("MKCALENDAR again: %d, want 405", code)
	}
	cals, err := cc.FindCalendars(ctx, home)
	if err != nil || len(cals) != 1 || cals[0].Name != "Work" || cals[0].Path != "/dav/calendars/alice/work/" {
		t.Fatalf("FindCalendars = %+v, %v", cals, err)
	}

	put, err := cc.PutCalendarObject(ctx, "/dav/calendars/alice/work/ev1.ics", event("ev1", "Standup"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := cc.GetCalendarObject(ctx, "/dav/calendars/alice/work/ev1.ics")
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := got.Data.Events()[0].Props.Text(ical.PropSummary); s != "Standup" || got.ETag != put.ETag || got.ETag == "" {
		t.Fatalf("got summary %q etag %q, put etag %q", s, got.ETag, put.ETag)
	}
	objs, err := cc.QueryCalendar(ctx, "/dav/calendars/alice/work/", &caldav.CalendarQuery{
		CompFilter: caldav.CompFilter{Name: "VCALENDAR", Comps: []caldav.CompFilter{{Name: "VEVENT"}}},
	})
	if err != nil || len(objs) != 1 || objs[0].Path != "/dav/calendars/alice/work/ev1.ics" {
		t.Fatalf("QueryCalendar = %+v, %v", objs, err)
	}

	// The event is a file under alice's folder.
	if _, err := os.Stat(filepath.Join(root, folderOf("alice"), "calendars", "work", "ev1.ics")); err != nil {
		t.Fatal(err)
	}

	// A VTODO in an events-only calendar is refused.
	todo := event("t1", "x")
	todo.Children[0].Name = ical.CompToDo
	if _, err := cc.PutCalendarObject(ctx, "/dav/calendars/alice/work/t1.ics", todo); err == nil {
		t.Fatal("VTODO accepted by a VEVENT-only calendar")
	}

	// If-None-Match: * on an existing object: 412.
	ics := "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:ev1\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20260101T000000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
	if code, _ := do(t, srv, "alice", "PUT", "/dav/calendars/alice/work/ev1.ics", map[string]string{"Content-Type": "text/calendar", "If-None-Match": "*"}, ics); code != http.StatusPreconditionFailed {
		t.Fatalf("PUT If-None-Match * over existing: %d, want 412", code)
	}
	if code, _ := do(t, srv, "alice", "PUT", "/dav/calendars/alice/work/ev1.ics", map[string]string{"Content-Type": "text/calendar", "If-Match": `"nope"`}, ics); code != http.StatusPreconditionFailed {
		t.Fatalf("PUT If-Match wrong etag: %d, want 412", code)
	}
	if code, _ := do(t, srv, "alice", "PUT", "/dav/calendars/alice/work/ev1.ics", map[string]string{"Content-Type": "text/calendar", "If-Match": `"` + put.ETag + `"`}, ics); code != http.StatusCreated {
		t.Fatalf("PUT If-Match right etag: %d, want 201", code)
	}
	// PUT into a calendar that does not exist: 409.
	if code, _ := do(t, srv, "alice", "PUT", "/dav/calendars/alice/nope/ev1.ics", map[string]string{"Content-Type": "text/calendar"}, ics); code != http.StatusConflict {
		t.Fatalf("PUT into a missing calendar: %d, want 409", code)
	}

	if code, _ := do(t, srv, "alice", "DELETE", "/dav/calendars/alice/work/ev1.ics", nil, ""); code != http.StatusNoContent {
		t.Fatalf("DELETE object: %d", code)
	}
	if _, err := cc.GetCalendarObject(ctx, "/dav/calendars/alice/work/ev1.ics"); err == nil {
		t.Fatal("deleted object still readable")
	}
	if code, _ := do(t, srv, "alice", "DELETE", "/dav/calendars/alice/work/", nil, ""); code != http.StatusNoContent {
		t.Fatalf("DELETE calendar: %d", code)
	}
	if cals, err := cc.FindCalendars(ctx, home); err != nil || len(cals) != 0 {
		t.Fatalf("after deleting the calendar: %+v, %v", cals, err)
	}
}

func TestCardDAV(t *testing.T) {
	srv, _, _ := newServer(t)
	ctx := t.Context()
	cc, err := carddav.NewClient(client(srv, "alice"), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	home, err := cc.FindAddressBookHomeSet(ctx, "/dav/principals/alice/")
	if err != nil || home != "/dav/contacts/alice/" {
		t.Fatalf("address-book home = %q, %v", home, err)
	}
	mkcol := `<?xml version="1.0" encoding="utf-8"?>
<D:mkcol xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav"><D:set><D:prop>
<D:resourcetype><D:collection/><C:addressbook/></D:resourcetype><D:displayname>Friends</D:displayname>
</D:prop></D:set></D:mkcol>`
	if code, body := do(t, srv, "alice", "MKCOL", "/dav/contacts/alice/friends/", map[string]string{"Content-Type": "application/xml"}, mkcol); code != http.StatusCreated {
		t.Fatalf("MKCOL: %d %s", code, body)
	}
	abs, err := cc.FindAddressBooks(ctx, home)
	if err != nil || len(abs) != 1 || abs[0].Name != "Friends" {
		t.Fatalf("FindAddressBooks = %+v, %v", abs, err)
	}
	card := vcard.Card{}
	card.SetValue(vcard.FieldVersion, "3.0")
	card.SetValue(vcard.FieldUID, "c1")
	card.SetValue(vcard.FieldFormattedName, "Bob Example")
	card.SetValue(vcard.FieldEmail, "bob@example.org")
	if _, err := cc.PutAddressObject(ctx, "/dav/contacts/alice/friends/c1.vcf", card); err != nil {
		t.Fatal(err)
	}
	got, err := cc.GetAddressObject(ctx, "/dav/contacts/alice/friends/c1.vcf")
	if err != nil || got.Card.PreferredValue(vcard.FieldFormattedName) != "Bob Example" {
		t.Fatalf("GetAddressObject = %+v, %v", got, err)
	}
	objs, err := cc.QueryAddressBook(ctx, "/dav/contacts/alice/friends/", &carddav.AddressBookQuery{
		PropFilters: []carddav.PropFilter{{Name: vcard.FieldEmail, TextMatches: []carddav.TextMatch{{Text: "bob@"}}}},
	})
	if err != nil || len(objs) != 1 {
		t.Fatalf("QueryAddressBook = %+v, %v", objs, err)
	}
	if code, _ := do(t, srv, "alice", "DELETE", "/dav/contacts/alice/friends/", nil, ""); code != http.StatusNoContent {
		t.Fatalf("DELETE address book: %d", code)
	}
	if abs, err := cc.FindAddressBooks(ctx, home); err != nil || len(abs) != 0 {
		t.Fatalf("after delete: %+v, %v", abs, err)
	}
}

// TestIsolation: a user reaches only their own calendars, contacts and files,
// whatever the path or the Destination says.
func TestIsolation(t *testing.T) {
	srv, _, root := newServer(t)
	ctx := t.Context()
	xml := map[string]string{"Content-Type": "application/xml"}

	// bob's data.
	if code, _ := do(t, srv, "bob", "MKCALENDAR", "/dav/calendars/bob/private/", nil, ""); code != http.StatusCreated {
		t.Fatalf("bob MKCALENDAR: %d", code)
	}
	bobCal, _ := caldav.NewClient(client(srv, "bob"), srv.URL)
	if _, err := bobCal.PutCalendarObject(ctx, "/dav/calendars/bob/private/secret.ics", event("s1", "BOBSECRET")); err != nil {
		t.Fatal(err)
	}
	if code, _ := do(t, srv, "bob", "PUT", "/dav/files/bob/secret.txt", nil, "BOBFILE"); code != http.StatusCreated {
		t.Fatalf("bob PUT file: %d", code)
	}
	if code, _ := do(t, srv, "alice", "MKCALENDAR", "/dav/calendars/alice/mine/", nil, ""); code != http.StatusCreated {
		t.Fatalf("alice MKCALENDAR: %d", code)
	}
	if code, _ := do(t, srv, "alice", "PUT", "/dav/files/alice/a.txt", nil, "ALICEFILE"); code != http.StatusCreated {
		t.Fatalf("alice PUT file: %d", code)
	}

	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/dav/files/bob/secret.txt", 403},
		{"PROPFIND", "/dav/files/bob/", 403},
		{"PUT", "/dav/files/bob/new.txt", 403},
		// ServeMux redirects to the cleaned path, which is bob's: 403.
		{"GET", "/dav/files/alice/../bob/secret.txt", 403},
		{"GET", "/dav/files/alice/%2e%2e/bob/secret.txt", 400},
		{"GET", "/dav/files/alice/..%2fbob%2fsecret.txt", 400},
		{"GET", "/dav/files/alice/..%5c..%5cbob%5csecret.txt", 400},
		{"GET", "/dav/files/alice//../bob/secret.txt", 403},
		{"GET", "/dav/files/alice/%00", 400},
		{"GET", "/dav/calendars/bob/private/secret.ics", 403},
		{"PROPFIND", "/dav/calendars/bob/", 403},
		{"PROPFIND", "/dav/principals/bob/", 403},
		{"PROPFIND", "/dav/contacts/bob/", 403},
		{"MKCALENDAR", "/dav/calendars/bob/evil/", 403},
		{"DELETE", "/dav/calendars/bob/private/", 403},
		{"PROPFIND", "/dav/calendars/", 403},
		{"PROPFIND", "/dav/files/", 403},
		{"GET", "/dav/calendars/alice/../bob/private/secret.ics", 403},
	} {
		code, body := do(t, srv, "alice", tc.method, tc.path, nil, "")
		if code != tc.want || strings.Contains(body, "BOB") {
			t.Errorf("alice %s %s: %d (body %q), want %d", tc.method, tc.path, code, body, tc.want)
		}
	}
	// The Store itself, without a ServeMux in front, refuses dot segments.
	for _, p := range []string{"/dav/files/alice/../bob/secret.txt", "/dav/files/alice/./../bob/secret.txt",
		"/dav/calendars/alice/../bob/private/secret.ics", "/dav/files/alice//x", "/dav/files/alice/.."} {
		st, _ := New(root, "/dav", userFromContext)
		r := httptest.NewRequestWithContext(context.WithValue(t.Context(), userKey{}, User{Login: "alice", ID: "alice"}), "GET", "/", nil)
		r.URL.Path = p
		w := httptest.NewRecorder()
		st.ServeHTTP(w, r)
		if w.Code != http.StatusBadRequest || strings.Contains(w.Body.String(), "BOB") {
			t.Errorf("Store.ServeHTTP GET %s: %d %q, want 400", p, w.Code, w.Body)
		}
	}

	// Without a user: 401, except OPTIONS, which shows only capabilities.
	for _, m := range []string{"PROPFIND", "GET", "PUT", "MKCOL", "DELETE", "REPORT"} {
		if code, body := do(t, srv, "", m, "/dav/files/alice/a.txt", nil, ""); code != http.StatusUnauthorized || strings.Contains(body, "ALICE") {
			t.Errorf("no user, %s: %d, want 401", m, code)
		}
	}
	if code, body := do(t, srv, "", "OPTIONS", "/dav/files/alice/a.txt", nil, ""); code != http.StatusOK || body != "" {
		t.Errorf("no user, OPTIONS: %d %q, want 200 and no body", code, body)
	}

	// A multiget REPORT on alice's own calendar naming bob's event.
	multiget := `<?xml version="1.0" encoding="utf-8"?>
<C:calendar-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
<D:prop><D:getetag/><C:calendar-data/></D:prop>
<D:href>/dav/calendars/bob/private/secret.ics</D:href>
<D:href>/dav/calendars/alice/../bob/private/secret.ics</D:href>
</C:calendar-multiget>`
	if code, body := do(t, srv, "alice", "REPORT", "/dav/calendars/alice/mine/", xml, multiget); code != http.StatusMultiStatus || strings.Contains(body, "BOBSECRET") || !strings.Contains(body, "403") {
		t.Errorf("multiget of bob's event: %d %s", code, body)
	}
	mg := `<?xml version="1.0" encoding="utf-8"?>
<C:addressbook-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav">
<D:prop><D:getetag/><C:address-data/></D:prop><D:href>/dav/contacts/bob/b/c.vcf</D:href></C:addressbook-multiget>`
	if code, body := do(t, srv, "alice", "REPORT", "/dav/contacts/alice/x/", xml, mg); strings.Contains(body, "BEGIN:VCARD") || (code == http.StatusMultiStatus && !strings.Contains(body, "403")) {
		t.Errorf("multiget of bob's card: %d %s", code, body)
	}

	// COPY and MOVE whose Destination points at bob's folder.
	for _, dest := range []string{
		srv.URL + "/dav/files/bob/stolen.txt",
		srv.URL + "/dav/files/alice/../bob/stolen.txt",
		srv.URL + "/dav/files/alice/%2e%2e/%2e%2e/bob/stolen.txt",
		"/dav/files/bob/stolen.txt",
	} {
		for _, m := range []string{"COPY", "MOVE"} {
			do(t, srv, "alice", m, "/dav/files/alice/a.txt", map[string]string{"Destination": dest}, "")
			if _, err := os.Stat(filepath.Join(root, folderOf("bob"), "files", "stolen.txt")); err == nil {
				t.Fatalf("%s to %s wrote into bob's folder", m, dest)
			}
			// Put the source back if a MOVE landed inside alice's folder.
			do(t, srv, "alice", "PUT", "/dav/files/alice/a.txt", nil, "ALICEFILE")
		}
	}
	// A Destination that merely starts with alice's prefix ("alice2", the
	// folder of another user) is refused, not taken as a name in alice's.
	for _, m := range []string{"COPY", "MOVE"} {
		if code, _ := do(t, srv, "alice", m, "/dav/files/alice/a.txt", map[string]string{"Destination": srv.URL + "/dav/files/alice2/x.txt"}, ""); code != http.StatusForbidden {
			t.Errorf("%s to alice2's folder: %d, want 403", m, code)
		}
		if _, err := os.Stat(filepath.Join(root, folderOf("alice"), "files", "2")); err == nil {
			t.Fatalf("%s to /dav/files/alice2/x.txt wrote alice's 2/x.txt", m)
		}
	}
	if b, err := os.ReadFile(filepath.Join(root, folderOf("bob"), "files", "secret.txt")); err != nil || string(b) != "BOBFILE" {
		t.Fatalf("bob's file changed: %q, %v", b, err)
	}
	if entries, _ := os.ReadDir(filepath.Join(root, folderOf("bob"), "calendars")); len(entries) != 1 {
		t.Fatalf("bob's calendars: %v", entries)
	}
}

func TestFiles(t *testing.T) {
	srv, _, root := newServer(t)
	if code, _ := do(t, srv, "alice", "MKCOL", "/dav/files/alice/docs/", nil, ""); code != http.StatusCreated {
		t.Fatalf("MKCOL: %d", code)
	}
	if code, _ := do(t, srv, "alice", "PUT", "/dav/files/alice/docs/a.txt", nil, "hello"); code != http.StatusCreated {
		t.Fatalf("PUT: %d", code)
	}
	if code, body := do(t, srv, "alice", "GET", "/dav/files/alice/docs/a.txt", nil, ""); code != 200 || body != "hello" {
		t.Fatalf("GET: %d %q", code, body)
	}
	if code, _ := do(t, srv, "alice", "MOVE", "/dav/files/alice/docs/a.txt", map[string]string{"Destination": srv.URL + "/dav/files/alice/b.txt"}, ""); code != http.StatusCreated {
		t.Fatalf("MOVE: %d", code)
	}
	if b, err := os.ReadFile(filepath.Join(root, folderOf("alice"), "files", "b.txt")); err != nil || string(b) != "hello" {
		t.Fatalf("moved file: %q, %v", b, err)
	}
}

func TestNames(t *testing.T) {
	for _, name := range []string{"alice", "a.b-c_d@e+f", "..", ".", ".hidden", "~x", "with space", "a/b", `a\b`, "a\x00b", "Zoë", "日本"} {
		enc, err := encodeName(name)
		if err != nil {
			t.Fatalf("encodeName(%q): %v", name, err)
		}
		if strings.ContainsAny(enc, "/\\\x00") || enc == "." || enc == ".." || strings.HasPrefix(enc, ".") {
			t.Errorf("encodeName(%q) = %q: not one safe file name", name, enc)
		}
		if dec, ok := decodeName(enc); !ok || dec != name {
			t.Errorf("decodeName(encodeName(%q)) = %q, %v", name, dec, ok)
		}
	}
	if _, err := encodeName(""); err == nil {
		t.Error("empty name accepted")
	}
	if _, err := encodeName(strings.Repeat("a", maxName+1)); err == nil {
		t.Error("over-long name accepted")
	}
	// A login with odd characters gets its own folder and its URLs work.
	srv, _, root := newServer(t)
	user := "Zoë O'Neil"
	if code, _ := do(t, srv, user, "PUT", "/dav/files/Zo%C3%AB%20O%27Neil/x.txt", nil, "z"); code != http.StatusCreated {
		t.Fatalf("PUT as %q: %d", user, code)
	}
	if _, err := os.Stat(filepath.Join(root, folderOf(user), "files", "x.txt")); err != nil {
		t.Fatal(err)
	}
}

// TestDataByUserID: storage follows the stable user ID, not the login; a new
// account with a deleted one's login sees none of its data, and the
// login-named folders of older versions are migrated to the ID folder.
func TestDataByUserID(t *testing.T) {
	srv, s, root := newServer(t)
	ctx := t.Context()
	// The first alice (ID old-id) keeps an event and a file.
	oldCal, _ := caldav.NewClient(gowebdav.HTTPClientWithBasicAuth(srv.Client(), "alice", "old-id"), srv.URL)
	if code, _ := doAs(t, srv, "alice", "old-id", "MKCALENDAR", "/dav/calendars/alice/private/", ""); code != http.StatusCreated {
		t.Fatalf("MKCALENDAR: %d", code)
	}
	if _, err := oldCal.PutCalendarObject(ctx, "/dav/calendars/alice/private/e.ics", event("e", "OLDSECRET")); err != nil {
		t.Fatal(err)
	}
	if code, _ := doAs(t, srv, "alice", "old-id", "PUT", "/dav/files/alice/f.txt", "OLDFILE"); code != http.StatusCreated {
		t.Fatalf("PUT file: %d", code)
	}
	if _, err := os.Stat(filepath.Join(root, folderOf("old-id"), "calendars", "private", "e.ics")); err != nil {
		t.Fatalf("the event is not in the ID folder: %v", err)
	}
	// A new person gets the login alice with another ID: nothing of the old.
	for _, path := range []string{"/dav/calendars/alice/private/e.ics", "/dav/files/alice/f.txt"} {
		if code, body := doAs(t, srv, "alice", "new-id", "GET", path, ""); code != http.StatusNotFound || strings.Contains(body, "OLD") {
			t.Errorf("new alice GET %s: %d %q, want 404", path, code, body)
		}
	}
	for _, path := range []string{"/dav/calendars/alice/", "/dav/files/alice/"} {
		if code, body := doAs(t, srv, "alice", "new-id", "PROPFIND", path, ""); strings.Contains(body, "private") || strings.Contains(body, "f.txt") {
			t.Errorf("new alice PROPFIND %s: %d shows old data: %s", path, code, body)
		}
	}

	// An older version's folders: named after the login.
	for _, login := range []string{"carol", "ghost", "dave"} {
		dir := filepath.Join(root, login, "calendars", "home")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := writeJSON(filepath.Join(dir, calendarMeta), calendarProps{Name: "Home"}); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "x.ics"), []byte(icsOf(t, event("x", "OF-"+login))), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var logs strings.Builder
	lookup := func(_ context.Context, login string) (string, error) {
		switch login {
		case "carol":
			return "carol-id", nil
		case "dave":
			return "", errors.New("directory down")
		}
		return "", ErrNoSuchUser
	}
	if err := s.MigrateLogins(ctx, lookup, slog.New(slog.NewTextHandler(&logs, nil))); err != nil {
		t.Fatal(err)
	}
	if code, body := doAs(t, srv, "carol", "carol-id", "GET", "/dav/calendars/carol/home/x.ics", ""); code != http.StatusOK || !strings.Contains(body, "OF-carol") {
		t.Errorf("carol after the migration: %d %q", code, body)
	}
	for _, login := range []string{"ghost", "dave"} {
		if _, err := os.Stat(filepath.Join(root, login, "calendars", "home", "x.ics")); err != nil {
			t.Errorf("%s's folder was not left as is: %v", login, err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "carol")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("carol's login folder still there: %v", err)
	}
	if !strings.Contains(logs.String(), "data folder migrated") || !strings.Contains(logs.String(), "login=carol") || !strings.Contains(logs.String(), "directory lookup failed") {
		t.Errorf("migration log:\n%s", logs.String())
	}
	// A second run changes nothing.
	if err := s.MigrateLogins(ctx, lookup, nil); err != nil {
		t.Fatal(err)
	}

	// Archiving a user: the same ID starts empty afterwards.
	archived, err := s.ArchiveUser("carol-id", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	if err != nil || archived == "" {
		t.Fatalf("ArchiveUser: %q, %v", archived, err)
	}
	if _, err := os.Stat(filepath.Join(archived, "calendars", "home", "x.ics")); err != nil {
		t.Errorf("the archive lacks the event: %v", err)
	}
	if code, body := doAs(t, srv, "carol", "carol-id", "GET", "/dav/calendars/carol/home/x.ics", ""); code != http.StatusNotFound || strings.Contains(body, "OF-carol") {
		t.Errorf("carol after the archive: %d %q", code, body)
	}
	if got, err := s.ArchiveUser("nobody", time.Now()); got != "" || err != nil {
		t.Errorf("ArchiveUser of a user without data: %q, %v", got, err)
	}
	// Archives are never taken for a login folder by a later migration.
	if err := s.MigrateLogins(ctx, func(context.Context, string) (string, error) { return "x", nil }, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(archived); err != nil {
		t.Errorf("a migration moved the archive: %v", err)
	}
}

func TestFolderOf(t *testing.T) {
	seen := map[string]string{}
	for _, id := range []string{"alice", "Alice", "a/b", "..", "", "\x00", "6f1b7d3e-0d1c-4b5e-9a1f-2f9f0c0b7a11", strings.Repeat("x", 101), strings.Repeat("x", 1000)} {
		f := folderOf(id)
		if strings.ContainsAny(f, "/\\\x00") || len(f) > 255 || !strings.Contains(f, "=") || strings.HasPrefix(f, ".") {
			t.Errorf("folderOf(%q) = %q: not one safe file name apart from login folders", id, f)
		}
		if other, ok := seen[f]; ok {
			t.Errorf("folderOf(%q) = folderOf(%q) = %q", id, other, f)
		}
		seen[f] = id
	}
}

// doAs sends a request as user whose stable ID is id.
func doAs(t *testing.T, srv *httptest.Server, user, id, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(user, id)
	if method == "PROPFIND" {
		req.Header.Set("Depth", "1")
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func icsOf(t *testing.T, cal *ical.Calendar) string {
	t.Helper()
	var b strings.Builder
	if err := ical.NewEncoder(&b).Encode(cal); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
