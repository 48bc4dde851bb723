package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/appauth/appauth/auth/httpauth"
)

// bodyLimits bounds what a DAV request body may be. go-webdav parses XML
// bodies recursively without a depth limit (a deeply nested body overflows
// the goroutine stack, which no recover catches) and reads calendar objects
// and vCards whole, so both are checked here before it sees them.
type bodyLimits struct {
	// XML bounds the body of every method but PUT (PROPFIND, PROPPATCH,
	// REPORT, MKCOL, MKCALENDAR, LOCK): buffered, then scanned.
	XML int64
	// Object bounds a PUT of a calendar object or a vCard (buffered).
	Object int64
	// File bounds a PUT of a WebDAV file (streamed; 0: no limit).
	File int64
	// MaxDepth and MaxElements bound the nesting and the number of
	// elements and attributes of an XML body.
	MaxDepth, MaxElements int
}

// defaultBodyLimits are the example server's limits; -max-file-size sets File.
var defaultBodyLimits = bodyLimits{
	XML:         1 << 20,
	Object:      4 << 20,
	File:        1 << 30,
	MaxDepth:    64,
	MaxElements: 50_000,
}

// limitBodiesIf is limitBodies with *l, or next itself when l is nil (only
// benchmarks that measure the DAV handler without the limits).
func limitBodiesIf(store areaFinder, l *bodyLimits, next http.Handler) http.Handler {
	if l == nil {
		return next
	}
	return limitBodies(store, *l, next)
}

// limitBodies enforces l on the requests to next: 413 for a body over its
// limit, 400 for an XML body nested deeper than l.MaxDepth or with more
// than l.MaxElements elements. Bodies other than file uploads are read
// into memory (at most l.XML or l.Object bytes) and handed on from there.
func limitBodies(store areaFinder, l bodyLimits, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			next.ServeHTTP(w, r)
			return
		}
		if _, ok := httpauth.PrincipalFromContext(r.Context()); !ok {
			// An OPTIONS probe without credentials, which the middleware
			// lets through and which is answered without its body: never
			// read, so an anonymous client can neither fill memory with
			// bodies nor hold the connection by sending one slowly.
			r.Body, r.ContentLength = http.NoBody, 0
			next.ServeHTTP(w, r)
			return
		}
		area, _ := store.Area(r.URL.Path)
		limit, isXML := l.XML, r.Method != http.MethodPut
		if !isXML {
			switch area {
			case "calendars", "contacts":
				limit = l.Object
			case "files":
				limit = l.File
			}
		}
		if limit > 0 && r.ContentLength > limit {
			tooLarge(w, limit)
			return
		}
		if area == "files" && !isXML {
			if limit > 0 {
				// Streamed: an upload without Content-Length that goes over
				// the limit fails in x/net/webdav, whose status is replaced.
				body := &limitedBody{ReadCloser: http.MaxBytesReader(w, r.Body, limit)}
				r.Body = body
				w = &overLimitWriter{ResponseWriter: w, body: body, limit: limit}
			}
			next.ServeHTTP(w, r)
			return
		}
		body, err := readBody(w, r, limit)
		if err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				tooLarge(w, limit)
			} else {
				http.Error(w, "Bad Request: the body could not be read", http.StatusBadRequest)
			}
			return
		}
		if isXML {
			if err := scanXML(body, l.MaxDepth, l.MaxElements); err != nil {
				http.Error(w, "Bad Request: "+err.Error(), http.StatusBadRequest)
				return
			}
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		next.ServeHTTP(w, r)
	})
}

// maxPrealloc bounds what readBody allocates before the bytes arrive: a
// client's Content-Length alone, a few bytes of headers, must not make the
// server hold the body limit.
const maxPrealloc = 64 << 10

// readBody reads r's body, at most limit bytes, in one allocation when the
// length is known and small.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body := http.MaxBytesReader(w, r.Body, limit)
	if r.ContentLength > 0 && r.ContentLength <= maxPrealloc {
		b := make([]byte, r.ContentLength)
		_, err := io.ReadFull(body, b)
		return b, err
	}
	return io.ReadAll(body)
}

func tooLarge(w http.ResponseWriter, limit int64) {
	w.Header().Set("Connection", "close")
	http.Error(w, "Request Entity Too Large: the limit is "+strconv.FormatInt(limit, 10)+" bytes", http.StatusRequestEntityTooLarge)
}

// scanXML refuses an XML document nested deeper than maxDepth or with more
// than maxElements elements and attributes. Malformed XML passes: the
// handler's parser refuses it with its own message.
func scanXML(b []byte, maxDepth, maxElements int) error {
	// Every element starts with "<" and every attribute has a "=": a body
	// with few of them (most requests) needs no parse.
	if lt := bytes.Count(b, []byte("<")); lt <= maxDepth && lt+bytes.Count(b, []byte("=")) <= maxElements {
		return nil
	}
	d := xml.NewDecoder(bytes.NewReader(b))
	depth, count := 0, 0
	for {
		tok, err := d.RawToken()
		if err != nil {
			return nil
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			count += 1 + len(t.Attr)
			if depth > maxDepth {
				return fmt.Errorf("XML nested deeper than %d elements", maxDepth)
			}
			if count > maxElements {
				return fmt.Errorf("XML with more than %d elements", maxElements)
			}
		case xml.EndElement:
			depth--
		}
	}
}

