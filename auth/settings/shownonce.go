package settings

import (
	"sync"
	"time"
)

// A new app password's secret is shown once: the create form answers with
// a redirect (so a reload issues nothing), and the page view it leads to
// shows the secret, which is held here in between (or, with
// Options.SharedSecrets, sealed in a shared store: sharedheld.go). It is
// held for one session, and briefly: the page view that shows it marks it
// shown, the next one forgets it, and heldFor bounds it in any case. While
// it is shown, the configuration profile built from it may be downloaded.

const (
	// heldFor is how long a new secret is held after it was issued, shown
	// or not: long enough to follow the redirect and download the profile
	// onto a device, short enough that a forgotten tab does not keep it.
	heldFor = 10 * time.Minute
	// maxHeld bounds the secrets held at once (one per session); past it
	// the oldest is dropped, and its box says that the moment has passed.
	maxHeld = 10000
)

// heldSecret is a new app password as its shown-once box shows it.
type heldSecret struct {
	view   createdView
	scopes []string // the password's scopes: which accounts the profile holds
	user   string   // the owner's ID, checked again when the profile is fetched
	until  time.Time
	shown  bool // a page view has shown it
}

// heldSecrets are the new secrets not yet forgotten, by session ID. A
// session holds at most one: creating another replaces it.
type heldSecrets struct {
	mu        sync.Mutex
	bySession map[string]*heldSecret
}

// put holds secret for sessionID until now+heldFor.
func (h *heldSecrets) put(sessionID string, secret heldSecret, now time.Time) {
	secret.until, secret.shown = now.Add(heldFor), false
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.bySession == nil {
		h.bySession = map[string]*heldSecret{}
	}
	if _, ok := h.bySession[sessionID]; !ok && len(h.bySession) >= maxHeld {
		h.evict(now)
	}
	h.bySession[sessionID] = &secret
}

// evict drops the expired secrets, or if none has expired the oldest one;
// h.mu is held. It runs only when the map is full.
func (h *heldSecrets) evict(now time.Time) {
	var oldest string
	var oldestUntil time.Time
	for id, s := range h.bySession {
		if !now.Before(s.until) {
			delete(h.bySession, id)
			continue
		}
		if oldest == "" || s.until.Before(oldestUntil) {
			oldest, oldestUntil = id, s.until
		}
	}
	if len(h.bySession) >= maxHeld {
		delete(h.bySession, oldest)
	}
}

// show returns sessionID's secret for credential id, to show on this page
// view, and marks it shown; a secret already shown is forgotten instead
// (this is the next page view: its box is gone) and show returns nil.
func (h *heldSecrets) show(sessionID, id string, now time.Time) *heldSecret {
	h.mu.Lock()
	defer h.mu.Unlock()
	s, ok := h.bySession[sessionID]
	if !ok {
		return nil
	}
	if s.shown || !now.Before(s.until) || s.view.ID != id {
		delete(h.bySession, sessionID)
		return nil
	}
	s.shown = true
	c := *s
	return &c
}

// unshow undoes show for a page view that failed before it showed the
// secret, so that a retry shows it.
func (h *heldSecrets) unshow(sessionID, id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s, ok := h.bySession[sessionID]; ok && s.view.ID == id {
		s.shown = false
	}
}

// forget drops sessionID's secret, for a page view that shows none.
func (h *heldSecrets) forget(sessionID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.bySession, sessionID)
}

// shownNow returns sessionID's secret for credential id while its box is
// shown, for the profile download, or nil.
func (h *heldSecrets) shownNow(sessionID, id string, now time.Time) *heldSecret {
	h.mu.Lock()
	defer h.mu.Unlock()
	s, ok := h.bySession[sessionID]
	if !ok || !s.shown || s.view.ID != id || !now.Before(s.until) {
		return nil
	}
	c := *s
	return &c
}
