package settings

import (
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/appauth/appauth/auth"
)

// The access and expiry choices a person makes when a new app password is
// issued: on the create form and on any other page that issues one (a
// device-login grant page). Both include the "access-choices" template
// (templates/access.html) with an [accessForm], and read the answer with
// [parseAccess].

// accessPreset is one of the access choices, mapped to the scopes it grants.
type accessPreset struct {
	ID     string   // the form value; stable, lowercase
	Label  string   // what the person reads
	Scopes []string // sorted; nil means unrestricted
}

// accessPresets are the access choices, in the order the page offers them;
// the first is the default. A server that maps requests to a new scope
// offers it by adding an entry here; scopes are kept sorted, as
// [auth.Manager] stores them, so the list can name a credential's access
// by comparing.
var accessPresets = []accessPreset{
	{ID: "everything", Label: "Everything", Scopes: nil},
	{ID: "dav", Label: "Calendars and contacts", Scopes: []string{auth.ScopeCalendars, auth.ScopeContacts}},
	{ID: "files", Label: "Files only", Scopes: []string{auth.ScopeFiles}},
	{ID: "read-only", Label: "Calendars, contacts and files, read-only",
		Scopes: []string{auth.ScopeCalendars, auth.ScopeContacts, auth.ScopeFiles, auth.ScopeReadOnly}},
	{ID: "dav-read-only", Label: "Calendars and contacts, read-only",
		Scopes: []string{auth.ScopeCalendars, auth.ScopeContacts, auth.ScopeReadOnly}},
	{ID: "files-read-only", Label: "Files only, read-only", Scopes: []string{auth.ScopeFiles, auth.ScopeReadOnly}},
	// Network access only (RADIUS, package auth/radiusrest): a Wi-Fi or
	// VPN password that opens no calendar or file.
	{ID: "network", Label: "Wi-Fi and VPN", Scopes: []string{auth.ScopeNetwork}},
}

// scopeWords name single scopes, for a credential whose scopes match no
// preset (one issued through the API).
var scopeWords = map[string]string{
	auth.ScopeCalendars: "calendars",
	auth.ScopeContacts:  "contacts",
	auth.ScopeFiles:     "files",
	auth.ScopeNetwork:   "Wi-Fi and VPN",
}

// expiryChoice is one of the expiry choices. A zero After with ID "never"
// never expires; ID "date" takes the date field.
type expiryChoice struct {
	ID    string
	Label string
	After time.Duration
}

const (
	expiryNever = "never"
	expiryDate  = "date"
	day         = 24 * time.Hour
	// maxExpiryYears bounds a chosen date: further is a typo (year 20260)
	// more often than a plan, and "never" says it better.
	maxExpiryYears = 10
)

// expiryChoices are the expiry choices, in the order the page offers them;
// the first is the default.
var expiryChoices = []expiryChoice{
	{ID: expiryNever, Label: "Never"},
	{ID: "30d", Label: "In 30 days", After: 30 * day},
	{ID: "90d", Label: "In 90 days", After: 90 * day},
	{ID: "1y", Label: "In 1 year", After: 365 * day},
	{ID: expiryDate, Label: "On a date…"},
}

// Form field names of the choices.
const (
	fieldAccess      = "access"
	fieldExpires     = "expires"
	fieldExpiresDate = "expires-date"
	dateLayout       = "2006-01-02"
)

// accessForm is what the "access-choices" template shows: the choices and
// the ones selected (kept when a form is shown again after an error).
type accessForm struct {
	Presets  []accessPreset
	Expiries []expiryChoice
	Access   string // selected preset ID
	Expires  string // selected expiry ID
	Date     string // the date field, as posted
	MinDate  string // tomorrow, the earliest date the date field accepts
	Invalid  bool   // the last answer was refused: mark the fieldset
}

// newAccessForm returns the choices with the posted ones selected (the
// defaults when form is nil or lacks them).
func newAccessForm(form url.Values, now time.Time) accessForm {
	f := accessForm{
		Presets: accessPresets, Expiries: expiryChoices,
		Access: accessPresets[0].ID, Expires: expiryChoices[0].ID,
		MinDate: now.UTC().Add(day).Format(dateLayout),
	}
	if v := form.Get(fieldAccess); presetByID(v) != nil {
		f.Access = v
	}
	if v := form.Get(fieldExpires); expiryByID(v) != nil {
		f.Expires = v
	}
	if v := form.Get(fieldExpiresDate); len(v) == len(dateLayout) {
		f.Date = v
	}
	return f
}

