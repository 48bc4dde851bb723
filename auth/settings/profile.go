package settings

import (
	"bytes"
	"crypto/sha256"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/appauth/appauth/auth"
)

// A configuration profile for Apple devices (iPhone, iPad, Mac): a
// property list with a CalDAV and a CardDAV account payload holding the
// server, the username and the new app password, so the device needs
// nothing typed. It is built when downloaded, from the secret held for the
// shown-once box (see shownonce.go), and only while that box is shown.

// profileMIME is the type Apple devices open as a profile.
const profileMIME = "application/x-apple-aspen-config"

// profilePayload is one account payload of a profile.
type profilePayload struct {
	typ, prefix, display string // "com.apple.caldav.account", "CalDAV", "Calendars"
}

var (
	caldavPayload  = profilePayload{"com.apple.caldav.account", "CalDAV", "Calendars"}
	carddavPayload = profilePayload{"com.apple.carddav.account", "CardDAV", "Contacts"}
)

// profilePayloads returns the accounts a credential of scopes can use:
// none for one that reaches neither calendars nor contacts.
func profilePayloads(scopes []string) []profilePayload {
	has := func(s string) bool { return len(scopes) == 0 || slices.Contains(scopes, s) }
	var out []profilePayload
	if has(auth.ScopeCalendars) {
		out = append(out, caldavPayload)
	}
	if has(auth.ScopeContacts) {
		out = append(out, carddavPayload)
	}
	return out
}

// profileServer is where the profile's accounts connect.
type profileServer struct {
	host      string
	port      int
	tls       bool
	principal string // absolute URL
}

// parseProfileServer reads the host, port and TLS from a principal URL.
func parseProfileServer(principal string) (profileServer, error) {
	u, err := url.Parse(principal)
	if err != nil || u.Hostname() == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return profileServer{}, fmt.Errorf("principal URL %q: want an absolute http or https URL", principal)
	}
	s := profileServer{host: u.Hostname(), tls: u.Scheme == "https", principal: u.String(), port: 80}
	if s.tls {
		s.port = 443
	}
	if p := u.Port(); p != "" {
		if s.port, err = strconv.Atoi(p); err != nil || s.port < 1 || s.port > 65535 {
			return profileServer{}, fmt.Errorf("principal URL %q: bad port", principal)
		}
	}
	return s, nil
}

// buildProfile returns the profile for the app password in c (with its
// secret), for the accounts in payloads.
func buildProfile(title string, srv profileServer, c createdView, payloads []profilePayload) []byte {
	var b plistWriter
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">` + "\n" +
		`<plist version="1.0">` + "\n<dict>\n")
	// Identifiers derive from the host and the credential ID: downloading
	// the profile again replaces the installed one instead of adding a copy.
	base := reverseHost(srv.host) + ".appauth." + c.ID
	b.key("PayloadContent")
	b.WriteString("<array>\n")
	for _, p := range payloads {
		b.WriteString("<dict>\n")
		b.str(p.prefix+"AccountDescription", title+" "+p.display+" ("+c.Name+")")
		b.str(p.prefix+"HostName", srv.host)
		b.integer(p.prefix+"Port", srv.port)
		b.boolean(p.prefix+"UseSSL", srv.tls)
		b.str(p.prefix+"PrincipalURL", srv.principal)
		b.str(p.prefix+"Username", c.Login)
		b.str(p.prefix+"Password", c.Password)
		b.str("PayloadDisplayName", p.display)
		b.str("PayloadIdentifier", base+"."+strings.ToLower(p.prefix))
		b.str("PayloadType", p.typ)
		b.str("PayloadUUID", nameUUID(base+"."+p.typ))
		b.integer("PayloadVersion", 1)
		b.WriteString("</dict>\n")
	}
	b.WriteString("</array>\n")
	b.str("PayloadDescription", "Calendar and contacts accounts for "+c.Login+" with the app password “"+c.Name+"”. Revoke it on the "+title+" page to disconnect.")
	b.str("PayloadDisplayName", title+" ("+c.Name+")")
	b.str("PayloadIdentifier", base)
	b.boolean("PayloadRemovalDisallowed", false)
	b.str("PayloadType", "Configuration")
	b.str("PayloadUUID", nameUUID(base))
	b.integer("PayloadVersion", 1)
	b.WriteString("</dict>\n</plist>\n")
	return b.Bytes()
}

// plistWriter writes the XML form of a property list.
type plistWriter struct{ bytes.Buffer }

func (b *plistWriter) key(k string) {
	b.WriteString("<key>")
	xml.EscapeText(b, []byte(k))
	b.WriteString("</key>")
}

func (b *plistWriter) str(k, v string) {
	b.key(k)
	b.WriteString("<string>")
	xml.EscapeText(b, []byte(v)) // also replaces what XML cannot hold
	b.WriteString("</string>\n")
}

func (b *plistWriter) integer(k string, v int) {
	b.key(k)
	fmt.Fprintf(b, "<integer>%d</integer>\n", v)
}

func (b *plistWriter) boolean(k string, v bool) {
	b.key(k)
	if v {
		b.WriteString("<true/>\n")
	} else {
		b.WriteString("<false/>\n")
	}
}

// reverseHost turns dav.example.com into com.example.dav, the form of
// profile identifiers.
func reverseHost(host string) string {
	parts := strings.Split(strings.Trim(host, "[]"), ".")
	slices.Reverse(parts)
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '-'
	}, strings.Join(parts, "."))
}

// nameUUID returns a name-based UUID (version 8, from SHA-256) for name.
func nameUUID(name string) string {
	h := sha256.Sum256([]byte("appauth profile\x00" + name))
	h[6] = h[6]&0x0f | 0x80
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%X-%X-%X-%X-%X", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// profileFile serves the profile of app password {id} while its shown-once
// box is shown to this session; afterwards, or for any other session or
// credential, 404.
func (h *Handler) profileFile(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	held, err := h.held.shownNow(r.Context(), s, id, h.opts.Now())
	if err != nil {
		h.unavailablePage(w, r, err)
		return
	}
	if held == nil || held.user != s.userID() || h.opts.PrincipalURL == nil {
		h.errorPage(w, r, http.StatusNotFound, "Not found",
			"The profile can only be downloaded while its new app password is shown. Create a new app password to get one.")
		return
	}
	payloads := profilePayloads(held.scopes)
	srv, err := parseProfileServer(h.opts.PrincipalURL(&s.p.User))
	if err != nil || len(payloads) == 0 {
		h.errorPage(w, r, http.StatusNotFound, "Not found", "No profile is available for this app password.")
		return
	}
	// A password revoked since it was shown gets no profile.
	aps, err := h.m.ListAppPasswords(r.Context(), s.userID())
	if err != nil {
		h.failPage(w, r, err, "")
		return
	}
	if !slices.ContainsFunc(aps, func(a *auth.AppPassword) bool { return a.ID == id }) {
		h.failPage(w, r, auth.ErrNotFound, "app password")
		return
	}
	body := buildProfile(h.opts.Title, srv, held.view, payloads)
	w.Header().Set("Content-Type", profileMIME)
	w.Header().Set("Content-Disposition", `attachment; filename="`+profileFileName(h.opts.Title)+`.mobileconfig"`)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}

// profileFileName makes a file name of title: letters, digits and dashes.
func profileFileName(title string) string {
	var b strings.Builder
	for _, r := range title {
		switch {
		case r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
		if b.Len() >= 40 {
			break
		}
	}
	name := strings.Trim(b.String(), "-")
	if name == "" {
		return "account"
	}
	return name
}
