package main

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
	"slices"
	"strings"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/httpauth"
	"github.com/appauth/appauth/auth/loginflow"
	"github.com/appauth/appauth/examples/davserver/internal/davstore"
)

// The paths where Nextcloud clients (DAVx⁵'s "Login with Nextcloud", the
// desktop client and nextcloudcmd, the mobile apps) look for what they
// need: the same DAV tree as under /dav, Login Flow v2, a status and the
// OCS calls they make before syncing.
const (
	ncDAV       = "/remote.php/dav"
	ncWebDAV    = "/remote.php/webdav/" // the legacy files root, without the login
	ncVersion   = "30.0.0.0"            // what status.php and capabilities claim
	ncVersionSt = "30.0.0"
)

// nextcloud is what mountNextcloud needs.
type nextcloud struct {
	dav          *davstore.Store
	limits       *bodyLimits
	authenticate func(http.Handler) http.Handler
	flows        *loginflow.Flows
	manager      *auth.Manager
	title        string
}

// ownFiles is the areaFinder of the legacy files root: all of it is files.
type ownFiles struct{}

func (ownFiles) Area(string) (string, bool) { return "files", true }

// mountNextcloud adds the Nextcloud-compatible endpoints to mux.
func mountNextcloud(mux *http.ServeMux, nc nextcloud) {
	rdav := nc.dav.At(ncDAV)
	mux.Handle(ncDAV+"/", nc.authenticate(requireAreaScope(rdav, limitBodiesIf(rdav, nc.limits, rdav))))
	// DAVx⁵ appends "remote.php/dav" to the server and starts there.
	mux.Handle(ncDAV, nc.authenticate(limitBodiesIf(rdav, nc.limits, http.HandlerFunc(rdav.ServeDiscovery))))
	mux.Handle(ncWebDAV, nc.authenticate(requireAreaScope(ownFiles{}, limitBodiesIf(ownFiles{}, nc.limits, nc.dav.ServeOwnFiles(ncWebDAV)))))

	if nc.flows != nil {
		mux.Handle("POST /index.php/login/v2", nc.flows)
		mux.Handle("POST /login/v2/poll", nc.flows)
		mux.Handle("POST /index.php/login/v2/poll", nc.flows)
	}
	revoke := nc.authenticate(loginflow.RevokeHandler(nc.manager, httpauth.PrincipalFromContext))
	mux.Handle("DELETE /ocs/v2.php/core/apppassword", revoke)
	mux.Handle("DELETE /ocs/v1.php/core/apppassword", revoke)

	mux.HandleFunc("GET /status.php", nc.status)
	for _, v := range []string{"v1", "v2"} {
		mux.HandleFunc("GET /ocs/"+v+".php/cloud/capabilities", nc.capabilities)
		mux.Handle("GET /ocs/"+v+".php/cloud/user", nc.authenticate(http.HandlerFunc(nc.user)))
	}
}

// status answers status.php as an installed, current Nextcloud does; the
// desktop client refuses a server without it.
func (nc nextcloud) status(w http.ResponseWriter, r *http.Request) {
	writeNCJSON(w, http.StatusOK, map[string]any{
		"installed": true, "maintenance": false, "needsDbUpgrade": false,
		"version": ncVersion, "versionstring": ncVersionSt, "edition": "",
		"productname": nc.title, "extendedSupport": false,
	})
}

// capabilities tells clients what is served: WebDAV files without
// chunked uploads, sharing, versions or the trash bin.
func (nc nextcloud) capabilities(w http.ResponseWriter, r *http.Request) {
	writeOCS(w, r, map[string]any{
		"version": map[string]any{"major": 30, "minor": 0, "micro": 0, "string": ncVersionSt, "edition": "", "extendedSupport": false},
		"capabilities": map[string]any{
			"core":  map[string]any{"pollinterval": 60, "webdav-root": strings.Trim(ncWebDAV, "/")},
			"files": map[string]any{"bigfilechunking": false, "undelete": false, "versioning": false},
		},
	})
}

// user answers cloud/user: the account the credential belongs to. Its id
// names the DAV folder /remote.php/dav/files/{id}/, so it is the login.
func (nc nextcloud) user(w http.ResponseWriter, r *http.Request) {
	p, ok := httpauth.PrincipalFromContext(r.Context())
	if !ok {
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	name := p.User.DisplayName
	if name == "" {
		name = p.User.Login
	}
	writeOCS(w, r, map[string]any{"id": p.User.Login, "display-name": name, "displayname": name, "email": p.User.Email, "enabled": true})
}

func writeNCJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// writeOCS writes an OCS answer: JSON with format=json (or an Accept of
// JSON), else XML, the form older clients parse. OCS v1 says success with
// statuscode 100, v2 with 200.
func writeOCS(w http.ResponseWriter, r *http.Request, data map[string]any) {
	code := 100
	if strings.HasPrefix(r.URL.Path, "/ocs/v2.php/") {
		code = 200
	}
	meta := map[string]any{"status": "ok", "statuscode": code, "message": "OK"}
	if r.URL.Query().Get("format") == "json" || strings.Contains(r.Header.Get("Accept"), "application/json") {
		writeNCJSON(w, http.StatusOK, map[string]any{"ocs": map[string]any{"meta": meta, "data": data}})
		return
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write([]byte(xml.Header))
	enc := xml.NewEncoder(w)
	start := xml.StartElement{Name: xml.Name{Local: "ocs"}}
	enc.EncodeToken(start)
	encodeXML(enc, "meta", meta)
	encodeXML(enc, "data", data)
	enc.EncodeToken(start.End())
	enc.Flush()
}

// encodeXML writes v as element name, maps as nested elements in sorted
// order (an OCS XML answer is a tree of named values).
func encodeXML(enc *xml.Encoder, name string, v any) {
	start := xml.StartElement{Name: xml.Name{Local: name}}
	switch x := v.(type) {
	case map[string]any:
		enc.EncodeToken(start)
		for _, k := range sortedKeys(x) {
			encodeXML(enc, k, x[k])
		}
		enc.EncodeToken(start.End())
	case bool:
		s := "0"
		if x {
			s = "1"
		}
		enc.EncodeElement(s, start)
	default:
		enc.EncodeElement(x, start)
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
