package davstore

import (
	"encoding/xml"
	"net/http"
	"strings"
	"testing"
)

// syncResult is a multistatus as a sync-collection answers it.
type syncResult struct {
	Responses []struct {
		Href     string `xml:"DAV: href"`
		Status   string `xml:"DAV: status"`
		Propstat []struct {
			Status string `xml:"DAV: status"`
			Prop   struct {
				ETag    string `xml:"DAV: getetag"`
				Data    string `xml:"urn:ietf:params:xml:ns:caldav calendar-data"`
				Card    string `xml:"urn:ietf:params:xml:ns:carddav address-data"`
				CTag    string `xml:"http://calendarserver.org/ns/ getctag"`
				Token   string `xml:"DAV: sync-token"`
				Reports []struct {
					Report struct {
						Any []struct{ XMLName xml.Name } `xml:",any"`
					} `xml:"DAV: report"`
				} `xml:"DAV: supported-report-set>supported-report"`
				Privileges []struct {
					Any []struct{ XMLName xml.Name } `xml:",any"`
				} `xml:"DAV: current-user-privilege-set>privilege"`
			} `xml:"DAV: prop"`
		} `xml:"DAV: propstat"`
	} `xml:"DAV: response"`
	Token string `xml:"DAV: sync-token"`
}

func parseMultistatus(t *testing.T, body string) syncResult {
	t.Helper()
	var r syncResult
	if err := xml.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("%v in %s", err, body)
	}
	return r
}

// changed maps each href of a sync answer to its ETag, or "deleted".
func (r syncResult) changed() map[string]string {
	m := map[string]string{}
	for _, resp := range r.Responses {
		if strings.Contains(resp.Status, "404") {
			m[resp.Href] = "deleted"
			continue
		}
		for _, ps := range resp.Propstat {
			if strings.Contains(ps.Status, "200") {
				m[resp.Href] = ps.Prop.ETag
			}
		}
	}
	return m
}

func syncBody(token, data string) string {
	return `<?xml version="1.0" encoding="utf-8"?>
<D:sync-collection xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:R="urn:ietf:params:xml:ns:carddav">
<D:sync-token>` + token + `</D:sync-token><D:sync-level>1</D:sync-level>
<D:prop><D:getetag/>` + data + `</D:prop></D:sync-collection>`
}

const ctagPropfind = `<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:" xmlns:CS="http://calendarserver.org/ns/" xmlns:C="urn:ietf:params:xml:ns:caldav">
<D:prop><CS:getctag/><D:sync-token/><D:displayname/><D:supported-report-set/><D:current-user-privilege-set/><C:supported-calendar-component-set/></D:prop></D:propfind>`