func presetByID(id string) *accessPreset {
	for i := range accessPresets {
		if accessPresets[i].ID == id {
			return &accessPresets[i]
		}
	}
	return nil
}

func expiryByID(id string) *expiryChoice {
	for i := range expiryChoices {
		if expiryChoices[i].ID == id {
			return &expiryChoices[i]
		}
	}
	return nil
}

// parseAccess turns the posted choices into the scopes and the expiry of a
// new app password (zero: never). A missing field takes the default
// (everything, never); an unknown preset or expiry, a malformed date, or a
// date not after today or more than ten years ahead is an
// [*auth.InputError]. A chosen date expires at the end of that day, UTC.
func parseAccess(form url.Values, now time.Time) (scopes []string, expiresAt time.Time, err error) {
	now = now.UTC()
	p := &accessPresets[0]
	if v, ok := form[fieldAccess]; ok {
		if len(v) != 1 || presetByID(v[0]) == nil {
			return nil, time.Time{}, &auth.InputError{Message: "unknown access choice"}
		}
		p = presetByID(v[0])
	}
	e := &expiryChoices[0]
	if v, ok := form[fieldExpires]; ok {
		if len(v) != 1 || expiryByID(v[0]) == nil {
			return nil, time.Time{}, &auth.InputError{Message: "unknown expiry choice"}
		}
		e = expiryByID(v[0])
	}
	switch {
	case e.ID == expiryDate:
		v := form[fieldExpiresDate]
		if len(v) != 1 || v[0] == "" {
			return nil, time.Time{}, &auth.InputError{Message: "choose the expiry date"}
		}
		d, perr := time.Parse(dateLayout, strings.TrimSpace(v[0]))
		if perr != nil {
			return nil, time.Time{}, &auth.InputError{Message: "the expiry date must be a date like 2030-12-31"}
		}
		if !d.After(now.Truncate(day)) {
			return nil, time.Time{}, &auth.InputError{Message: "the expiry date must be after today"}
		}
		expiresAt = d.Add(day) // the end of that day
		if expiresAt.After(now.AddDate(maxExpiryYears, 0, 0)) {
			return nil, time.Time{}, &auth.InputError{Message: "the expiry date must be within ten years; choose \"never\" instead"}
		}
	case e.After > 0:
		expiresAt = now.Add(e.After)
	}
	return slices.Clone(p.Scopes), expiresAt, nil
}

// describeAccess says in words what scopes grant: a preset's label when
// they match one, else the scopes themselves ("calendars, files,
// read-only").
func describeAccess(scopes []string) string {
	sorted := slices.Sorted(slices.Values(scopes))
	sorted = slices.Compact(sorted)
	for _, p := range accessPresets {
		if slices.Equal(p.Scopes, sorted) || len(p.Scopes) == 0 && len(sorted) == 0 {
			return p.Label
		}
	}
	var words []string
	readOnly := false
	for _, s := range sorted {
		switch w, ok := scopeWords[s]; {
		case s == auth.ScopeReadOnly:
			readOnly = true
		case ok:
			words = append(words, w)
		default:
			words = append(words, s)
		}
	}
	if len(words) == 0 {
		// Only "read-only": no area is granted, so nothing can be read.
		return "Nothing (read-only, no area)"
	}
	out := upperFirst(strings.Join(words, ", "))
	if readOnly {
		out += ", read-only"
	}
	return out
}

// expiryView is a credential's expiry in words: Words, then At when set
// (the template shows At as a <time>, which the page's script localizes).
type expiryView struct {
	Words string
	At    timeView
}

// describeExpiry says when a credential expires: at expiresAt, or, if it
// is not used, at unusedUntil (either zero: not set); the earlier of the
// two is the one that will happen first, so it is the one shown.
func describeExpiry(expiresAt, unusedUntil time.Time) expiryView {
	switch {
	case expiresAt.IsZero() && unusedUntil.IsZero():
		return expiryView{Words: "Never expires"}
	case !unusedUntil.IsZero() && (expiresAt.IsZero() || unusedUntil.Before(expiresAt)):
		return expiryView{Words: "Expires if unused until", At: timeView{unusedUntil}}
	}
	return expiryView{Words: "Expires", At: timeView{expiresAt}}
}
