package davstore

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestToDoTimeRange: a calendar made without a component list takes
// to-dos, and a calendar-query time range matches to-dos by DUE (and the
// rest of RFC 4791, 9.9), not only events.
func TestToDoTimeRange(t *testing.T) {
	srv, _, _ := newServer(t)
	if code, _ := do(t, srv, "alice", "MKCALENDAR", "/dav/calendars/alice/tasks/", nil, ""); code != http.StatusCreated {
		t.Fatalf("MKCALENDAR: %d", code)
	}
	obj := func(comp, uid string, props ...string) string {
		return strings.Join(append(append([]string{"BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:x", "BEGIN:" + comp, "UID:" + uid, "DTSTAMP:20260101T000000Z"}, props...),
			"END:"+comp, "END:VCALENDAR", ""), "\r\n")
	}
	for name, body := range map[string]string{
		"due-in":       obj("VTODO", "due-in", "DUE:20260305T120000Z", "SUMMARY:due-in"),
		"due-out":      obj("VTODO", "due-out", "DUE:20260405T120000Z", "SUMMARY:due-out"),
		"start-due-in": obj("VTODO", "start-due-in", "DTSTART:20260201T000000Z", "DUE:20260303T000000Z"),
		"done-before":  obj("VTODO", "done-before", "COMPLETED:20260101T000000Z"),
		"undated":      obj("VTODO", "undated", "SUMMARY:undated"),
		"event-in":     obj("VEVENT", "event-in", "DTSTART:20260302T100000Z", "DTEND:20260302T110000Z"),
	} {
		if code, b := do(t, srv, "alice", "PUT", "/dav/calendars/alice/tasks/"+name+".ics", map[string]string{"Content-Type": "text/calendar"}, body); code != http.StatusCreated {
			t.Fatalf("PUT %s: %d %s", name, code, b)
		}
	}
	if code, _ := do(t, srv, "alice", "PUT", "/dav/calendars/alice/tasks/j.ics", map[string]string{"Content-Type": "text/calendar"}, obj("VJOURNAL", "j")); code != http.StatusForbidden && code != http.StatusConflict {
		t.Errorf("VJOURNAL in a VEVENT and VTODO calendar: %d, want 403", code)
	}
	query := func(comp string) []string {
		t.Helper()
		body := `<?xml version="1.0" encoding="utf-8"?>
<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><D:getetag/></D:prop>
<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="` + comp + `">
<C:time-range start="20260301T000000Z" end="20260401T000000Z"/></C:comp-filter></C:comp-filter></C:filter></C:calendar-query>`
		code, resp := do(t, srv, "alice", "REPORT", "/dav/calendars/alice/tasks/", map[string]string{"Content-Type": "application/xml", "Depth": "1"}, body)
		if code != http.StatusMultiStatus {
			t.Fatalf("calendar-query: %d %s", code, resp)
		}
		var names []string
		for _, r := range parseMultistatus(t, resp).Responses {
			names = append(names, strings.TrimSuffix(strings.TrimPrefix(r.Href, "/dav/calendars/alice/tasks/"), ".ics"))
		}
		slices.Sort(names)
		return names
	}
	if got, want := query("VTODO"), []string{"due-in", "start-due-in", "undated"}; !slices.Equal(got, want) {
		t.Errorf("to-dos in March: %v, want %v", got, want)
	}
	if got, want := query("VEVENT"), []string{"event-in"}; !slices.Equal(got, want) {
		t.Errorf("events in March: %v, want %v", got, want)
	}
}
