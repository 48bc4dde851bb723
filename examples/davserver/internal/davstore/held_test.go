package davstore

import (
	"bufio"
	"context"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// putWithin sends a conditional PUT as user and fails the test unless it
// is answered within d.
func putWithin(t *testing.T, srvURL, user, path, ctype, body string, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "PUT", srvURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(user, "x")
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("If-None-Match", "*")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s's conditional PUT %s: %v (held up by another user's request)", user, path, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusNoContent {
		t.Fatalf("%s's conditional PUT %s: %d", user, path, resp.StatusCode)
	}
}

// TestSlowConditionalUploadHoldsNoOneElse: a conditional file upload whose
// client sends slowly does not hold up another user's conditional writes.
func TestSlowConditionalUploadHoldsNoOneElse(t *testing.T) {
	srv, _, _ := newServer(t)
	pr, pw := io.Pipe()
	defer pw.Close()
	req, _ := http.NewRequestWithContext(t.Context(), "PUT", srv.URL+"/dav/files/alice/big.bin", pr)
	req.SetBasicAuth("alice", "x")
	req.Header.Set("If-None-Match", "*")
	req.ContentLength = 1 << 20
	started := make(chan struct{})
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
	}()
	go func() {
		pw.Write([]byte("the first part of a slow upload"))
		close(started)
	}()
	<-started
	time.Sleep(200 * time.Millisecond) // the server is reading alice's body: her PUT holds whatever it holds
	putWithin(t, srv.URL, "bob", "/dav/files/bob/a.txt", "text/plain", "bob's file", 5*time.Second)
}

// TestSyncReportUnreadHoldsNoOneElse: a client that asks for a large
// sync-collection and never reads the answer does not hold up other
// users' calendar writes.
func TestSyncReportUnreadHoldsNoOneElse(t *testing.T) {
	srv, _, root := newServer(t)
	if code, body := do(t, srv, "alice", "MKCALENDAR", "/dav/calendars/alice/work/", nil, ""); code != http.StatusCreated {
		t.Fatalf("MKCALENDAR alice: %d %s", code, body)
	}
	if code, body := do(t, srv, "bob", "MKCALENDAR", "/dav/calendars/bob/work/", nil, ""); code != http.StatusCreated {
		t.Fatalf("MKCALENDAR bob: %d %s", code, body)
	}
	// 40 MB of calendar data, far more than the sockets buffer.
	dir := filepath.Join(root, folderOf("alice"), "calendars", "work")
	big := strings.Repeat("x", 4<<20)
	for i := range 10 {
		if err := os.WriteFile(filepath.Join(dir, "e"+strconv.Itoa(i)+".ics"), []byte(big), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	u, _ := url.Parse(srv.URL)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := syncBody("", "<C:calendar-data/>")
	io.WriteString(conn, "REPORT /dav/calendars/alice/work/ HTTP/1.1\r\nHost: "+u.Host+
		"\r\nAuthorization: Basic "+base64.StdEncoding.EncodeToString([]byte("alice:x"))+
		"\r\nContent-Type: application/xml\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body)
	// Read the status line only: the server is now writing the answer.
	if line, err := bufio.NewReader(conn).ReadString('\n'); err != nil || !strings.Contains(line, "207") {
		t.Fatalf("REPORT: %q %v", line, err)
	}
	time.Sleep(200 * time.Millisecond)
	putWithin(t, srv.URL, "bob", "/dav/calendars/bob/work/a.ics", "text/calendar", ics("a", "bob's event"), 5*time.Second)
}
