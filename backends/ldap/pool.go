package ldap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/appauth/appauth/auth"
)

// conn is one pooled connection.
type conn struct {
	*goldap.Conn
	server int // index in Directory.servers
}

// pool is a bounded set of connections of one kind: searching (bound as
// the service account) or binding as users. Connections are made on
// demand, in server order, and dropped when broken.
type pool struct {
	d      *Directory
	name   string
	idle   chan *conn
	tokens chan struct{} // one per open or opening connection
	closed atomic.Bool
	mu     sync.Mutex // guards closing against put
}

func newPool(d *Directory, name string, size int) *pool {
	p := &pool{d: d, name: name, idle: make(chan *conn, size), tokens: make(chan struct{}, size)}
	return p
}

var errClosed = errors.New("ldap: directory closed")

// get returns a connection and whether it came from the idle set (it may
// then turn out to be stale). It waits for a free slot until ctx ends.
// Idle connections to a server marked dead are closed, not used: the
// server is skipped, and they may hang as the one that marked it did.
func (p *pool) get(ctx context.Context) (*conn, bool, error) {
	if p.closed.Load() {
		return nil, false, errClosed
	}
	// An idle connection first, without taking a new slot.
	for {
		select {
		case c := <-p.idle:
			if p.unusable(c) {
				p.discard(c)
				continue
			}
			return c, true, nil
		default:
		}
		break
	}
	select {
	case p.tokens <- struct{}{}:
	case c := <-p.idle:
		if p.unusable(c) {
			p.discard(c)
			return p.get(ctx)
		}
		return c, true, nil
	case <-ctx.Done():
		return nil, false, fmt.Errorf("%w: waiting for a connection: %w", auth.ErrUnavailable, ctx.Err())
	}
	c, err := p.d.dial(ctx, p.name == "search")
	if err != nil {
		<-p.tokens
		return nil, false, err
	}
	return c, false, nil
}

// unusable reports whether idle connection c is closing or to a server
// marked dead.
func (p *pool) unusable(c *conn) bool {
	return c.IsClosing() || p.d.deadUntil[c.server].Load() > time.Now().UnixNano()
}

