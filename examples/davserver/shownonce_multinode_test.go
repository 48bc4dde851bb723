package main

import (
	"html"
	"io"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

var (
	formCSRF     = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	shownSecret  = regexp.MustCompile(`<code id="created-password" class="password">([^<]+)</code>`)
	shownProfile = regexp.MustCompile(`href="([^"]+)" id="created-profile"`)
	createdTo    = regexp.MustCompile(`^/security\?created=([A-Za-z0-9_-]+)#created$`)
)

// servedBy returns which node answered the requests do made, asserting it
// was exactly one request.
func (rr *roundRobin) servedBy(t *testing.T, do func()) string {
	t.Helper()
	rr.mu.Lock()
	before := maps.Clone(rr.served)
	rr.mu.Unlock()
	do()
	rr.mu.Lock()
	defer rr.mu.Unlock()
	var node string
	for host, n := range rr.served {
		switch n - before[host] {
		case 0:
		case 1:
			if node != "" {
				t.Fatalf("two nodes answered one request: %v then %v", before, rr.served)
			}
			node = host
		default:
			t.Fatalf("node %s answered %d requests for one", host, n-before[host])
		}
	}
	if node == "" {
		t.Fatal("no node answered")
	}
	return node
}

// shownOnceAcrossNodes creates an app password with the page's form
// through the proxy: the redirected page view lands on another node and
// shows the new secret, a third node serves its profile, and a reload
// shows it no more.
func shownOnceAcrossNodes(t *testing.T, c *webClient, rr *roundRobin, front string, propfind func(*http.Client, string, string) int, stderr func() string) {
	t.Helper()
	hc := *c.hc
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	get := func(path string) (int, string, http.Header) {
		t.Helper()
		resp, err := hc.Get(c.base + strings.TrimPrefix(path, "/"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	_, page, _ := get("security")
	m := formCSRF.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("security page without a CSRF field: %.500s", page)
	}
	var loc string
	created := rr.servedBy(t, func() {
		form := url.Values{"csrf": {html.UnescapeString(m[1])}, "name": {"Tablet"}}
		req, _ := http.NewRequest("POST", c.base+"app-passwords", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", front)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		loc = resp.Header.Get("Location")
		if resp.StatusCode != http.StatusSeeOther || !createdTo.MatchString(loc) {
			t.Fatalf("create form through the proxy: %d Location %q, want 303 to security?created=ID\n%.500s\n%s", resp.StatusCode, loc, b, stderr())
		}
	})
	view := strings.TrimSuffix(loc, "#created")
	var body string
	shown := rr.servedBy(t, func() {
		var st int
		st, body, _ = get(view)
		if st != http.StatusOK {
			t.Fatalf("page view after the create: %d\n%s", st, stderr())
		}
	})
	if shown == created {
		t.Fatalf("the redirected page view landed on the creating node %s: the proxy did not spread them", shown)
	}
	s := shownSecret.FindStringSubmatch(body)
	if s == nil {
		t.Fatalf("the page view on node %s (created on %s) does not show the new secret: %.2000s\n%s", shown, created, body, stderr())
	}
	secret := html.UnescapeString(s[1])
	p := shownProfile.FindStringSubmatch(body)
	if p == nil {
		t.Fatalf("no profile link beside the new secret: %.2000s", body)
	}
	profile := rr.servedBy(t, func() {
		st, b, hdr := get(html.UnescapeString(p[1]))
		if st != http.StatusOK || hdr.Get("Content-Type") != "application/x-apple-aspen-config" || !strings.Contains(b, secret) {
			t.Fatalf("profile download: %d %q, want 200 with the new secret\n%s", st, hdr.Get("Content-Type"), stderr())
		}
	})
	if profile == shown || profile == created {
		t.Fatalf("the profile was served by a node (%s) already used (%s, %s)", profile, created, shown)
	}
	if st := propfind(clientFrom(t, "127.0.0.2", nil), c.base, secret); st != http.StatusMultiStatus {
		t.Fatalf("the shown secret through the proxy: %d, want 207", st)
	}
	// The reload, on yet another node: no secret, and the page says why.
	st, again, _ := get(view)
	if st != http.StatusOK || shownSecret.MatchString(again) || strings.Contains(again, secret) {
		t.Fatalf("reloaded page view: %d, shows the secret again: %.2000s", st, again)
	}
	if !strings.Contains(again, "was shown once and cannot be shown again") {
		t.Errorf("reloaded page view does not say the secret was shown once: %.2000s", again)
	}
	if st, _, _ := get(html.UnescapeString(p[1])); st != http.StatusNotFound {
		t.Errorf("profile after the box is gone: %d, want 404", st)
	}
}
