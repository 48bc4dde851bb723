package main

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/httpauth"
	"github.com/appauth/appauth/examples/davserver/internal/davstore"
)

// stalledBody sends a few bytes of a body and then nothing (its read
// deadline fires).
type stalledBody struct{ sent bool }

func (b *stalledBody) Read(p []byte) (int, error) {
	if !b.sent {
		b.sent = true
		return copy(p, "BEGIN:VCALENDAR\r\n"), nil
	}
	return 0, errors.New("i/o timeout")
}

func (b *stalledBody) Close() error { return nil }

// TestBodyBufferFollowsWhatArrives: the buffer of a calendar object or an
// XML body grows with the bytes that arrive, not with the Content-Length
// the client claims: headers alone (a few hundred bytes) must not make the
// server allocate the 4 MiB object limit, on as many connections as a
// client opens.
func TestBodyBufferFollowsWhatArrives(t *testing.T) {
	dav, err := davstore.New(t.TempDir(), davPrefix, userFromContext)
	if err != nil {
		t.Fatal(err)
	}
	h := limitBodies(dav, defaultBodyLimits, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("the handler was called with a body that never arrived")
	}))
	p := &auth.Principal{User: auth.User{ID: "u1", Login: "alice"}}
	const n = 8
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range n {
		r := httptest.NewRequestWithContext(httpauth.ContextWithPrincipal(t.Context(), p), "PUT", "/dav/calendars/alice/home/a.ics", nil)
		r.Body, r.ContentLength = &stalledBody{}, defaultBodyLimits.Object
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusBadRequest {
			t.Fatalf("a body that stopped: %d, want 400", w.Code)
		}
	}
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > uint64(n*defaultBodyLimits.Object/4) {
		t.Errorf("%d bodies of 17 bytes that claimed %d bytes allocated %d bytes", n, defaultBodyLimits.Object, got)
	}
}