// overLimitWriter turns the status of a response into 413 when the handler
// failed because its body went over the limit.
type overLimitWriter struct {
	http.ResponseWriter
	body  *limitedBody
	limit int64
	over  bool
}

func (w *overLimitWriter) WriteHeader(code int) {
	if code >= 400 && w.body.over {
		w.over = true
		tooLarge(w.ResponseWriter, w.limit)
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *overLimitWriter) Write(b []byte) (int, error) {
	if w.over {
		return len(b), nil // the handler's error text; 413 was written
	}
	return w.ResponseWriter.Write(b)
}

func (w *overLimitWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// limitedBody records whether its http.MaxBytesReader went over the limit.
type limitedBody struct {
	io.ReadCloser
	over bool
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		b.over = true
	}
	return n, err
}

// timeouts bounds how long a client may take: to send its request
// headers, to send the next part of its body, to take the next part of the
// response, and between requests on a kept-alive connection.
type timeouts struct {
	// Header bounds the request line and headers (http.Server.ReadHeaderTimeout).
	Header time.Duration
	// Read bounds the wait for the next part of a request body. A client
	// that stops sending is disconnected after it; one that keeps sending
	// (a large upload) is not.
	Read time.Duration
	// Write bounds the wait for the client to take the next part of a
	// response; a large download that keeps moving is never cut.
	Write time.Duration
	// Idle bounds a kept-alive connection between requests.
	Idle time.Duration
}

// withDeadlines applies t.Read and t.Write to every request: a read
// deadline on a request with a body, which the request's own reads of the
// body push forward and which ends with the body, and a write deadline that
// each write of the response pushes forward. A body nobody reads (a request
// refused before its body, such as a 401) keeps its first deadline, so an
// unauthenticated client cannot hold the connection by sending slowly. No
// read deadline is left once the body is in: net/http's background read
// would hit it during a long response and cancel the request's context.
func withDeadlines(t timeouts, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if t.Read > 0 && r.Body != nil && r.Body != http.NoBody {
			rc.SetReadDeadline(time.Now().Add(t.Read))
			r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc, d: t.Read, remaining: r.ContentLength}
		}
		if t.Write > 0 {
			// Set here, so the first write (within a second) need not.
			now := time.Now()
			rc.SetWriteDeadline(now.Add(t.Write))
			w = &deadlineWriter{ResponseWriter: w, rc: rc, d: t.Write, last: now}
		}
		next.ServeHTTP(w, r)
	})
}

// deadlineBody pushes the connection's read deadline forward after every
// read that made progress, and clears it at the end of the body.
type deadlineBody struct {
	io.ReadCloser
	rc        *http.ResponseController
	d         time.Duration
	last      time.Time
	remaining int64 // -1: unknown (chunked)
	done      bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if b.done {
		return n, err
	}
	if b.remaining > 0 {
		b.remaining -= int64(n)
	}
	switch {
	case err == io.EOF || b.remaining == 0:
		b.done = true
		b.rc.SetReadDeadline(time.Time{})
	case n > 0:
		b.extend()
	}
	return n, err
}

// extend moves the deadline at most once a second: setting it is cheap,
// but a body is read in many small pieces.
func (b *deadlineBody) extend() {
	if now := time.Now(); now.Sub(b.last) >= time.Second || b.d < 2*time.Second {
		b.last = now
		b.rc.SetReadDeadline(now.Add(b.d))
	}
}

// deadlineWriter pushes the connection's write deadline forward before
// every write of the response.
type deadlineWriter struct {
	http.ResponseWriter
	rc   *http.ResponseController
	d    time.Duration
	last time.Time
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	if now := time.Now(); now.Sub(w.last) >= time.Second || w.d < 2*time.Second {
		w.last = now
		w.rc.SetWriteDeadline(now.Add(w.d))
	}
	return w.ResponseWriter.Write(p)
}

func (w *deadlineWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// hsts tells browsers to use only HTTPS for this host from now on (RFC 6797).
func hsts(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", "max-age=31536000")
		next.ServeHTTP(w, r)
	})
}

// byteSize is a flag value of bytes with an optional K, M or G suffix
// (powers of 1024).
type byteSize int64

func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }

func (b *byteSize) Set(s string) error {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, strings.TrimSuffix(s, "G")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return errors.New("want a number of bytes, optionally with K, M or G")
	}
	*b = byteSize(n * mult)
	return nil
}
