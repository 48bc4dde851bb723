// Package notify tells people when something happens on their account: a
// new app password, or a browser sign-in from an address not seen for them
// recently. It is fed by [auth.Options.OnEvent] and delivers by e-mail
// ([SMTP]) and/or a signed webhook ([Webhook]).
//
// The event hook only enqueues: a slow or unreachable mail server or
// webhook never delays a request. Messages wait in a bounded queue and are
// retried with exponential backoff; beyond the queue bound they are dropped,
// counted ([Stats]) and logged. At most [Options.PerUserPerHour] messages go
// to one user per hour; further ones are dropped and counted, so that a
// script creating app passwords in a loop cannot flood an inbox.
//
// A sign-in is from a new address when no current session of the user (see
// [Options.Sessions]) and none of their last [Options.KnownAddresses]
// sign-ins seen by this notifier came from it; the sessions are asked again
// before a message, so that servers sharing a store tell it once. A user
// with no sessions at all is told about their first sign-in, since nothing
// shows it is theirs.
// Addresses are compared exactly, as the edge gives them (ports stripped).
//
// A message never holds a secret: it is built from an [auth.Event], which
// has none. It says what happened, when, from which address and client,
// and links to the settings page where it can be revoked.
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/internal/safetext"
)

// What says what a [Message] is about.
type What string

// Kinds of message.
const (
	AppPasswordCreated What = "app_password_created" // an app password was issued
	NewSignIn          What = "new_sign_in"          // a browser signed in from a new address
)

// maxText bounds client-supplied text (app name, user agent) in a message.
const maxText = 200

// Message is one notification. It holds no secret.
type Message struct {
	What         What      `json:"what"`
	Time         time.Time `json:"time"` // when it happened, UTC
	UserID       string    `json:"user_id"`
	Login        string    `json:"login"`
	Email        string    `json:"email,omitempty"` // the owner's address, from the directory
	CredentialID string    `json:"credential_id"`
	Name         string    `json:"name,omitempty"`        // the app password's name, sanitised
	RemoteAddr   string    `json:"remote_addr,omitempty"` // the client's address
	UserAgent    string    `json:"user_agent,omitempty"`  // the client's User-Agent, sanitised
	SettingsURL  string    `json:"settings_url,omitempty"`

	// emailErr is why Email could not be looked up (the directory failed:
	// not "no such user"); login is whom to look up. Each transport's
	// delivery looks the address up again before an attempt.
	login    string
	emailErr error
}

// Transport delivers a message. Send must honour ctx (the notifier gives
// each attempt a deadline) and be safe for use by one goroutine at a time.
type Transport interface {
	Send(ctx context.Context, m *Message) error
}

// SessionLister lists a user's browser sessions; [auth.Manager] is one. The
// notifier reads it to learn the addresses a user signs in from, so that a
// restart does not make every address look new.
type SessionLister interface {
	ListSessions(ctx context.Context, userID string) ([]*auth.Session, error)
}