// TestSyncCollection: getctag and sync-token change with every write, and
// REPORT sync-collection returns exactly the members added, edited and
// deleted since a token; stale, foreign and unknown tokens get 403
// valid-sync-token.
func TestSyncCollection(t *testing.T) {
	srv, _, root := newServer(t)
	xmlHdr := map[string]string{"Content-Type": "application/xml"}
	report := func(path, token, data string) (int, string) {
		t.Helper()
		return do(t, srv, "alice", "REPORT", path, xmlHdr, syncBody(token, data))
	}
	ics := func(uid, summary string) string { return icsOf(t, event(uid, summary)) }
	put := func(path, body string) {
		t.Helper()
		if code, b := do(t, srv, "alice", "PUT", path, map[string]string{"Content-Type": "text/calendar"}, body); code != http.StatusCreated && code != http.StatusNoContent {
			t.Fatalf("PUT %s: %d %s", path, code, b)
		}
	}
	ctag := func(path string) (string, string) {
		t.Helper()
		code, body := do(t, srv, "alice", "PROPFIND", path, map[string]string{"Depth": "0", "Content-Type": "application/xml"}, ctagPropfind)
		if code != http.StatusMultiStatus {
			t.Fatalf("PROPFIND %s: %d %s", path, code, body)
		}
		r := parseMultistatus(t, body)
		for _, ps := range r.Responses[0].Propstat {
			if ps.Prop.CTag != "" {
				if ps.Prop.Token == "" || !strings.Contains(ps.Status, "200") {
					t.Fatalf("PROPFIND %s: getctag without a sync-token in 200: %s", path, body)
				}
				return ps.Prop.CTag, ps.Prop.Token
			}
		}
		t.Fatalf("PROPFIND %s: no getctag: %s", path, body)
		return "", ""
	}

	if code, _ := do(t, srv, "alice", "MKCALENDAR", "/dav/calendars/alice/work/", nil, ""); code != http.StatusCreated {
		t.Fatalf("MKCALENDAR: %d", code)
	}
	ctag0, token0 := ctag("/dav/calendars/alice/work/")
	code, body := report("/dav/calendars/alice/work/", "", "")
	if code != http.StatusMultiStatus {
		t.Fatalf("initial sync: %d %s", code, body)
	}
	if r := parseMultistatus(t, body); len(r.Responses) != 0 || r.Token != token0 {
		t.Fatalf("initial sync of an empty calendar: %s (token from PROPFIND %s)", body, token0)
	}

	// Add two events.
	put("/dav/calendars/alice/work/a.ics", ics("a", "A1"))
	put("/dav/calendars/alice/work/b%20c.ics", ics("b", "B1"))
	ctag1, _ := ctag("/dav/calendars/alice/work/")
	if ctag1 == ctag0 {
		t.Fatal("getctag unchanged after two PUTs")
	}
	_, body = report("/dav/calendars/alice/work/", token0, "<C:calendar-data/>")
	r1 := parseMultistatus(t, body)
	got := r1.changed()
	if len(got) != 2 || got["/dav/calendars/alice/work/a.ics"] == "" || got["/dav/calendars/alice/work/b%20c.ics"] == "" || !strings.Contains(body, "SUMMARY:A1") {
		t.Fatalf("sync after two adds: %v\n%s", got, body)
	}
	etagA := got["/dav/calendars/alice/work/a.ics"]

	// Edit one, delete the other.
	put("/dav/calendars/alice/work/a.ics", ics("a", "A2"))
	if code, _ := do(t, srv, "alice", "DELETE", "/dav/calendars/alice/work/b%20c.ics", nil, ""); code != http.StatusNoContent {
		t.Fatalf("DELETE: %d", code)
	}
	_, body = report("/dav/calendars/alice/work/", r1.Token, "<C:calendar-data/>")
	r2 := parseMultistatus(t, body)
	got = r2.changed()
	if len(got) != 2 || got["/dav/calendars/alice/work/b%20c.ics"] != "deleted" || got["/dav/calendars/alice/work/a.ics"] == etagA ||
		!strings.Contains(body, "SUMMARY:A2") || strings.Contains(body, "SUMMARY:A1") {
		t.Fatalf("sync after an edit and a delete: %v\n%s", got, body)
	}
	// Nothing since the last token.
	_, body = report("/dav/calendars/alice/work/", r2.Token, "")
	if r := parseMultistatus(t, body); len(r.Responses) != 0 || r.Token != r2.Token {
		t.Fatalf("sync without changes: %s", body)
	}
	// The first token still works and tells the whole story.
	_, body = report("/dav/calendars/alice/work/", token0, "")
	if got := parseMultistatus(t, body).changed(); len(got) != 2 || got["/dav/calendars/alice/work/b%20c.ics"] != "deleted" {
		t.Fatalf("sync from the first token: %v", got)
	}
	// A full sync lists only what exists.
	_, body = report("/dav/calendars/alice/work/", "", "")
	if got := parseMultistatus(t, body).changed(); len(got) != 1 || got["/dav/calendars/alice/work/a.ics"] == "" {
		t.Fatalf("full sync: %v", got)
	}

	// The log survives a restart: a new Store on the same folder.
	srv2, _, _ := newServerAt(t, root)
	code, body = do(t, srv2, "alice", "REPORT", "/dav/calendars/alice/work/", xmlHdr, syncBody(r1.Token, ""))
	if got := parseMultistatus(t, body).changed(); code != http.StatusMultiStatus || len(got) != 2 {
		t.Fatalf("sync after a restart: %d %v", code, got)
	}

	// Tokens that are not valid for this calendar.
	if code, _ := do(t, srv, "alice", "MKCALENDAR", "/dav/calendars/alice/other/", nil, ""); code != http.StatusCreated {
		t.Fatalf("MKCALENDAR: %d", code)
	}
	_, otherToken := ctag("/dav/calendars/alice/other/")
	future := strings.TrimSuffix(r2.Token, "3") + "99"
	for _, token := range []string{"bogus", "data:,appauth-sync-x-1", otherToken, future, r2.Token + "0"} {
		code, body := report("/dav/calendars/alice/work/", token, "")
		if code != http.StatusForbidden || !strings.Contains(body, "valid-sync-token") {
			t.Errorf("token %q: %d %s, want 403 valid-sync-token", token, code, body)
		}
	}
	// A calendar deleted and made again refuses the old one's tokens.
	if code, _ := do(t, srv, "alice", "DELETE", "/dav/calendars/alice/other/", nil, ""); code != http.StatusNoContent {
		t.Fatalf("DELETE calendar: %d", code)
	}
	if code, _ := do(t, srv, "alice", "MKCALENDAR", "/dav/calendars/alice/other/", nil, ""); code != http.StatusCreated {
		t.Fatalf("MKCALENDAR: %d", code)
	}
	if code, _ := report("/dav/calendars/alice/other/", otherToken, ""); code != http.StatusForbidden {
		t.Errorf("the token of a deleted calendar on its successor: %d, want 403", code)
	}
	// Not a collection, another user's, malformed.
	if code, _ := report("/dav/calendars/alice/", "", ""); code != http.StatusForbidden {
		t.Errorf("sync-collection on the calendar home: %d, want 403", code)
	}
	if code, _ := report("/dav/calendars/alice/missing/", "", ""); code != http.StatusForbidden {
		t.Errorf("sync-collection on a missing calendar: %d, want 403", code)
	}
	if code, body := report("/dav/calendars/bob/work/", "", ""); code != http.StatusForbidden || strings.Contains(body, "multistatus") {
		t.Errorf("sync-collection on bob's calendar: %d %s", code, body)
	}
	if code, _ := do(t, srv, "alice", "REPORT", "/dav/calendars/alice/work/", xmlHdr, `<D:sync-collection xmlns:D="DAV:"><D:sync-token>`); code != http.StatusBadRequest {
		t.Errorf("malformed sync-collection: %d, want 400", code)
	}
	if code, _ := do(t, srv, "alice", "REPORT", "/dav/calendars/alice/work/", xmlHdr, `<D:sync-collection xmlns:D="DAV:">`+strings.Repeat("x", maxReportBody)+`</D:sync-collection>`); code != http.StatusRequestEntityTooLarge {
		t.Errorf("huge sync-collection: %d, want 413", code)
	}

	// The other properties of a calendar.
	_, body = do(t, srv, "alice", "PROPFIND", "/dav/calendars/alice/work/", map[string]string{"Depth": "0", "Content-Type": "application/xml"}, ctagPropfind)
	for _, want := range []string{"sync-collection", "calendar-query", "calendar-multiget", "<write/>", "<read/>", `name="VEVENT"`, `name="VTODO"`} {
		if !strings.Contains(body, want) {
			t.Errorf("calendar PROPFIND lacks %s:\n%s", want, body)
		}
	}
	if strings.Count(body, "404 Not Found") > 1 {
		t.Errorf("calendar PROPFIND: known properties in a 404 propstat:\n%s", body)
	}
}

