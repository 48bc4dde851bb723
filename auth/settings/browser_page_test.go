package settings_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/settings"
	"github.com/appauth/appauth/internal/browser"
)

// longLogin is a username as long as real ones get (an e-mail address),
// with no space to wrap at.
const longLogin = "dorothea.vandermeulen-schmidt@example.com"

// clipCheck measures, in the page, whether the text of the element the
// CSS selector names is
// shown in full: every line box of its text lies inside the viewport and
// inside every ancestor that clips overflow, and the element itself does
// not overflow.
const clipCheck = `(() => {
  const el = document.querySelector(%q);
  if (!el) return JSON.stringify({missing: true});
  const r = document.createRange();
  r.selectNodeContents(el);
  const rects = Array.from(r.getClientRects()).filter(q => q.width > 0);
  const vw = document.documentElement.clientWidth;
  let clipped = rects.length === 0;
  for (const q of rects) {
    if (q.left < -0.5 || q.right > vw + 0.5) clipped = true;
    for (let a = el; a; a = a.parentElement) {
      const cs = getComputedStyle(a);
      if (cs.overflowX !== "visible" || cs.textOverflow === "ellipsis") {
        const b = a.getBoundingClientRect();
        if (q.left < b.left - 0.5 || q.right > b.right + 0.5) clipped = true;
      }
    }
  }
  if (el.scrollWidth > el.clientWidth + 1) clipped = true;
  return JSON.stringify({clipped, text: el.textContent, lines: rects.length, vw});
})()`

type clipResult struct {
	Missing bool
	Clipped bool
	Text    string
	Lines   int
	VW      int
}

// TestBrowserCreateAtPhoneWidth creates an app password in Chromium at
// 390 px, the width of a phone: the access choices reach the password,
// the focus lands on the shown-once box, which is announced, the long
// username is shown in full, and reloading shows no secret and creates
// nothing.
func TestBrowserCreateAtPhoneWidth(t *testing.T) {
	ctx := newBrowser(t)
	e := newEnv(t, func(o *auth.Options) { o.Now = time.Now }, func(o *settings.Options) {
		o.Now = time.Now
		o.Title = "Example Cloud"
		o.ServerURL = "https://dav.example.com/"
	})
	const pw = "long-login password"
	if err := e.dir.AddUser(auth.User{ID: "u-long", Login: longLogin}, pw); err != nil {
		t.Fatal(err)
	}
	srv := userStoryServer(t, e)
	id := func(s string) chromedp.ID { return chromedp.ID(s) }
	browser.Do(t, ctx, "sign in at 390px",
		chromedp.EmulateViewport(390, 844),
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(id("username")),
		chromedp.SendKeys(id("username"), longLogin),
		chromedp.SendKeys(id("password"), pw),
		chromedp.Click(id("signin-submit")),
		chromedp.WaitVisible(id("devices-h")),
	)
	browser.Do(t, ctx, "create with calendars and contacts, 90 days",
		chromedp.SendKeys(id("app-name"), "My iPhone"),
		chromedp.Click(id("access-dav")),
		chromedp.SetValue(id("expires"), "90d"),
		chromedp.Click(id("create-submit")),
		chromedp.WaitVisible(id("created-password")),
	)
	secret := browser.Get(t, ctx, "password", chromedp.Text(id("created-password")))
	screenshot(t, ctx, filepath.Join(t.TempDir(), "created-phone.png"), 390)

	// The focus is on the box, whose name and description are read out,
	// and the live region says what happened.
	focused := browser.Get(t, ctx, "focus", chromedp.Evaluate[string](`document.activeElement && document.activeElement.id`))
	if focused != "created" {
		t.Errorf("focus is on %q, want the shown-once box", focused)
	}
	if role := browser.Get(t, ctx, "role", chromedp.Evaluate[string](`document.getElementById("created").getAttribute("role")`)); role != "region" {
		t.Errorf("box role %q", role)
	}
	browser.Do(t, ctx, "announced", chromedp.Poll[chromedp.Void](`document.getElementById("created-announce").textContent.includes("New app password for My iPhone created")`))
	if live := browser.Get(t, ctx, "live", chromedp.Evaluate[string](`document.getElementById("created-announce").getAttribute("aria-live")`)); live != "polite" {
		t.Errorf("announcement aria-live %q", live)
	}

	// The username (in the box and at the top, where a user without a
	// display name sees the login) and the password, in full at 390 px.
	for _, el := range []string{"#created-login", "header .who", "#created-password"} {
		var res clipResult
		js := browser.Get(t, ctx, "measure "+el, chromedp.Evaluate[string](fmt.Sprintf(clipCheck, el)))
		if err := json.Unmarshal([]byte(js), &res); err != nil {
			t.Fatal(err)
		}
		if res.Missing || res.Clipped || res.VW != 390 {
			t.Errorf("%s at %dpx: %+v: its text is clipped", el, res.VW, res)
		}
		if el != "#created-password" && res.Text != longLogin {
			t.Errorf("%s shows %q, want %q", el, res.Text, longLogin)
		}
	}
	if w := browser.Get(t, ctx, "page width", chromedp.Evaluate[int](`document.documentElement.scrollWidth`)); w > 390 {
		t.Errorf("at 390px the page is %dpx wide", w)
	}

	// Reload: no secret, no second password.
	browser.Do(t, ctx, "reload",
		chromedp.Reload(),
		chromedp.WaitVisible(id("app-passwords")),
		chromedp.WaitNotPresent(id("created-password")),
	)
	if html := browser.Get(t, ctx, "page", chromedp.OuterHTML(chromedp.CSS("html"))); strings.Contains(html, secret) {
		t.Error("the secret is on the page after a reload")
	}
	notice := browser.Get(t, ctx, "notice", chromedp.Text(chromedp.CSS(".notice")))
	if !strings.Contains(notice, "shown once") {
		t.Errorf("notice after reload: %q", notice)
	}
	aps, err := e.m.ListAppPasswords(t.Context(), "u-long")
	if err != nil || len(aps) != 1 {
		t.Fatalf("after a reload: %d app passwords, %v; want 1", len(aps), err)
	}
	if !slices.Equal(aps[0].Scopes, []string{"calendars", "contacts"}) || aps[0].ExpiresAt.IsZero() {
		t.Errorf("created %+v: want calendars and contacts, expiring", aps[0])
	}
	item := browser.Get(t, ctx, "list", chromedp.Text(chromedp.CSS(`li[data-id="`+aps[0].ID+`"]`)))
	if !strings.Contains(item, "Access: Calendars and contacts") || !strings.Contains(item, "Expires") {
		t.Errorf("list item %q does not say the access and expiry", item)
	}
}
