package main

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/httpauth"
	"github.com/appauth/appauth/backends/memory"
	"github.com/appauth/appauth/examples/davserver/internal/davstore"
)

// TestAnonymousBodyNotRead: an OPTIONS without credentials, which the
// middleware lets through to every DAV route, is answered without its body
// being read: an anonymous client cannot make the server buffer a body of
// up to the XML limit (allocated whole from its Content-Length), nor hold
// the connection by sending it slowly.
func TestAnonymousBodyNotRead(t *testing.T) {
	m, err := auth.NewManager(memory.NewStore(), memory.NewDirectory(), &auth.Options{Peppers: []auth.Pepper{{ID: "1", Key: bytes.Repeat([]byte{7}, 32)}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	mw, err := httpauth.New(m, &httpauth.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	dav, err := davstore.New(filepath.Join(t.TempDir(), "dav"), davPrefix, userFromContext)
	if err != nil {
		t.Fatal(err)
	}
	mux := routes(dav, &defaultBodyLimits, func(h http.Handler) http.Handler { return mw.Wrap(recordUser(h)) }, http.NotFoundHandler())
	mountNextcloud(mux, nextcloud{dav: dav, limits: &defaultBodyLimits, authenticate: func(h http.Handler) http.Handler { return mw.Wrap(recordUser(h)) }, manager: m})
	srv := httptest.NewServer(withDeadlines(timeouts{Read: time.Minute, Write: time.Minute}, mux))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")

	for _, path := range []string{"/dav/", "/dav/files/alice/", "/remote.php/dav", "/remote.php/dav/calendars/alice/", "/remote.php/webdav/"} {
		conn, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		// The headers and the start of a 1 MiB body, the rest never sent.
		fmt.Fprintf(conn, "OPTIONS %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/xml\r\nContent-Length: %d\r\n\r\n<a>", path, host, 1<<20)
		conn.SetReadDeadline(time.Now().Add(3 * time.Second))
		line, err := bufio.NewReader(conn).ReadString('\n')
		conn.Close()
		if err != nil {
			t.Errorf("anonymous OPTIONS %s with a body: no answer in 3s (%v): the server waits for the body", path, err)
		} else if !strings.Contains(line, " 200 ") && !strings.Contains(line, " 204 ") && !strings.Contains(line, " 401 ") {
			t.Errorf("anonymous OPTIONS %s with a body: %q, want 200, 204 or 401", path, line)
		}
	}
}