// Options configure a [Notifier]. Transports is required.
type Options struct {
	// Transports deliver every message; each has its own queue and retries,
	// so a mail server that is down does not hold up the webhook.
	Transports []Transport
	// Directory, if set, gives the owner's e-mail address (auth.User.Email).
	Directory auth.Directory
	// Sessions, if set, seeds the addresses a user is known to sign in from.
	Sessions SessionLister
	// SettingsURL is the page where credentials are revoked, linked from
	// every message.
	SettingsURL string
	// QueueSize bounds the messages waiting, per transport. Default 1000.
	QueueSize int
	// PerUserPerHour bounds the messages to one user in any hour. Default 10.
	PerUserPerHour int
	// MaxAttempts bounds the deliveries tried per message and transport.
	// Default 10 (with the default backoff, about half an hour).
	MaxAttempts int
	// RetryBase is the wait after the first failure; it doubles after each
	// further one, up to RetryMax. Defaults 1s and 5m.
	RetryBase, RetryMax time.Duration
	// Timeout bounds each delivery attempt and each directory or store
	// look-up. Default 30s.
	Timeout time.Duration
	// KnownAddresses is how many recent sign-in addresses are remembered per
	// user; MaxUsers how many users are remembered. Defaults 8 and 10,000.
	KnownAddresses, MaxUsers int
	// Logger receives drops and delivery failures. Default: discard.
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Stats counts what happened to messages.
type Stats struct {
	Sent        int64 // delivered (per transport)
	Dropped     int64 // not queued: a queue was full, or the notifier closed
	RateLimited int64 // not sent: the user had PerUserPerHour already
	Failed      int64 // given up after MaxAttempts
}

// Notifier turns events into messages. Its methods are safe for concurrent use.
type Notifier struct {
	opts   Options
	log    *slog.Logger
	events chan auth.Event
	queues []chan *Message
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	sent, dropped, limited, failed atomic.Int64
	sessions                       atomic.Pointer[SessionLister]

	// users is touched by the dispatcher goroutine only.
	users map[string]*userState
}

type userState struct {
	addrs []string    // recent sign-in addresses, newest last
	sent  []time.Time // messages in the last hour
	seen  time.Time   // last event, for eviction
}

// New starts a notifier; [Notifier.Close] stops it.
func New(opts *Options) (*Notifier, error) {
	if opts == nil || len(opts.Transports) == 0 {
		return nil, errors.New(`notify: missing required field "Transports"`)
	}
	o := *opts
	for _, tr := range o.Transports {
		if tr == nil {
			return nil, errors.New("notify: nil Transport")
		}
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.QueueSize, 1000)
	def(&o.PerUserPerHour, 10)
	def(&o.MaxAttempts, 10)
	def(&o.KnownAddresses, 8)
	def(&o.MaxUsers, 10000)
	defd := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	defd(&o.RetryBase, time.Second)
	defd(&o.RetryMax, 5*time.Minute)
	defd(&o.Timeout, 30*time.Second)
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Notifier{opts: o, log: log.With("component", "notify"), events: make(chan auth.Event, o.QueueSize), users: map[string]*userState{}}
	if o.Sessions != nil {
		n.sessions.Store(&o.Sessions)
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.wg.Add(1 + len(o.Transports))
	go n.dispatch()
	for _, tr := range o.Transports {
		q := make(chan *Message, o.QueueSize)
		n.queues = append(n.queues, q)
		go n.deliver(tr, q)
	}
	return n, nil
}

// OnEvent is the hook for [auth.Options.OnEvent]. It never blocks: an
// event that does not fit in the queue is dropped, counted and logged.
func (n *Notifier) OnEvent(e auth.Event) {
	if e.Type != auth.EventIssued || n.ctx.Err() != nil {
		return
	}
	select {
	case n.events <- e:
	default:
		n.drop("queue full", e.UserID)
	}
}

func (n *Notifier) drop(why, userID string) {
	n.dropped.Add(1)
	n.log.Warn("notify: message dropped", "reason", why, "user_id", userID)
}

// SetSessions sets [Options.Sessions] after New, for the usual case where
// the lister is the [auth.Manager] whose OnEvent is this notifier.
func (n *Notifier) SetSessions(s SessionLister) {
	if s != nil {
		n.sessions.Store(&s)
	}
}

// Stats returns the counts so far.
func (n *Notifier) Stats() Stats {
	return Stats{Sent: n.sent.Load(), Dropped: n.dropped.Load(), RateLimited: n.limited.Load(), Failed: n.failed.Load()}
}

// Close stops the notifier's goroutines, abandoning a delivery in progress
// and the messages still queued (counted as dropped), and returns once they
// have stopped.
func (n *Notifier) Close() error {
	n.once.Do(func() {
		n.cancel()
		n.wg.Wait()
		left := len(n.events)
		for _, q := range n.queues {
			left += len(q)
		}
		if left > 0 {
			n.dropped.Add(int64(left))
			n.log.Warn("notify: closed with messages queued", "count", left)
		}
	})
	return nil
}

// dispatch turns queued events into messages for every transport.
func (n *Notifier) dispatch() {
	defer n.wg.Done()
	for {
		select {
		case <-n.ctx.Done():
			return
		case e := <-n.events:
			m := n.message(e)
			if m == nil {
				continue
			}
			for _, q := range n.queues {
				select {
				case q <- m:
				default:
					n.drop("queue full", e.UserID)
				}
			}
		}
	}
}

// message builds the message for e, or returns nil when there is none to
// send (a known address, or the user's hourly bound reached).
func (n *Notifier) message(e auth.Event) *Message {
	m := &Message{
		Time: e.Time.UTC(), UserID: e.UserID, Login: safetext.Escape(e.Login), CredentialID: e.CredentialID,
		Name:        clean(e.Name),
		RemoteAddr:  clean(host(e.RemoteAddr)),
		UserAgent:   clean(e.UserAgent),
		SettingsURL: n.opts.SettingsURL,
	}
	if m.Time.IsZero() {
		m.Time = n.opts.Now().UTC()
	}
	u, listed, fresh := n.user(e.UserID, e.CredentialID)
	switch e.Kind {
	case auth.KindAppPassword:
		m.What = AppPasswordCreated
	case auth.KindSession:
		if !n.newAddress(u, m.RemoteAddr) {
			return nil
		}
		// An address new to this notifier may be known from a session that
		// another server (sharing the store) saw: ask the sessions again,
		// unless user has just listed them.
		if !fresh {
			listed = n.sessionAddrs(e.UserID, e.CredentialID)
		}
		if slices.Contains(listed, m.RemoteAddr) {
			return nil
		}
		m.What = NewSignIn
	default:
		return nil
	}
	now := m.Time // the event's time: the bound holds however late the queue runs
	u.sent = slices.DeleteFunc(u.sent, func(t time.Time) bool { return now.Sub(t) >= time.Hour })
	if len(u.sent) >= n.opts.PerUserPerHour {
		n.limited.Add(1)
		n.log.Warn("notify: message dropped", "reason", "rate_limited", "user_id", e.UserID, "what", string(m.What))
		return nil
	}
	u.sent = append(u.sent, now)
	if n.opts.Directory != nil && e.Login != "" {
		m.login = e.Login
		n.lookupEmail(m)
	}
	return m
}

// lookupEmail sets m.Email from the directory, or m.emailErr when the
// directory fails.
func (n *Notifier) lookupEmail(m *Message) {
	ctx, cancel := context.WithTimeout(n.ctx, n.opts.Timeout)
	usr, err := n.opts.Directory.LookupUser(ctx, m.login)
	cancel()
	m.emailErr = nil
	switch {
	case err == nil:
		if usr.ID == m.UserID {
			m.Email = usr.Email
		}
	case errors.Is(err, auth.ErrNotFound):
		n.log.Warn("notify: no e-mail address", "user_id", m.UserID, "error", err.Error())
	default:
		m.emailErr = err
		n.log.Warn("notify: no e-mail address", "user_id", m.UserID, "error", err.Error())
	}
}

// user returns the state of userID, evicting the longest idle user when
// MaxUsers are remembered. A user met for the first time (fresh) learns
// the addresses of their sessions, except the session exclude (just
// created), which are also returned (listed).
func (n *Notifier) user(userID, exclude string) (u *userState, listed []string, fresh bool) {
	now := n.opts.Now()
	if u, ok := n.users[userID]; ok {
		u.seen = now
		return u, nil, false
	}
	if len(n.users) >= n.opts.MaxUsers {
		var oldest string
		var at time.Time
		for id, u := range n.users {
			if oldest == "" || u.seen.Before(at) {
				oldest, at = id, u.seen
			}
		}
		delete(n.users, oldest)
	}
	u = &userState{seen: now}
	n.users[userID] = u
	listed = n.sessionAddrs(userID, exclude)
	for _, a := range listed {
		if !slices.Contains(u.addrs, a) {
			u.addrs = append(u.addrs, a)
		}
	}
	if len(u.addrs) > n.opts.KnownAddresses {
		u.addrs = u.addrs[len(u.addrs)-n.opts.KnownAddresses:]
	}
	return u, listed, true
}

// sessionAddrs lists the addresses of the user's current sessions but
// exclude, when [Options.Sessions] is set (nil on an error, logged).
func (n *Notifier) sessionAddrs(userID, exclude string) []string {
	sl := n.sessions.Load()
	if sl == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(n.ctx, n.opts.Timeout)
	sessions, err := (*sl).ListSessions(ctx, userID)
	cancel()
	if err != nil {
		n.log.Warn("notify: list sessions", "user_id", userID, "error", err.Error())
	}
	var addrs []string
	for _, s := range sessions {
		if a := clean(host(s.LastUsedAddr)); s.ID != exclude && a != "" {
			addrs = append(addrs, a)
		}
	}
	return addrs
}

// newAddress reports whether addr is new for u, and remembers it.
func (n *Notifier) newAddress(u *userState, addr string) bool {
	known := slices.Contains(u.addrs, addr)
	u.addrs = append(slices.DeleteFunc(u.addrs, func(a string) bool { return a == addr }), addr)
	if len(u.addrs) > n.opts.KnownAddresses {
		u.addrs = u.addrs[len(u.addrs)-n.opts.KnownAddresses:]
	}
	return !known
}

// deliver sends the messages of q through tr, retrying with backoff.
func (n *Notifier) deliver(tr Transport, q chan *Message) {
	defer n.wg.Done()
	for {
		select {
		case <-n.ctx.Done():
			return
		case m := <-q:
			n.send(tr, m)
		}
	}
}

func (n *Notifier) send(tr Transport, m *Message) {
	if m.emailErr != nil {
		c := *m // this transport's copy, to look the address up again
		m = &c
	}
	wait := n.opts.RetryBase
	for attempt := 1; ; attempt++ {
		if m.emailErr != nil {
			n.lookupEmail(m)
		}
		ctx, cancel := context.WithTimeout(n.ctx, n.opts.Timeout)
		err := tr.Send(ctx, m)
		cancel()
		if err == nil {
			n.sent.Add(1)
			return
		}
		if n.ctx.Err() != nil {
			n.dropped.Add(1)
			return
		}
		var perm *PermanentError
		if attempt >= n.opts.MaxAttempts || errors.As(err, &perm) {
			n.failed.Add(1)
			n.log.Error("notify: delivery failed", "user_id", m.UserID, "what", string(m.What), "attempts", attempt, "error", err.Error())
			return
		}
		n.log.Warn("notify: delivery failed; retrying", "user_id", m.UserID, "attempt", attempt, "retry_in", wait.String(), "error", err.Error())
		t := time.NewTimer(wait)
		select {
		case <-n.ctx.Done():
			t.Stop()
			n.dropped.Add(1)
			return
		case <-t.C:
		}
		wait = min(2*wait, n.opts.RetryMax)
	}
}

// PermanentError is a delivery that retrying cannot fix (no e-mail address
// for the user, a refused recipient); the message is given up at once.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

func permanent(format string, args ...any) error {
	return &PermanentError{fmt.Errorf(format, args...)}
}

// clean makes client-supplied text safe to show: control characters
// escaped, bounded length.
func clean(s string) string { return safetext.Truncate(safetext.Escape(s), maxText) }

// host strips a port, if any, from an address.
func host(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}
