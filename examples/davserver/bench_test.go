package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/httpauth"
	"github.com/appauth/appauth/auth/settings"
	"github.com/appauth/appauth/auth/throttle"
	"github.com/appauth/appauth/backends/htpasswd"
	"github.com/appauth/appauth/backends/sqlstore"
	"github.com/appauth/appauth/examples/davserver/internal/davstore"
	"github.com/emersion/go-webdav/caldav"
)

// benchServers starts the example server's handler twice over loopback, on
// the same SQLite store, htpasswd file and DAV folder: once with the
// authentication middleware (as davserver runs) and once with it replaced
// by a fixed principal (authentication off), and a third time with the
// Store behind go-webdav's caldav.Handler alone, without davstore's routing
// (which reads REPORT bodies to answer sync-collection itself) and without
// authentication. A fourth, noLimits, is the first without the body limits
// and XML pre-scan. It returns the URLs and an app password for the first
// and the fourth.
func benchServers(b *testing.B) (withAuth, noAuth, goWebdav, noLimits, user, secret string) {
	b.Helper()
	ctx := context.Background()
	dir := b.TempDir()
	users := filepath.Join(dir, "users.htpasswd")
	if err := htpasswd.SetPassword(users, "demo", "demo password 1234", 4); err != nil {
		b.Fatal(err)
	}
	d, err := htpasswd.Open(users, nil)
	if err != nil {
		b.Fatal(err)
	}
	store, err := sqlstore.OpenSQLite(ctx, filepath.Join(dir, "appauth.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	key := make([]byte, 32)
	rand.Read(key)
	limiter, err := throttle.New(nil)
	if err != nil {
		b.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	m, err := auth.NewManager(store, d, &auth.Options{Peppers: []auth.Pepper{{ID: "1", Key: key}}, Limiter: limiter, Logger: logger})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	u, err := d.LookupUser(ctx, "demo")
	if err != nil {
		b.Fatal(err)
	}
	_, secret, err = m.IssueAppPassword(ctx, u, auth.IssueRequest{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	dav, err := davstore.New(filepath.Join(dir, "dav"), davPrefix, userFromContext)
	if err != nil {
		b.Fatal(err)
	}
	mw, err := httpauth.New(m, &httpauth.Options{Logger: logger})
	if err != nil {
		b.Fatal(err)
	}
	web, err := settings.New(m, d, &settings.Options{Logger: logger})
	if err != nil {
		b.Fatal(err)
	}
	on := testRequestLog(b, logger).Wrap(routes(dav, &defaultBodyLimits, func(h http.Handler) http.Handler { return mw.Wrap(recordUser(h)) }, web))
	fixed := &auth.Principal{User: *u, Method: auth.MethodAppPassword}
	off := testRequestLog(b, logger).Wrap(routes(dav, &defaultBodyLimits, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			recordUser(h).ServeHTTP(w, r.WithContext(httpauth.ContextWithPrincipal(r.Context(), fixed)))
		})
	}, web))
	s1, s2 := httptest.NewServer(on), httptest.NewServer(off)
	b.Cleanup(s1.Close)
	b.Cleanup(s2.Close)
	s3 := httptest.NewServer(testRequestLog(b, logger).Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(&caldav.Handler{Backend: dav, Prefix: davPrefix}).ServeHTTP(w, r.WithContext(httpauth.ContextWithPrincipal(r.Context(), fixed)))
	})))
	b.Cleanup(s3.Close)
	s4 := httptest.NewServer(testRequestLog(b, logger).Wrap(routes(dav, nil, func(h http.Handler) http.Handler { return mw.Wrap(recordUser(h)) }, web)))
	b.Cleanup(s4.Close)
	return s1.URL, s2.URL, s3.URL, s4.URL, "demo", secret
}

// propfindLoad sends n PROPFIND Depth 0 requests from workers goroutines
// over keep-alive connections and returns the elapsed time.
func propfindLoad(b *testing.B, client *http.Client, url, user, secret string, n, workers int) time.Duration {
	return davLoad(b, client, "PROPFIND", url, user, secret, "", http.StatusMultiStatus, n, workers)
}

