package settings_test

import (
	"encoding/json"
	"html"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/settings"
	"github.com/appauth/appauth/internal/testenv"
)

var createdRedirect = regexp.MustCompile(`^/(?:[a-z]+/)?security\?created=([A-Za-z0-9_-]+)#created$`)

// followCreate checks that the create form answered with a redirect to
// the page view that shows the new secret, and opens that view.
func (c *client) followCreate(t *testing.T, w *httptest.ResponseRecorder) *httptest.ResponseRecorder {
	t.Helper()
	loc := w.Header().Get("Location")
	if w.Code != http.StatusSeeOther || !createdRedirect.MatchString(loc) {
		t.Fatalf("create: %d Location %q, want 303 to security?created=ID#created; body %.300s", w.Code, loc, w.Body)
	}
	if newPassword.MatchString(w.Body.String()) {
		t.Fatal("the redirect itself holds the secret")
	}
	return c.get(strings.TrimPrefix(strings.TrimSuffix(loc, "#created"), c.e.prefix))
}

func shownSecret(t *testing.T, body string) string {
	t.Helper()
	m := newPassword.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("the new password is not on the page: %.2000s", body)
	}
	return html.UnescapeString(m[1])
}

func prefixed(o *settings.Options) {
	o.Prefix = "/account/"
	o.ServerURL = "https://dav.example.com/"
	o.PrincipalURL = func(u *auth.User) string { return "https://dav.example.com:8443/dav/principals/" + u.Login + "/" }
}

// TestCreateIsPostRedirectGet: creating answers with a redirect; the view
// it leads to shows the secret once; reloading it shows no secret and
// issues nothing, and says the moment has passed.
func TestCreateIsPostRedirectGet(t *testing.T) {
	e := newEnv(t, nil, prefixed)
	c := e.client()
	signInForm(t, c, "alice", alicePassword)
	post := c.form("app-passwords", "name", "My iPhone")
	view := c.followCreate(t, post)
	loc := strings.TrimSuffix(post.Header().Get("Location"), "#created")
	body := wantPage(t, view, 200, `id="created"`, `tabindex="-1"`, `aria-describedby="created-once"`, `role="status" aria-live="polite" id="created-announce"`)
	if cc := view.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("the view with the secret has Cache-Control %q", cc)
	}
	secret := shownSecret(t, body)
	if !e.appPasswordWorks("alice", secret) {
		t.Fatal("the shown password does not work")
	}
	// Reload (three times, as in the issue): no secret, no new password.
	for range 3 {
		again := wantPage(t, c.get(strings.TrimPrefix(loc, e.prefix)), 200,
			"The password of “My iPhone” was shown once and cannot be shown again")
		if strings.Contains(again, secret) || newPassword.MatchString(again) {
			t.Fatal("the secret is shown again on reload")
		}
	}
	if aps, _ := e.m.ListAppPasswords(t.Context(), "u-alice"); len(aps) != 1 {
		t.Fatalf("%d app passwords after reloads, want 1", len(aps))
	}
	if strings.Contains(e.logs.String(), secret) {
		t.Error("the secret is in the log")
	}
}

// TestCreateFormURLRedirects: opening the form's URL with GET leads to
// the page (signed in) or the sign-in page, never a bare 405.
func TestCreateFormURLRedirects(t *testing.T) {
	e := newEnv(t, nil, prefixed)
	c := e.client()
	wantRedirect(t, c.get("app-passwords"), "/account/signin")
	signInForm(t, c, "alice", alicePassword)
	wantRedirect(t, c.get("app-passwords"), "/account/security")
}

// TestShownOnceIsBoundToTheSession: another session, the owner's own
// included, cannot see the secret, and does not use up its one showing;
// nor does a held secret outlive its ten minutes.
func TestShownOnceIsBoundToTheSession(t *testing.T) {
	e := newEnv(t, nil, prefixed)
	alice, other, bob := e.client(), e.client(), e.client()
	signInForm(t, alice, "alice", alicePassword)
	signInForm(t, other, "alice", alicePassword)
	signInForm(t, bob, "bob", bobPassword)
	post := alice.form("app-passwords", "name", "My iPhone")
	path := strings.TrimPrefix(strings.TrimSuffix(post.Header().Get("Location"), "#created"), e.prefix)
	for _, c := range []*client{other, bob} {
		if body := wantPage(t, c.get(path), 200); newPassword.MatchString(body) || strings.Contains(body, "created-profile") {
			t.Fatal("another session was shown the secret")
		}
	}
	secret := shownSecret(t, wantPage(t, alice.get(path), 200))
	if !e.appPasswordWorks("alice", secret) {
		t.Fatal("the shown password does not work")
	}

	// Not followed within ten minutes: gone.
	post = alice.form("app-passwords", "name", "iPad")
	e.clock.Add(10 * time.Minute)
	if body := alice.followCreate(t, post).Body.String(); newPassword.MatchString(body) || !strings.Contains(body, "was shown once") {
		t.Errorf("a secret held for ten minutes was still shown: %.300s", body)
	}
}