// put returns c to the pool, or closes it if it is broken or the pool is.
func (p *pool) put(c *conn, broken bool) {
	if broken || c.IsClosing() {
		p.discard(c)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Load() {
		c.Close()
		<-p.tokens
		return
	}
	p.idle <- c // never blocks: one slot per token
}

func (p *pool) discard(c *conn) {
	c.Close()
	<-p.tokens
}

func (p *pool) close() {
	p.mu.Lock()
	p.closed.Store(true)
	p.mu.Unlock()
	for {
		select {
		case c := <-p.idle:
			p.discard(c)
		default:
			return
		}
	}
}

// dial connects to the first live server in order, marking the ones that
// fail dead for DeadServerBackoff; if every server is dead, they are tried
// again by one caller at a time while the others fail at once, so no
// request waits on a directory already known to be down. Each server is
// dialled at most once per call. A search connection is bound as the
// service account; a binding one is too when there is one (it proves the
// server answers), else it reads the root DSE.
func (d *Directory) dial(ctx context.Context, search bool) (*conn, error) {
	now := time.Now().UnixNano()
	dead := make([]bool, len(d.servers))
	allDead := true
	for i := range d.servers {
		dead[i] = d.deadUntil[i].Load() > now
		allDead = allDead && dead[i]
	}
	if allDead {
		if !d.probing.CompareAndSwap(false, true) {
			return nil, fmt.Errorf("ldap: every server failed in the last %s and another request is trying them: %w", d.cfg.DeadServerBackoff, auth.ErrUnavailable)
		}
		defer d.probing.Store(false)
	}
	var errs []error
	// Live servers first, then the ones that failed recently.
	for pass := range 2 {
		for i := range d.servers {
			if dead[i] != (pass == 1) {
				continue
			}
			c, err := d.dialServer(ctx, i, search)
			if err == nil {
				d.deadUntil[i].Store(0)
				return c, nil
			}
			if cerr := ctxEnded(ctx); cerr != nil {
				// The caller's deadline, not the server: don't mark it dead.
				return nil, fmt.Errorf("%w: %w: %w", auth.ErrUnavailable, cerr, errors.Join(append(errs, err)...))
			}
			if errors.Is(err, errServiceBind) {
				return nil, err // a configuration error: another server will say the same
			}
			d.markDead(i, err)
			errs = append(errs, err)
		}
	}
	return nil, fmt.Errorf("ldap: no server answers: %w: %w", auth.ErrUnavailable, errors.Join(errs...))
}

// ctxEnded returns ctx's error, also when its deadline has passed but its
// timer has not fired yet (a read that timed out at that deadline).
func ctxEnded(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

func (d *Directory) markDead(i int, err error) {
	until := time.Now().Add(d.cfg.DeadServerBackoff).UnixNano()
	if d.deadUntil[i].Swap(until) < time.Now().UnixNano() {
		d.log.Warn("ldap: server failed, skipping it for a while", "url", d.servers[i].url, "for", d.cfg.DeadServerBackoff, "error", err)
	}
}

var errServiceBind = errors.New("ldap: the service account's bind failed")

func (d *Directory) dialServer(ctx context.Context, i int, search bool) (*conn, error) {
	s := d.servers[i]
	ctx, cancel := context.WithTimeout(ctx, d.cfg.DialTimeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	dialer := &net.Dialer{}
	raw, err := dialer.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return nil, fmt.Errorf("ldap: dial %s: %w", s.url, err)
	}
	// Everything until the connection is ready (TLS, StartTLS, the first
	// bind) must finish by the dial deadline: a server that accepts and
	// never answers is then skipped like a closed port.
	raw.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	nc := raw
	if s.tls {
		tc := tls.Client(raw, s.cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, fmt.Errorf("ldap: TLS handshake with %s: %w", s.url, err)
		}
		nc = tc
	}
	lc := goldap.NewConn(nc, s.tls)
	lc.Start()
	c := &conn{Conn: lc, server: i}
	fail := func(err error) (*conn, error) {
		lc.Close()
		return nil, err
	}
	if d.cfg.StartTLS {
		if err := lc.StartTLS(s.cfg); err != nil {
			return fail(fmt.Errorf("ldap: StartTLS with %s: %w", s.url, err))
		}
	}
	lc.SetTimeout(time.Until(deadline))
	if d.cfg.BindDN != "" {
		if err := lc.Bind(d.cfg.BindDN, d.cfg.BindPassword); err != nil {
			if !transient(err) {
				d.log.Error("ldap: the service account cannot bind; check BindDN and BindPassword", "url", s.url, "bind_dn", d.cfg.BindDN, "error", err)
				return fail(fmt.Errorf("%w as %q on %s: %w: %w", errServiceBind, d.cfg.BindDN, s.url, auth.ErrUnavailable, err))
			}
			return fail(fmt.Errorf("ldap: bind as %q on %s: %w", d.cfg.BindDN, s.url, err))
		}
	} else {
		req := goldap.NewSearchRequest("", goldap.ScopeBaseObject, goldap.NeverDerefAliases, 1, 0, false, "(objectClass=*)", []string{"supportedLDAPVersion"}, nil)
		if _, err := lc.Search(req); err != nil {
			return fail(fmt.Errorf("ldap: read root DSE of %s: %w", s.url, err))
		}
	}
	if ctx.Err() != nil || !stop() {
		return fail(fmt.Errorf("ldap: connect to %s: %w", s.url, context.Cause(ctx)))
	}
	raw.SetDeadline(time.Time{})
	return c, nil
}

// transient reports whether err is a failure to get an answer (network,
// timeout, a busy or unavailable server, or the server's own internal
// failure: operationsError, other) rather than the server's answer.
func transient(err error) bool {
	var ae *answerError
	if errors.As(err, &ae) {
		return false
	}
	var le *goldap.Error
	if !errors.As(err, &le) {
		return true
	}
	switch le.ResultCode {
	case goldap.LDAPResultBusy, goldap.LDAPResultUnavailable, goldap.LDAPResultTimeout,
		goldap.LDAPResultTimeLimitExceeded, goldap.LDAPResultServerDown, goldap.LDAPResultConnectError,
		goldap.LDAPResultOperationsError, goldap.LDAPResultOther:
		return true
	}
	return le.ResultCode >= goldap.ErrorNetwork
}