// davLoad sends n requests (method, body) from workers goroutines over
// keep-alive connections, checks each answer's status, and returns the
// elapsed time.
func davLoad(b *testing.B, client *http.Client, method, url, user, secret, body string, want, n, workers int) time.Duration {
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		count := n / workers
		if w < n%workers {
			count++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range count {
				req, _ := http.NewRequest(method, url, strings.NewReader(body))
				if body != "" {
					req.Header.Set("Content-Type", "application/xml; charset=utf-8")
				}
				req.Header.Set("Depth", "0")
				if secret != "" {
					req.SetBasicAuth(user, secret)
				}
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != want {
					b.Errorf("%s: %d, want %d", method, resp.StatusCode, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(start)
}

// BenchmarkPropfind measures PROPFIND Depth 0 on /dav/files/demo/ over
// loopback, with a cached app password and with authentication off, in
// alternating rounds of 1,000 requests each (b.N rounds), and reports both
// throughputs and their ratio (target: auth/noauth >= 0.9).
func BenchmarkPropfind(b *testing.B) {
	withAuth, noAuth, _, _, user, secret := benchServers(b)
	workers := 2 * runtime.GOMAXPROCS(0)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers}}
	defer client.CloseIdleConnections()
	path := "/dav/files/" + user + "/"
	// Warm up: connections, the credential cache, the files handler.
	propfindLoad(b, client, withAuth+path, user, secret, 200, workers)
	propfindLoad(b, client, noAuth+path, user, "", 200, workers)

	const round = 1000
	var tAuth, tOff time.Duration
	b.ResetTimer()
	for i := range b.N {
		if i%2 == 0 {
			tOff += propfindLoad(b, client, noAuth+path, user, "", round, workers)
			tAuth += propfindLoad(b, client, withAuth+path, user, secret, round, workers)
		} else {
			tAuth += propfindLoad(b, client, withAuth+path, user, secret, round, workers)
			tOff += propfindLoad(b, client, noAuth+path, user, "", round, workers)
		}
	}
	b.StopTimer()
	reqs := float64(b.N * round)
	b.ReportMetric(reqs/tAuth.Seconds(), "req/s-auth")
	b.ReportMetric(reqs/tOff.Seconds(), "req/s-noauth")
	b.ReportMetric(tOff.Seconds()/tAuth.Seconds(), "ratio")
	b.ReportMetric(0, "ns/op")
	if strings.Contains(withAuth, noAuth) {
		b.Fatal("the two servers must differ")
	}
}

// calendarQuery asks for the ETags of a calendar's events in March 2026,
// as a CalDAV client's time-range sync does.
const calendarQuery = `<?xml version="1.0" encoding="utf-8"?>
<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><D:getetag/></D:prop>
<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">
<C:time-range start="20260301T000000Z" end="20260401T000000Z"/></C:comp-filter></C:comp-filter></C:filter></C:calendar-query>`

// syncCollection asks for what changed since the start, with ETags.
const syncCollection = `<?xml version="1.0" encoding="utf-8"?>
<D:sync-collection xmlns:D="DAV:"><D:sync-token/><D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>`

// benchCalendar makes /dav/calendars/USER/bench/ with 20 events (through
// the server without authentication) and returns its path.
func benchCalendar(b *testing.B, noAuth, user string) string {
	b.Helper()
	path := "/dav/calendars/" + user + "/bench/"
	send := func(method, url, ctype, body string) {
		req, _ := http.NewRequest(method, noAuth+url, strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			b.Fatalf("%s %s: %d", method, url, resp.StatusCode)
		}
	}
	send("MKCALENDAR", path, "", "")
	for i := range 20 {
		uid := fmt.Sprintf("ev%02d", i)
		ics := "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:bench\r\nBEGIN:VEVENT\r\nUID:" + uid +
			"\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:202603" + fmt.Sprintf("%02d", i+1) + "T100000Z\r\nDTEND:202603" +
			fmt.Sprintf("%02d", i+1) + "T110000Z\r\nSUMMARY:Event " + uid + "\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
		send("PUT", path+uid+".ics", "text/calendar", ics)
	}
	return path
}

// benchmarkReport is BenchmarkPropfind's method for a REPORT body on a
// calendar of 20 events, in rounds of 200 requests to each server; with
// viaGoWebdav also to go-webdav's handler alone.
func benchmarkReport(b *testing.B, body string, viaGoWebdav bool) {
	withAuth, noAuth, direct, _, user, secret := benchServers(b)
	if !viaGoWebdav {
		direct = ""
	}
	path := benchCalendar(b, noAuth, user)
	workers := 2 * runtime.GOMAXPROCS(0)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers}}
	defer client.CloseIdleConnections()
	davLoad(b, client, "REPORT", withAuth+path, user, secret, body, http.StatusMultiStatus, 100, workers)
	davLoad(b, client, "REPORT", noAuth+path, user, "", body, http.StatusMultiStatus, 100, workers)

	if direct != "" {
		davLoad(b, client, "REPORT", direct+path, user, "", body, http.StatusMultiStatus, 100, workers)
	}

	const round = 200
	var tAuth, tOff, tDirect time.Duration
	b.ResetTimer()
	for i := range b.N {
		if i%2 == 0 {
			tOff += davLoad(b, client, "REPORT", noAuth+path, user, "", body, http.StatusMultiStatus, round, workers)
			tAuth += davLoad(b, client, "REPORT", withAuth+path, user, secret, body, http.StatusMultiStatus, round, workers)
		} else {
			tAuth += davLoad(b, client, "REPORT", withAuth+path, user, secret, body, http.StatusMultiStatus, round, workers)
			tOff += davLoad(b, client, "REPORT", noAuth+path, user, "", body, http.StatusMultiStatus, round, workers)
		}
		if direct != "" {
			tDirect += davLoad(b, client, "REPORT", direct+path, user, "", body, http.StatusMultiStatus, round, workers)
		}
	}
	b.StopTimer()
	reqs := float64(b.N * round)
	b.ReportMetric(reqs/tAuth.Seconds(), "req/s-auth")
	b.ReportMetric(reqs/tOff.Seconds(), "req/s-noauth")
	b.ReportMetric(tOff.Seconds()/tAuth.Seconds(), "ratio")
	if direct != "" {
		b.ReportMetric(reqs/tDirect.Seconds(), "req/s-gowebdav")
		b.ReportMetric(tDirect.Seconds()/tOff.Seconds(), "ratio-davstore/gowebdav")
	}
	b.ReportMetric(0, "ns/op")
}

