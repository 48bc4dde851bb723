package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// hostileArgs are the flags of the server that TestHostileRequests attacks:
// a short body read deadline and a small file limit, so the test needs
// neither long waits nor large uploads.
var hostileArgs = []string{"-read-timeout", "1s", "-max-file-size", "1M"}

// peakRSS is the peak resident memory of process pid (VmHWM), in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}

// nested is an XML body of depth levels of nesting (about 3 bytes each)
// inside a PROPFIND's prop or a REPORT's root element.
func nested(root string, depth int) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>` + root)
	for range depth {
		b.WriteString("<a>")
	}
	return b.Bytes()
}

const (
	propfindRoot = `<D:propfind xmlns:D="DAV:"><D:prop>`
	reportRoot   = `<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop>`
)

// TestHostileRequests attacks the built server with an app password (any
// credential can send these): deeply nested XML, oversized XML, calendar,
// vCard and file bodies, too many elements, and a body that never ends.
// Each gets a 4xx, the server answers the next request, and its peak memory
// stays bounded.
func TestHostileRequests(t *testing.T) {
	bin := buildServer(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	// A data folder and database that exist already, with loose modes.
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "appauth.db"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	srv := startServerWith(t, bin, dir, append([]string{"-addr", "127.0.0.1:0", "-data", data}, hostileArgs...), nil)
	user, password := bannerValue(srv.banner, "username"), bannerValue(srv.banner, "password")
	web := signIn(t, srv.base, user, password)
	app := web.createAppPassword("Attacker's phone")
	pid := srv.cmd.Process.Pid

	for _, f := range []struct {
		name string
		mode os.FileMode
	}{{"data", 0o700}, {"data/appauth.db", 0o600}, {"data/dav", 0o700}, {"data/appauth.db-wal", 0o600}, {"data/appauth.db-shm", 0o600}} {
		st, err := os.Stat(filepath.Join(dir, f.name))
		if os.IsNotExist(err) && strings.Contains(f.name, "-") {
			continue // no WAL yet
		}
		if err != nil || st.Mode().Perm() != f.mode {
			t.Errorf("%s: %v, mode %v, want %v", f.name, err, st.Mode().Perm(), f.mode)
		}
	}

	host := strings.TrimSuffix(strings.TrimPrefix(srv.base, "http://"), "/")
	// send writes a request on its own connection while it reads the
	// response, as a careful client does: a server that refuses a large
	// body answers early and then hangs up, and a client that only reads
	// after writing everything would see the reset, not the answer.
	send := func(method, path string, hdr map[string]string, body io.Reader, length int64) (int, error) {
		conn, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(60 * time.Second)) // a safety net only
		var head strings.Builder
		fmt.Fprintf(&head, "%s /%s HTTP/1.1\r\nHost: %s\r\nAuthorization: Basic %s\r\n", method, strings.TrimPrefix(path, "/"), host, basic(user, app.Password))
		for k, v := range hdr {
			fmt.Fprintf(&head, "%s: %s\r\n", k, v)
		}
		switch {
		case body == nil:
			head.WriteString("Content-Length: 0\r\n")
		case length >= 0:
			fmt.Fprintf(&head, "Content-Length: %d\r\n", length)
		default:
			head.WriteString("Transfer-Encoding: chunked\r\n")
		}
		head.WriteString("\r\n")
		go func() {
			w := bufio.NewWriter(conn)
			w.WriteString(head.String())
			if body != nil && length >= 0 {
				io.Copy(w, body)
			} else if body != nil {
				buf := make([]byte, 64<<10)
				for {
					n, err := body.Read(buf)
					if n > 0 {
						fmt.Fprintf(w, "%x\r\n", n)
						w.Write(buf[:n])
						w.WriteString("\r\n")
					}
					if err != nil {
						break
					}
				}
				w.WriteString("0\r\n\r\n")
			}
			w.Flush() // errors: the server hung up, which the response tells
		}()
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	alive := func(after string) {
		t.Helper()
		code, err := send("PROPFIND", "dav/files/"+user+"/", map[string]string{"Depth": "0"}, nil, 0)
		if err != nil || code != http.StatusMultiStatus {
			t.Fatalf("after %s the server does not answer: %d %v\nstderr:\n%s", after, code, err, srv.stderr)
		}
	}
	xmlHdr := map[string]string{"Content-Type": "application/xml", "Depth": "1"}
	if code, err := send("MKCALENDAR", "dav/calendars/"+user+"/work/", nil, nil, 0); err != nil || code != http.StatusCreated {
		t.Fatalf("MKCALENDAR: %d %v", code, err)
	}
	before := peakRSS(t, pid)

	big := strings.Repeat("<D:getetag/>", 12<<20/len("<D:getetag/>"))
	manyElements := strings.Repeat("<D:getetag/>", 60_000) // 720 kB: under the size limit
	ics := "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\nUID:big\r\nDTSTAMP:20260102T030405Z\r\nDTSTART:20260203T100000Z\r\nDESCRIPTION:" +
		strings.Repeat("x", 50<<20) + "\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
	vcf := "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:" + strings.Repeat("x", 50<<20) + "\r\nEND:VCARD\r\n"
	for _, a := range []struct {
		name, method, path, body string
		hdr                      map[string]string
		want                     int
	}{
		{"9 MB nested PROPFIND on /dav/", "PROPFIND", "dav/", string(nested(propfindRoot, 3<<20)), xmlHdr, http.StatusRequestEntityTooLarge},
		{"9 MB nested REPORT on a calendar", "REPORT", "dav/calendars/" + user + "/work/", string(nested(reportRoot, 3<<20)), xmlHdr, http.StatusRequestEntityTooLarge},
		{"900 kB nested PROPFIND on /dav/", "PROPFIND", "dav/", string(nested(propfindRoot, 300_000)), xmlHdr, http.StatusBadRequest},
		{"900 kB nested PROPFIND on / (discovery)", "PROPFIND", "", string(nested(propfindRoot, 300_000)), xmlHdr, http.StatusBadRequest},
		{"9 MB nested PROPFIND on / (discovery)", "PROPFIND", "", string(nested(propfindRoot, 3<<20)), xmlHdr, http.StatusRequestEntityTooLarge},
		{"900 kB nested REPORT on a calendar", "REPORT", "dav/calendars/" + user + "/work/", string(nested(reportRoot, 300_000)), xmlHdr, http.StatusBadRequest},
		{"900 kB nested PROPFIND on contacts", "PROPFIND", "dav/contacts/" + user + "/", string(nested(propfindRoot, 300_000)), xmlHdr, http.StatusBadRequest},
		{"900 kB nested PROPFIND on files", "PROPFIND", "dav/files/" + user + "/", string(nested(propfindRoot, 300_000)), xmlHdr, http.StatusBadRequest},
		{"900 kB nested PROPFIND on the principal", "PROPFIND", "dav/principals/" + user + "/", string(nested(propfindRoot, 300_000)), xmlHdr, http.StatusBadRequest},
		{"12 MB PROPFIND on a calendar", "PROPFIND", "dav/calendars/" + user + "/work/", propfindRoot + big + "</D:prop></D:propfind>", xmlHdr, http.StatusRequestEntityTooLarge},
		{"12 MB PROPFIND on files", "PROPFIND", "dav/files/" + user + "/", propfindRoot + big + "</D:prop></D:propfind>", xmlHdr, http.StatusRequestEntityTooLarge},
		{"60,000 elements in a PROPFIND", "PROPFIND", "dav/calendars/" + user + "/", propfindRoot + manyElements + "</D:prop></D:propfind>", xmlHdr, http.StatusBadRequest},
		{"50 MB .ics PUT", "PUT", "dav/calendars/" + user + "/work/big.ics", ics, map[string]string{"Content-Type": "text/calendar"}, http.StatusRequestEntityTooLarge},
		{"50 MB .vcf PUT", "PUT", "dav/contacts/" + user + "/default/big.vcf", vcf, map[string]string{"Content-Type": "text/vcard"}, http.StatusRequestEntityTooLarge},
		{"2 MB file PUT over -max-file-size 1M", "PUT", "dav/files/" + user + "/big.bin", strings.Repeat("x", 2<<20), nil, http.StatusRequestEntityTooLarge},
		// The same tree where Nextcloud clients look, and Login Flow.
		{"9 MB nested PROPFIND on /remote.php/dav", "PROPFIND", "remote.php/dav", string(nested(propfindRoot, 3<<20)), xmlHdr, http.StatusRequestEntityTooLarge},
		{"900 kB nested PROPFIND on /remote.php/dav/files", "PROPFIND", "remote.php/dav/files/" + user + "/", string(nested(propfindRoot, 300_000)), xmlHdr, http.StatusBadRequest},
		{"900 kB nested PROPFIND on /remote.php/webdav/", "PROPFIND", "remote.php/webdav/", string(nested(propfindRoot, 300_000)), xmlHdr, http.StatusBadRequest},
		{"12 MB PROPFIND on /remote.php/webdav/", "PROPFIND", "remote.php/webdav/", propfindRoot + big + "</D:prop></D:propfind>", xmlHdr, http.StatusRequestEntityTooLarge},
		{"2 MB PUT on /remote.php/webdav/ over -max-file-size 1M", "PUT", "remote.php/webdav/big2.bin", strings.Repeat("x", 2<<20), nil, http.StatusRequestEntityTooLarge},
		{"12 MB Login Flow poll", "POST", "login/v2/poll", "token=" + big, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, http.StatusBadRequest},
	} {
		for _, chunked := range []bool{false, true} {
			name := a.name
			length := int64(len(a.body))
			if chunked {
				name, length = a.name+", chunked", -1
			}
			code, err := send(a.method, a.path, a.hdr, strings.NewReader(a.body), length)
			if err != nil || code != a.want {
				t.Errorf("%s: %d %v, want %d", name, code, err, a.want)
			}
			alive(name)
		}
	}
	if code, _ := send("GET", "dav/files/"+user+"/big.bin", nil, nil, 0); code == http.StatusOK {
		// A chunked upload over the limit fails in x/net/webdav after it
		// truncated the file; what is left must not be the whole upload.
		t.Log("a refused chunked file upload left a partial file (x/net/webdav truncates before it copies)")
	}
	after := peakRSS(t, pid)
	t.Logf("server peak memory (VmHWM): %d MB before the attacks, %d MB after", before>>20, after>>20)
	if after > 200<<20 {
		t.Errorf("server peak memory %d MB after the attacks, want under 200 MB", after>>20)
	}

	// A client that sends headers and part of a body, then nothing: with
	// and without credentials, the server hangs up after -read-timeout (1s).
	for _, withAuth := range []bool{false, true} {
		conn, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		auth := ""
		if withAuth {
			auth = "Authorization: Basic " + basic(user, app.Password) + "\r\n"
		}
		start := time.Now()
		fmt.Fprintf(conn, "PUT /dav/files/%s/slow.txt HTTP/1.1\r\nHost: %s\r\n%sContent-Length: 1000\r\n\r\npartial", user, host, auth)
		conn.SetReadDeadline(time.Now().Add(30 * time.Second)) // only a safety net
		_, err = io.Copy(io.Discard, conn)
		conn.Close()
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Errorf("a partial body (credentials: %v) held the connection for 30s", withAuth)
		} else {
			t.Logf("a partial body (credentials: %v): disconnected after %v", withAuth, time.Since(start).Round(10*time.Millisecond))
		}
	}
	alive("the slow clients")
	srv.stop(t)
}

func basic(user, password string) string {
	req := &http.Request{Header: http.Header{}}
	req.SetBasicAuth(user, password)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}

// TestUnknownEnvironmentVariable: a misspelt APPAUTH_* variable stops the
// start with its name and the closest known one.
func TestUnknownEnvironmentVariable(t *testing.T) {
	bin := buildServer(t)
	// A server that ignores the variable starts and serves: the context
	// stops it, and the exit code tells.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-addr", "127.0.0.1:0", "-data", filepath.Join(t.TempDir(), "data"))
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "APPAUTH_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "APPAUTH_LDAP_URI=ldap://127.0.0.1")
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 2 {
		t.Fatalf("exit: %v, want code 2\n%s", err, out)
	}
	if !strings.Contains(string(out), "APPAUTH_LDAP_URI") || !strings.Contains(string(out), "APPAUTH_LDAP_URL") {
		t.Errorf("the message does not name the variable and the closest known one: %s", out)
	}
}

// TestTLSHardening: over HTTPS every response carries HSTS and the session
// cookie has the __Host- prefix (browsers then refuse it over HTTP and from
// a sibling subdomain).
func TestTLSHardening(t *testing.T) {
	bin := buildServer(t)
	dir := t.TempDir()
	certFile, keyFile, pool := selfSignedCert(t, dir)
	srv := startServerWith(t, bin, dir, []string{"-addr", "127.0.0.1:0", "-data", filepath.Join(dir, "data"), "-tls-cert", certFile, "-tls-key", keyFile}, nil)
	user, password := bannerValue(srv.banner, "username"), bannerValue(srv.banner, "password")
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	t.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr}
	body, _ := json.Marshal(map[string]string{"username": user, "password": password})
	resp, err := hc.Post(srv.base+"api/v1/session", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	if got := resp.Header.Get("Strict-Transport-Security"); !strings.HasPrefix(got, "max-age=") {
		t.Errorf("Strict-Transport-Security = %q", got)
	}
	var names []string
	for _, c := range resp.Cookies() {
		names = append(names, c.Name)
		if c.Name == "__Host-appauth_session" && (!c.Secure || c.Path != "/" || c.Domain != "") {
			t.Errorf("__Host- cookie without Secure, Path=/ or with a Domain: %+v", c)
		}
	}
	if len(names) != 1 || names[0] != "__Host-appauth_session" {
		t.Errorf("cookies %v, want __Host-appauth_session", names)
	}
	req, _ := http.NewRequest("PROPFIND", srv.base+"dav/", nil)
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Strict-Transport-Security") == "" {
		t.Errorf("a DAV response (%d) without Strict-Transport-Security", resp.StatusCode)
	}
}