// TestSyncCollectionAddressBook: the same for an address book, and a token
// older than the bounded log gets 403.
func TestSyncCollectionAddressBook(t *testing.T) {
	srv, _, _ := newServer(t)
	defer func(n int) { maxChanges = n }(maxChanges)
	maxChanges = 3
	xmlHdr := map[string]string{"Content-Type": "application/xml"}
	if code, _ := do(t, srv, "alice", "MKCOL", "/dav/contacts/alice/friends/", xmlHdr, `<D:mkcol xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav"><D:set><D:prop><D:resourcetype><D:collection/><C:addressbook/></D:resourcetype></D:prop></D:set></D:mkcol>`); code != http.StatusCreated {
		t.Fatalf("MKCOL: %d", code)
	}
	card := func(uid string) string {
		return "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:" + uid + "\r\nFN:" + uid + "\r\nEND:VCARD\r\n"
	}
	_, body := do(t, srv, "alice", "REPORT", "/dav/contacts/alice/friends/", xmlHdr, syncBody("", ""))
	token0 := parseMultistatus(t, body).Token
	for _, uid := range []string{"c1", "c2"} {
		if code, _ := do(t, srv, "alice", "PUT", "/dav/contacts/alice/friends/"+uid+".vcf", map[string]string{"Content-Type": "text/vcard"}, card(uid)); code != http.StatusCreated {
			t.Fatalf("PUT: %d", code)
		}
	}
	do(t, srv, "alice", "DELETE", "/dav/contacts/alice/friends/c1.vcf", nil, "")
	_, body = do(t, srv, "alice", "REPORT", "/dav/contacts/alice/friends/", xmlHdr, syncBody(token0, "<R:address-data/>"))
	r := parseMultistatus(t, body)
	if got := r.changed(); len(got) != 2 || got["/dav/contacts/alice/friends/c1.vcf"] != "deleted" || !strings.Contains(body, "FN:c2") {
		t.Fatalf("address-book sync: %v\n%s", got, body)
	}
	// Three more changes push the oldest out of a log of three.
	for _, uid := range []string{"c3", "c4", "c5"} {
		do(t, srv, "alice", "PUT", "/dav/contacts/alice/friends/"+uid+".vcf", map[string]string{"Content-Type": "text/vcard"}, card(uid))
	}
	if code, body := do(t, srv, "alice", "REPORT", "/dav/contacts/alice/friends/", xmlHdr, syncBody(token0, "")); code != http.StatusForbidden || !strings.Contains(body, "valid-sync-token") {
		t.Errorf("a token older than the log: %d %s, want 403", code, body)
	}
	code, body := do(t, srv, "alice", "REPORT", "/dav/contacts/alice/friends/", xmlHdr, syncBody(r.Token, ""))
	if got := parseMultistatus(t, body).changed(); code != http.StatusMultiStatus || len(got) != 3 {
		t.Errorf("a token within the log: %d %v", code, got)
	}
	_, body = do(t, srv, "alice", "PROPFIND", "/dav/contacts/alice/friends/", map[string]string{"Depth": "0", "Content-Type": "application/xml"}, ctagPropfind)
	for _, want := range []string{"getctag", "sync-collection", "addressbook-multiget", "<write/>"} {
		if !strings.Contains(body, want) {
			t.Errorf("address-book PROPFIND lacks %s:\n%s", want, body)
		}
	}
}
