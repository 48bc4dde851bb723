package settings

import (
	"bytes"
	"errors"
	"html/template"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
)

var accessNow = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

func TestAccessPresetsAreWellFormed(t *testing.T) {
	ids := map[string]bool{}
	for _, p := range accessPresets {
		if ids[p.ID] || p.ID == "" || p.Label == "" {
			t.Errorf("preset %+v: empty or duplicate ID or label", p)
		}
		ids[p.ID] = true
		// The list names a credential's access by comparing sorted
		// scopes, as the Manager stores them.
		if !slices.IsSorted(p.Scopes) || len(slices.Compact(slices.Clone(p.Scopes))) != len(p.Scopes) {
			t.Errorf("preset %s: scopes %v not sorted and unique", p.ID, p.Scopes)
		}
	}
	if accessPresets[0].Scopes != nil {
		t.Errorf("the default preset %s is restricted; the default must stay what a form without the field got", accessPresets[0].ID)
	}
}

func TestParseAccessPresets(t *testing.T) {
	want := map[string][]string{
		"everything":      nil,
		"dav":             {"calendars", "contacts"},
		"files":           {"files"},
		"read-only":       {"calendars", "contacts", "files", "read-only"},
		"dav-read-only":   {"calendars", "contacts", "read-only"},
		"files-read-only": {"files", "read-only"},
		"network":         {"network"},
	}
	for id, scopes := range want {
		got, exp, err := parseAccess(url.Values{"access": {id}}, accessNow)
		if err != nil || !slices.Equal(got, scopes) || !exp.IsZero() {
			t.Errorf("access=%s: got %v, %v, %v; want %v, never", id, got, exp, err, scopes)
		}
	}
	if len(want) != len(accessPresets) {
		t.Errorf("%d presets, %d checked here", len(accessPresets), len(want))
	}
	// Without the fields: the default, as before the choices existed.
	if got, exp, err := parseAccess(url.Values{"name": {"x"}}, accessNow); err != nil || got != nil || !exp.IsZero() {
		t.Errorf("no fields: got %v, %v, %v; want unrestricted, never", got, exp, err)
	}
	// The returned scopes are the caller's to keep.
	got, _, _ := parseAccess(url.Values{"access": {"files"}}, accessNow)
	got[0] = "changed"
	if presetByID("files").Scopes[0] != auth.ScopeFiles {
		t.Error("parseAccess returned the preset's own slice")
	}
}

