package auth

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/appauth/appauth/internal/safetext"
)

// The audit log writes one line per refusal, throttle, outage, issue,
// revocation and sign-in, but successful uses of a cached credential are
// counted: one "auth used" line per credential, address and client per
// LastUsedInterval ("used 412 times from 198.51.100.7 by DAVx5 since
// 10:04"), written by the background flusher and by Close. A line per
// request would cost more than the verify itself.

// maxPendingUses bounds the use records held between flushes, or
// Options.CacheSize when that is larger (room for one per cached
// credential; about 230 bytes each, BenchmarkCacheMemory); past it, a use
// from a new address or client is logged at once, one line each, so that
// many addresses cost no more memory and no use goes unlogged.
const maxPendingUses = 10_000

// useClosed marks a useRecord whose count the flusher has taken.
const useClosed = 1 << 63

// useRecord counts the successful uses of one credential from one address
// and client since a time. Once the flusher closes it (useClosed), nothing
// is added to it any more: the next use starts a new record.
type useRecord struct {
	kind                      Kind
	userID, login, credential string
	addr, client              string
	since                     time.Time
	state                     atomic.Uint64 // uses counted, | useClosed once flushed
}

// add counts one use, unless the record is closed.
func (r *useRecord) add() bool {
	for {
		v := r.state.Load()
		if v&useClosed != 0 {
			return false
		}
		if r.state.CompareAndSwap(v, v+1) {
			return true
		}
	}
}

type useKey struct{ id, addr, client string }

// auditQueue holds the use records until they are written.
type auditQueue struct {
	mu      sync.Mutex
	max     int
	pending map[useKey]*useRecord
}

// used counts a success (ev, an EventAuthenticated) of cache entry e, and
// reports false when there was no room, so it wrote ev's line at once. The
// common case, one more use from the address and client of e's current
// record, takes no lock.
func (m *Manager) used(ctx context.Context, e *cacheEntry, ev *Event) bool {
	if m.usedAgain(e, ev.RemoteAddr, ev.UserAgent) {
		return true
	}
	q := &m.audit
	k := useKey{ev.CredentialID, ev.RemoteAddr, ev.UserAgent}
	q.mu.Lock()
	r := q.pending[k]
	if r == nil || !r.add() {
		if len(q.pending) >= q.max {
			q.mu.Unlock()
			m.logEvent(ctx, slog.LevelInfo, ev)
			return false
		}
		if q.pending == nil {
			q.pending = map[useKey]*useRecord{}
		}
		r = &useRecord{kind: ev.Kind, userID: ev.UserID, login: ev.Login, credential: ev.CredentialID,
			addr: ev.RemoteAddr, client: ev.UserAgent, since: ev.Time}
		r.state.Store(1)
		q.pending[k] = r
	}
	q.mu.Unlock()
	e.use.Store(r)
	return true
}

// usedAgain counts a success of e from addr and client in the use
// record e is counted in, if it is theirs and still open.
func (m *Manager) usedAgain(e *cacheEntry, addr, client string) bool {
	r := e.use.Load()
	return r != nil && r.addr == addr && r.client == client && r.add()
}

// flushUses writes the use records at least interval old at now, or all
// of them with all.
func (m *Manager) flushUses(ctx context.Context, now time.Time, all bool) {
	q := &m.audit
	var due []*useRecord
	q.mu.Lock()
	for k, r := range q.pending {
		if all || now.Sub(r.since) >= m.opts.LastUsedInterval {
			delete(q.pending, k)
			due = append(due, r)
		}
	}
	q.mu.Unlock()
	for _, r := range due {
		n := r.state.Or(useClosed) &^ useClosed
		m.logUses(ctx, r, n)
	}
}

// logUses writes the line for r's n uses.
func (m *Manager) logUses(ctx context.Context, r *useRecord, n uint64) {
	if n == 0 || !m.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	var buf [9]slog.Attr
	attrs := append(buf[:0],
		slog.String("event", "used"),
		slog.String("kind", string(r.kind)),
		slog.String("login", safetext.Escape(r.login)),
		slog.String("user_id", r.userID),
		slog.String("credential_id", r.credential),
		slog.Uint64("count", n),
		slog.Time("since", r.since),
	)
	if r.addr != "" {
		attrs = append(attrs, slog.String("remote_addr", safetext.Escape(r.addr)))
	}
	if r.client != "" {
		attrs = append(attrs, slog.String("user_agent", safetext.Escape(r.client)))
	}
	m.log.LogAttrs(ctx, slog.LevelInfo, "auth used", attrs...)
}