// TestCreateWithAccessChoices: the form's preset and expiry reach the new
// app password, the list says them in words, and a choice not offered is
// refused with the choices kept and nothing created.
func TestCreateWithAccessChoices(t *testing.T) {
	e := newEnv(t, nil, prefixed)
	c := e.client()
	body := signInForm(t, c, "alice", alicePassword)
	for _, want := range []string{`<legend>What may it reach?</legend>`, `name="access" value="everything" id="access-everything" checked`,
		`<label for="expires">Expires</label>`, `<option value="never" selected>Never</option>`, `name="expires-date" type="date"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the create form lacks %s", want)
		}
	}
	body = wantPage(t, c.followCreate(t, c.form("app-passwords", "name", "Phone", "access", "dav-read-only", "expires", "30d")), 200,
		`<dd id="created-access">Calendars and contacts, read-only</dd>`)
	secret := shownSecret(t, body)
	aps, _ := e.m.ListAppPasswords(t.Context(), "u-alice")
	if len(aps) != 1 || !slices.Equal(aps[0].Scopes, []string{"calendars", "contacts", "read-only"}) ||
		!aps[0].ExpiresAt.Equal(e.clock.Now().Add(30*24*time.Hour)) {
		t.Fatalf("created %+v; want calendars, contacts, read-only, expiring in 30 days", aps)
	}
	p, err := e.m.Authenticate(t.Context(), auth.Attempt{Username: "alice", Password: secret})
	if err != nil || p.HasScope(auth.ScopeFiles) || !p.HasScope(auth.ScopeCalendars) {
		t.Fatalf("principal %+v, %v: want calendars and not files", p, err)
	}
	list := wantPage(t, c.get("security"), 200, "Access: Calendars and contacts, read-only",
		`Expires <time datetime="2026-12-29T12:00:00Z">29 Dec 2026, 12:00 UTC</time>`)
	if strings.Contains(list, secret) {
		t.Error("the list shows the secret")
	}
	c.followCreate(t, c.form("app-passwords", "name", "Laptop", "expires", "date", "expires-date", "2027-02-01"))
	wantPage(t, c.get("security"), 200, "Access: Everything", `Expires <time datetime="2027-02-02T00:00:00Z">`)

	for _, bad := range [][]string{
		{"access", "admin"},
		{"expires", "forever"},
		{"expires", "date", "expires-date", "2026-11-29"},
		{"access", "files", "access", "everything"},
	} {
		w := c.form("app-passwords", append([]string{"name", "Refused"}, bad...)...)
		body := wantPage(t, w, 400, "Could not create the app password", `id="access-choices" aria-invalid="true"`, `value="Refused"`)
		if newPassword.MatchString(body) {
			t.Errorf("%v: created", bad)
		}
	}
	if aps, _ := e.m.ListAppPasswords(t.Context(), "u-alice"); len(aps) != 2 {
		t.Errorf("%d app passwords, want 2: refused choices created some", len(aps))
	}
	// A refused date keeps what was chosen.
	wantPage(t, c.form("app-passwords", "name", "Refused", "access", "files", "expires", "date", "expires-date", "2001-01-01"), 400,
		`value="files" id="access-files" checked`, `<option value="date" selected>`, `value="2001-01-01"`, "after today")
}

// TestListShowsUnusedExpiry: with ExpireUnusedAfter the list says until
// when a password may go unused; whichever expiry comes first is shown.
func TestListShowsUnusedExpiry(t *testing.T) {
	e := newEnv(t, func(o *auth.Options) { o.ExpireUnusedAfter = 90 * 24 * time.Hour }, prefixed)
	c := e.client()
	signInForm(t, c, "alice", alicePassword)
	c.followCreate(t, c.form("app-passwords", "name", "Tablet"))
	c.followCreate(t, c.form("app-passwords", "name", "Loaner", "expires", "30d"))
	body := wantPage(t, c.get("security"), 200,
		`Expires if unused until <time datetime="2027-02-27T12:00:00Z">`, // Tablet: 90 days unused
		`Expires <time datetime="2026-12-29T12:00:00Z">`)                 // Loaner: 30 days, sooner
	if strings.Count(body, "Expires if unused until") != 1 {
		t.Errorf("want one unused-expiry line:\n%s", body)
	}
}

// profileResult is what test code reads from a profile with python3's
// plistlib, an independent parser.
type profileResult struct {
	PayloadType    string
	PayloadVersion int
	PayloadUUID    string
	PayloadContent []map[string]any
}

func parseProfile(t *testing.T, body []byte) profileResult {
	t.Helper()
	py := testenv.Program(t, "/usr/bin/python3", "-c", "import plistlib")
	cmd := exec.Command(py, "-c", `import json, plistlib, sys; print(json.dumps(plistlib.load(sys.stdin.buffer, fmt=plistlib.FMT_XML)))`)
	cmd.Stdin = strings.NewReader(string(body))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("plistlib refused the profile: %v: %s\n%s", err, out, body)
	}
	var p profileResult
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestAppleProfile: while the shown-once box is shown, it offers a
// configuration profile that parses as a property list with a CalDAV and
// a CardDAV account holding the server, username and this password; the
// next page view makes it 404, as do another session, a revoked password,
// and a password whose access reaches neither calendars nor contacts.
func TestAppleProfile(t *testing.T) {
	e := newEnv(t, nil, prefixed)
	c := e.client()
	signInForm(t, c, "alice", alicePassword)
	post := c.form("app-passwords", "name", `Alice's <iPhone> & "more"`)
	id := createdRedirect.FindStringSubmatch(post.Header().Get("Location"))[1]
	profilePath := "app-passwords/" + id + "/profile"
	if w := c.get(profilePath); w.Code != http.StatusNotFound {
		t.Errorf("profile before the box is shown: %d, want 404", w.Code)
	}
	body := wantPage(t, c.followCreate(t, post), 200, `href="/account/`+profilePath+`" id="created-profile" download>Download profile for iPhone, iPad and Mac</a>`)
	secret := shownSecret(t, body)

	other := e.client()
	signInForm(t, other, "alice", alicePassword)
	if w := other.get(profilePath); w.Code != http.StatusNotFound || strings.Contains(w.Body.String(), secret) {
		t.Errorf("another session's profile: %d, want 404", w.Code)
	}

	w := c.get(profilePath)
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/x-apple-aspen-config" ||
		w.Header().Get("Cache-Control") != "no-store" || !strings.Contains(w.Header().Get("Content-Disposition"), `.mobileconfig"`) {
		t.Fatalf("profile: %d %v", w.Code, w.Header())
	}
	p := parseProfile(t, w.Body.Bytes())
	if p.PayloadType != "Configuration" || p.PayloadVersion != 1 || p.PayloadUUID == "" || len(p.PayloadContent) != 2 {
		t.Fatalf("profile: %+v", p)
	}
	for i, want := range []struct{ typ, prefix string }{{"com.apple.caldav.account", "CalDAV"}, {"com.apple.carddav.account", "CardDAV"}} {
		pl := p.PayloadContent[i]
		for k, v := range map[string]any{
			"PayloadType": want.typ, want.prefix + "HostName": "dav.example.com", want.prefix + "Port": float64(8443),
			want.prefix + "UseSSL": true, want.prefix + "PrincipalURL": "https://dav.example.com:8443/dav/principals/alice/",
			want.prefix + "Username": "alice", want.prefix + "Password": secret, "PayloadVersion": float64(1),
		} {
			if pl[k] != v {
				t.Errorf("%s %s = %#v, want %#v", want.typ, k, pl[k], v)
			}
		}
		if d, _ := pl[want.prefix+"AccountDescription"].(string); !strings.Contains(d, `Alice's <iPhone> & "more"`) {
			t.Errorf("%s description %q lacks the name", want.typ, d)
		}
	}
	if p.PayloadContent[0]["PayloadUUID"] == p.PayloadContent[1]["PayloadUUID"] {
		t.Error("the payloads share a UUID")
	}

	// The next page view closes the box: 404 from then on.
	wantPage(t, c.get("security"), 200)
	if w := c.get(profilePath); w.Code != http.StatusNotFound || strings.Contains(w.Body.String(), secret) {
		t.Errorf("profile after the box closed: %d, want 404", w.Code)
	}

	// Revoked while shown: no profile.
	post = c.form("app-passwords", "name", "Mac")
	id = createdRedirect.FindStringSubmatch(post.Header().Get("Location"))[1]
	c.followCreate(t, post)
	if err := e.m.RevokeAppPassword(t.Context(), "u-alice", id); err != nil {
		t.Fatal(err)
	}
	if w := c.get("app-passwords/" + id + "/profile"); w.Code != http.StatusNotFound {
		t.Errorf("profile of a revoked password: %d, want 404", w.Code)
	}

	// Files only: no calendar or contacts account to configure.
	post = c.form("app-passwords", "name", "NAS", "access", "files")
	id = createdRedirect.FindStringSubmatch(post.Header().Get("Location"))[1]
	if body := c.followCreate(t, post).Body.String(); strings.Contains(body, "created-profile") {
		t.Error("a files-only password offers a CalDAV/CardDAV profile")
	}
	if w := c.get("app-passwords/" + id + "/profile"); w.Code != http.StatusNotFound {
		t.Errorf("profile of a files-only password: %d, want 404", w.Code)
	}
	// Calendars and contacts, read-only: both accounts.
	post = c.form("app-passwords", "name", "Watch", "access", "dav-read-only")
	id = createdRedirect.FindStringSubmatch(post.Header().Get("Location"))[1]
	c.followCreate(t, post)
	if p := parseProfile(t, c.get("app-passwords/"+id+"/profile").Body.Bytes()); len(p.PayloadContent) != 2 {
		t.Errorf("calendars-and-contacts profile has %d payloads", len(p.PayloadContent))
	}
}

// TestNoProfileWithoutPrincipalURL: the profile needs to know where the
// principal is; without it the box offers none.
func TestNoProfileWithoutPrincipalURL(t *testing.T) {
	e := newEnv(t, nil, func(o *settings.Options) { o.Prefix = "/account/" })
	c := e.client()
	signInForm(t, c, "alice", alicePassword)
	post := c.form("app-passwords", "name", "Phone")
	id := createdRedirect.FindStringSubmatch(post.Header().Get("Location"))[1]
	if body := c.followCreate(t, post).Body.String(); strings.Contains(body, "created-profile") {
		t.Error("a profile is offered without PrincipalURL")
	}
	if w := c.get("app-passwords/" + id + "/profile"); w.Code != http.StatusNotFound {
		t.Errorf("profile without PrincipalURL: %d", w.Code)
	}
}

// TestAPIShowsUnusedExpiry: the JSON API says it too, and only with the option.
func TestAPIShowsUnusedExpiry(t *testing.T) {
	for _, on := range []bool{false, true} {
		e := newEnv(t, func(o *auth.Options) {
			if on {
				o.ExpireUnusedAfter = 90 * 24 * time.Hour
			}
		}, nil)
		c := e.client()
		c.signIn("alice", alicePassword)
		c.createAppPassword("Tablet")
		body := c.api("GET", "app-passwords", "").Body.String()
		if got := strings.Contains(body, `"unusedExpiresAt":"2027-02-27T12:00:00Z"`); got != on {
			t.Errorf("ExpireUnusedAfter set %v: unusedExpiresAt in %s", on, body)
		}
	}
}

// TestShownOnceSurvivesAnOutage: a store outage on the page view that was
// to show the secret is a 503, and the secret is shown on the retry.
func TestShownOnceSurvivesAnOutage(t *testing.T) {
	e := newEnv(t, nil, prefixed)
	c := e.client()
	signInForm(t, c, "alice", alicePassword)
	post := c.form("app-passwords", "name", "My iPhone")
	path := strings.TrimPrefix(strings.TrimSuffix(post.Header().Get("Location"), "#created"), e.prefix)
	e.store.Fail(auth.ErrUnavailable)
	if w := c.get(path); w.Code != http.StatusServiceUnavailable || newPassword.MatchString(w.Body.String()) {
		t.Fatalf("view during an outage: %d, want 503 without the secret", w.Code)
	}
	e.store.Fail(nil)
	if secret := shownSecret(t, wantPage(t, c.get(path), 200)); !e.appPasswordWorks("alice", secret) {
		t.Fatal("the secret shown after the outage does not work")
	}
}