func TestParseAccessExpiry(t *testing.T) {
	for _, tc := range []struct {
		form url.Values
		want time.Time
	}{
		{url.Values{"expires": {"never"}}, time.Time{}},
		{url.Values{"expires": {"never"}, "expires-date": {"2027-01-01"}}, time.Time{}}, // the date is only read for "date"
		{url.Values{"expires": {"30d"}}, accessNow.Add(30 * 24 * time.Hour)},
		{url.Values{"expires": {"90d"}}, accessNow.Add(90 * 24 * time.Hour)},
		{url.Values{"expires": {"1y"}}, accessNow.Add(365 * 24 * time.Hour)},
		{url.Values{"expires": {"date"}, "expires-date": {"2026-03-15"}}, time.Date(2026, 3, 16, 0, 0, 0, 0, time.UTC)},
		{url.Values{"expires": {"date"}, "expires-date": {" 2030-12-31 "}}, time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		_, got, err := parseAccess(tc.form, accessNow.In(time.FixedZone("far east", 13*3600)))
		if err != nil || !got.Equal(tc.want) || got.Location() != time.UTC {
			t.Errorf("%v: got %v, %v; want %v UTC", tc.form, got, err, tc.want)
		}
	}
}

func TestParseAccessRefusesUnknown(t *testing.T) {
	for _, form := range []url.Values{
		{"access": {"root"}},
		{"access": {""}},
		{"access": {"Everything"}},
		{"access": {"everything", "files"}}, // two answers: which one?
		{"expires": {"forever"}},
		{"expires": {""}},
		{"expires": {"30d", "never"}},
		{"expires": {"date"}},
		{"expires": {"date"}, "expires-date": {""}},
		{"expires": {"date"}, "expires-date": {"2026-03-14"}}, // today
		{"expires": {"date"}, "expires-date": {"2026-03-13"}},
		{"expires": {"date"}, "expires-date": {"1970-01-01"}},
		{"expires": {"date"}, "expires-date": {"2026-02-30"}},
		{"expires": {"date"}, "expires-date": {"14/03/2027"}},
		{"expires": {"date"}, "expires-date": {"2036-03-16"}}, // beyond ten years
		{"expires": {"date"}, "expires-date": {"99999-01-01"}},
		{"expires": {"date"}, "expires-date": {strings.Repeat("2027-01-01", 10000)}},
		{"expires": {"date"}, "expires-date": {"2027-01-01", "2028-01-01"}},
	} {
		scopes, exp, err := parseAccess(form, accessNow)
		var ie *auth.InputError
		if !errors.As(err, &ie) || !errors.Is(err, auth.ErrInvalidInput) || ie.Message == "" || scopes != nil || !exp.IsZero() {
			t.Errorf("%.100v: got %v, %v, %v; want an *auth.InputError and nothing else", form, scopes, exp, err)
		}
	}
}

func TestDescribeAccess(t *testing.T) {
	for _, p := range accessPresets {
		if got := describeAccess(p.Scopes); got != p.Label {
			t.Errorf("preset %s: got %q, want its label %q", p.ID, got, p.Label)
		}
	}
	for _, tc := range []struct {
		scopes []string
		want   string
	}{
		{[]string{}, "Everything"},
		{[]string{"contacts", "calendars"}, "Calendars and contacts"}, // any order
		{[]string{"read-only", "files", "files"}, "Files only, read-only"},
		{[]string{"calendars"}, "Calendars"},
		{[]string{"contacts", "read-only"}, "Contacts, read-only"},
		{[]string{"calendars", "files"}, "Calendars, files"},
		{[]string{"network"}, "Wi-Fi and VPN"},
		{[]string{"calendars", "network"}, "Calendars, Wi-Fi and VPN"},
		{[]string{"read-only"}, "Nothing (read-only, no area)"},
	} {
		if got := describeAccess(tc.scopes); got != tc.want {
			t.Errorf("%v: got %q, want %q", tc.scopes, got, tc.want)
		}
	}
}

func TestDescribeExpiry(t *testing.T) {
	at := accessNow.Add(30 * 24 * time.Hour)
	later := at.Add(24 * time.Hour)
	for _, tc := range []struct {
		expires, unused time.Time
		words           string
		at              time.Time
	}{
		{time.Time{}, time.Time{}, "Never expires", time.Time{}},
		{at, time.Time{}, "Expires", at},
		{time.Time{}, at, "Expires if unused until", at},
		{later, at, "Expires if unused until", at},
		{at, later, "Expires", at},
	} {
		got := describeExpiry(tc.expires, tc.unused)
		if got.Words != tc.words || !got.At.T.Equal(tc.at) {
			t.Errorf("expires %v, unused %v: got %q %v; want %q %v", tc.expires, tc.unused, got.Words, got.At.T, tc.words, tc.at)
		}
	}
}

// TestAccessChoicesTemplate renders the partial and posts back every value
// it offers: each one parseAccess accepts, and the posted choice stays
// selected when the form is shown again.
func TestAccessChoicesTemplate(t *testing.T) {
	tmpl := template.Must(template.New("t").ParseFS(assets, "templates/access.html"))
	render := func(f accessForm) string {
		var buf bytes.Buffer
		if err := tmpl.ExecuteTemplate(&buf, "access-choices", f); err != nil {
			t.Fatal(err)
		}
		return buf.String()
	}
	page := render(newAccessForm(nil, accessNow))
	radios := regexp.MustCompile(`<input type="radio" name="access" value="([^"]+)"[^>]*?( checked)?>`).FindAllStringSubmatch(page, -1)
	if len(radios) != len(accessPresets) {
		t.Fatalf("%d access radios, want %d:\n%s", len(radios), len(accessPresets), page)
	}
	for i, m := range radios {
		if (m[2] != "") != (i == 0) {
			t.Errorf("radio %s checked=%v; want only the first checked", m[1], m[2] != "")
		}
		if _, _, err := parseAccess(url.Values{"access": {m[1]}}, accessNow); err != nil {
			t.Errorf("offered access %q refused: %v", m[1], err)
		}
	}
	options := regexp.MustCompile(`<option value="([^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(options) != len(expiryChoices) || !strings.Contains(page, `name="expires"`) {
		t.Fatalf("%d expiry options, want %d in a select named expires:\n%s", len(options), len(expiryChoices), page)
	}
	for _, m := range options {
		form := url.Values{"expires": {m[1]}, "expires-date": {"2026-06-01"}}
		if _, _, err := parseAccess(form, accessNow); err != nil {
			t.Errorf("offered expiry %q refused: %v", m[1], err)
		}
	}
	if !strings.Contains(page, `name="expires-date" type="date" min="2026-03-15"`) {
		t.Errorf("the date field does not start tomorrow:\n%s", page)
	}
	// Shown again after an error: the choices are kept.
	again := render(newAccessForm(url.Values{"access": {"files-read-only"}, "expires": {"date"}, "expires-date": {"2027-01-01"}}, accessNow))
	for _, want := range []string{`value="files-read-only" id="access-files-read-only" checked`, `<option value="date" selected>`, `value="2027-01-01"`} {
		if !strings.Contains(again, want) {
			t.Errorf("shown again: no %s in\n%s", want, again)
		}
	}
	// A posted value that is not offered selects the default, escaped nowhere.
	hostile := render(newAccessForm(url.Values{"access": {`"><script>`}, "expires-date": {`"><x>`}}, accessNow))
	if strings.Contains(hostile, "<script>") || strings.Contains(hostile, "<x>") {
		t.Errorf("posted values reached the page:\n%s", hostile)
	}
}

// FuzzParseAccess: whatever is posted, parseAccess returns a preset's
// scopes and an expiry in the next ten years (or never), or an
// *auth.InputError, and nothing else.
func FuzzParseAccess(f *testing.F) {
	f.Add("access=files&expires=30d")
	f.Add("expires=date&expires-date=2027-01-01")
	f.Add("access=everything&access=files&expires=date&expires-date=%00")
	f.Fuzz(func(t *testing.T, query string) {
		form, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		scopes, exp, err := parseAccess(form, accessNow)
		if err != nil {
			var ie *auth.InputError
			if !errors.As(err, &ie) || scopes != nil || !exp.IsZero() {
				t.Fatalf("%q: %v, %v, %v", query, scopes, exp, err)
			}
			return
		}
		if !slices.ContainsFunc(accessPresets, func(p accessPreset) bool { return slices.Equal(p.Scopes, scopes) }) {
			t.Fatalf("%q: scopes %v are no preset's", query, scopes)
		}
		if !exp.IsZero() && (!exp.After(accessNow) || exp.After(accessNow.AddDate(10, 0, 0))) {
			t.Fatalf("%q: expiry %v", query, exp)
		}
	})
}
