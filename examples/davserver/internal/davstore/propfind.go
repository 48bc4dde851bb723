package davstore

import (
	"bytes"
	"encoding/xml"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// PROPFIND on calendars and address books: go-webdav answers, and davstore
// fills in the properties go-webdav does not know (getctag, sync-token,
// supported-report-set, current-user-privilege-set) when a client names
// them, moving them from go-webdav's 404 propstat to the 200 one. A PROPFIND
// that names none of them goes straight to go-webdav.

var (
	getctagName         = xml.Name{Space: nsCS, Local: "getctag"}
	syncTokenName       = xml.Name{Space: nsDAV, Local: "sync-token"}
	supportedReportName = xml.Name{Space: nsDAV, Local: "supported-report-set"}
	privilegeSetName    = xml.Name{Space: nsDAV, Local: "current-user-privilege-set"}
	extraProps          = []xml.Name{getctagName, syncTokenName, supportedReportName, privilegeSetName}
)

// propfindBody is the part of a PROPFIND body davstore reads.
type propfindBody struct {
	Prop *propList `xml:"DAV: prop"`
}

// extrasRequested returns the properties of extraProps that a PROPFIND body
// names. An allprop or empty body names none (RFC 6578 keeps sync-token out
// of allprop).
func extrasRequested(body []byte) []xml.Name {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	var pf propfindBody
	if xml.Unmarshal(body, &pf) != nil || pf.Prop == nil {
		return nil
	}
	var out []xml.Name
	for _, n := range pf.Prop.names() {
		if slices.Contains(extraProps, n) && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// bufferedResponse is an http.ResponseWriter that keeps the response.
type bufferedResponse struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }
func (b *bufferedResponse) WriteHeader(code int) {
	if b.code == 0 {
		b.code = code
	}
}
func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.code == 0 {
		b.code = http.StatusOK
	}
	return b.body.Write(p)
}

// Generic multistatus, as go-webdav writes it with encoding/xml: every
// element in a default namespace, so an inner fragment stays valid when
// written again inside an element of the same namespace.
type msMultistatus struct {
	Responses []msResponse `xml:"DAV: response"`
}

type msResponse struct {
	Href      string       `xml:"DAV: href"`
	Status    string       `xml:"DAV: status"`
	Propstats []msPropstat `xml:"DAV: propstat"`
}

type msPropstat struct {
	Prop struct {
		Props []msAny `xml:",any"`
	} `xml:"DAV: prop"`
	Status string `xml:"DAV: status"`
}

type msAny struct {
	XMLName xml.Name
	Inner   string `xml:",innerxml"`
}

// servePropfindExtras serves a PROPFIND through next and adds the requested
// extra properties to its answer.
func (s *Store) servePropfindExtras(w http.ResponseWriter, r *http.Request, area string, u User, extras []xml.Name, next http.Handler) {
	rec := &bufferedResponse{header: http.Header{}}
	next.ServeHTTP(rec, r)
	var ms msMultistatus
	if rec.code != http.StatusMultiStatus || xml.Unmarshal(rec.body.Bytes(), &ms) != nil {
		copyResponse(w, rec)
		return
	}
	var out bytes.Buffer
	out.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<multistatus xmlns="DAV:">`)
	for _, resp := range ms.Responses {
		values := s.extraValues(resp.Href, area, u, extras)
		out.WriteString(`<response><href>` + escapeText(resp.Href) + `</href>`)
		if resp.Status != "" {
			out.WriteString(`<status>` + escapeText(resp.Status) + `</status>`)
		}
		added := false
		for _, ps := range resp.Propstats {
			var props bytes.Buffer
			ok := strings.Contains(ps.Status, " 200 ")
			for _, p := range ps.Prop.Props {
				if _, known := values[p.XMLName]; known && !ok {
					continue // moved to the 200 propstat
				}
				writeElement(&props, p.XMLName, p.Inner)
			}
			if ok && !added {
				writeValues(&props, values)
				added = true
			}
			if props.Len() > 0 {
				out.WriteString(`<propstat><prop>` + props.String() + `</prop><status>` + escapeText(ps.Status) + `</status></propstat>`)
			}
		}
		if !added && len(values) > 0 {
			var props bytes.Buffer
			writeValues(&props, values)
			out.WriteString(`<propstat><prop>` + props.String() + `</prop><status>HTTP/1.1 200 OK</status></propstat>`)
		}
		out.WriteString(`</response>`)
	}
	out.WriteString(`</multistatus>`)
	for k, v := range rec.header {
		if k != "Content-Length" {
			w.Header()[k] = v
		}
	}
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.WriteHeader(http.StatusMultiStatus)
	w.Write(out.Bytes())
}

// writeValues writes the extra properties in a fixed order.
func writeValues(out *bytes.Buffer, values map[xml.Name]string) {
	for _, n := range extraProps {
		if v, ok := values[n]; ok {
			writeElement(out, n, v)
		}
	}
}

func copyResponse(w http.ResponseWriter, rec *bufferedResponse) {
	for k, v := range rec.header {
		w.Header()[k] = v
	}
	if rec.code == 0 {
		rec.code = http.StatusOK
	}
	w.WriteHeader(rec.code)
	w.Write(rec.body.Bytes())
}

// extraValues returns the values (inner XML) of the extra properties that
// the resource at href has: collections all four, their members and the
// home the privileges.
func (s *Store) extraValues(href, area string, u User, extras []xml.Name) map[xml.Name]string {
	hu, err := url.Parse(href)
	if err != nil {
		return nil
	}
	p, err := s.parse(hu.Path, area, u)
	if err != nil {
		return nil
	}
	values := map[xml.Name]string{}
	if slices.Contains(extras, privilegeSetName) {
		values[privilegeSetName] = privileges(u.ReadOnly)
	}
	if p.coll == "" || p.obj != "" {
		return values
	}
	dir, ok := s.collectionDir(hu.Path, area, u)
	if !ok {
		return values
	}
	if slices.Contains(extras, getctagName) || slices.Contains(extras, syncTokenName) {
		s.mu.Lock()
		l, err := loadChanges(dir)
		s.mu.Unlock()
		if err == nil {
			if slices.Contains(extras, getctagName) {
				values[getctagName] = escapeText(l.ctag())
			}
			if slices.Contains(extras, syncTokenName) {
				values[syncTokenName] = escapeText(l.token())
			}
		}
	}
	if slices.Contains(extras, supportedReportName) {
		reports := []xml.Name{{Space: nsDAV, Local: "sync-collection"}}
		if area == "calendars" {
			reports = append(reports, xml.Name{Space: nsCalDAV, Local: "calendar-query"}, xml.Name{Space: nsCalDAV, Local: "calendar-multiget"})
		} else {
			reports = append(reports, xml.Name{Space: nsCardDAV, Local: "addressbook-query"}, xml.Name{Space: nsCardDAV, Local: "addressbook-multiget"})
		}
		var b bytes.Buffer
		for _, n := range reports {
			b.WriteString(`<supported-report><report>`)
			writeEmpty(&b, n)
			b.WriteString(`</report></supported-report>`)
		}
		values[supportedReportName] = b.String()
	}
	return values
}

// privileges is the inner XML of current-user-privilege-set: the owner may
// do everything with their own data, or only read with a read-only
// credential.
func privileges(readOnly bool) string {
	names := []string{"read", "read-current-user-privilege-set"}
	if !readOnly {
		names = append(names, "write", "write-properties", "write-content", "bind", "unbind")
	}
	var b strings.Builder
	for _, n := range names {
		b.WriteString(`<privilege><` + n + `/></privilege>`)
	}
	return b.String()
}