// BenchmarkReportCalendarQuery measures REPORT calendar-query (a time range
// matching all 20 events, ETags only) with an app password and with
// authentication off, and, as the baseline of davstore's own routing, with
// go-webdav's handler alone (target: ratio-davstore/gowebdav >= 0.95).
func BenchmarkReportCalendarQuery(b *testing.B) { benchmarkReport(b, calendarQuery, true) }

// BenchmarkReportSyncCollection measures REPORT sync-collection (an initial
// sync of 20 events, ETags only), which davstore answers itself, with an app
// password and with authentication off.
func BenchmarkReportSyncCollection(b *testing.B) {
	benchmarkReport(b, syncCollection, false)
}

// benchPropfindBody is DAVx5's PROPFIND of a calendar collection.
const benchPropfindBody = `<?xml version="1.0" encoding="utf-8"?>
<propfind xmlns="DAV:" xmlns:CAL="urn:ietf:params:xml:ns:caldav" xmlns:CS="http://calendarserver.org/ns/">
 <prop><resourcetype/><displayname/><getetag/><CS:getctag/><sync-token/><current-user-privilege-set/>
 <CAL:supported-calendar-component-set/><CAL:calendar-description/></prop>
</propfind>`

// BenchmarkBodyLimits measures PROPFIND (Depth 0, DAVx5's body) and REPORT
// calendar-query on a calendar of 20 events, both with the app password,
// with the body limits and XML pre-scan (as davserver runs) and without, in
// alternating rounds of 200 requests, and reports the throughputs and their
// ratio (target: ratio >= 0.95).
func BenchmarkBodyLimits(b *testing.B) {
	withLimits, noAuth, _, noLimits, user, secret := benchServers(b)
	path := benchCalendar(b, noAuth, user)
	workers := 2 * runtime.GOMAXPROCS(0)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers}}
	defer client.CloseIdleConnections()
	for _, m := range []struct{ method, body string }{{"PROPFIND", benchPropfindBody}, {"REPORT", calendarQuery}} {
		b.Run(m.method, func(b *testing.B) {
			load := func(url string, n int) time.Duration {
				return davLoad(b, client, m.method, url+path, user, secret, m.body, http.StatusMultiStatus, n, workers)
			}
			load(withLimits, 100)
			load(noLimits, 100)
			const round = 200
			var tOn, tOff time.Duration
			b.ResetTimer()
			for i := range b.N {
				if i%2 == 0 {
					tOff += load(noLimits, round)
					tOn += load(withLimits, round)
				} else {
					tOn += load(withLimits, round)
					tOff += load(noLimits, round)
				}
			}
			b.StopTimer()
			reqs := float64(b.N * round)
			b.ReportMetric(reqs/tOn.Seconds(), "req/s-limits")
			b.ReportMetric(reqs/tOff.Seconds(), "req/s-nolimits")
			b.ReportMetric(tOff.Seconds()/tOn.Seconds(), "ratio")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// testRequestLog returns a request log on logger, closed when tb ends.
func testRequestLog(tb testing.TB, logger *slog.Logger) *requestLog {
	l := newRequestLog(logger)
	tb.Cleanup(l.Close)
	return l
}
