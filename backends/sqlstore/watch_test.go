package sqlstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/appauth/appauth/internal/testenv"
)

// msgHandler sends the message of every record to msgs, dropping it when
// nobody reads.
type msgHandler struct{ msgs chan string }

func (h msgHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h msgHandler) Handle(_ context.Context, r slog.Record) error {
	select {
	case h.msgs <- r.Message:
	default:
	}
	return nil
}
func (h msgHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h msgHandler) WithGroup(string) slog.Handler      { return h }

// TestHungPostgresWatcherPing pauses PostgreSQL under a listening
// WatchChanges: the ping that follows gets no answer, and the watcher must
// give up on the connection (so it reconnects, and says it cannot) instead
// of waiting on it for as long as the server hangs, a half-open connection
// for as long as TCP retransmits; and once its context is cancelled it
// returns, which a ping holding the listener's lock would prevent.
func TestHungPostgresWatcherPing(t *testing.T) {
	srv := testenv.NewPostgres(t) // paused below: a server of its own
	logs := make(chan string, 64)
	s, err := OpenPostgres(t.Context(), srv.Database(t)+"&connect_timeout=1", &Options{Logger: slog.New(msgHandler{logs})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.listenPing = 200 * time.Millisecond

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := make(chan struct{}, 16)
	returned := make(chan error, 1)
	go func() {
		returned <- s.WatchChanges(ctx, func(string, string) {
			select {
			case events <- struct{}{}:
			default:
			}
		})
	}()
	select {
	case <-events: // listening
	case err := <-returned:
		t.Fatalf("WatchChanges: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("the watcher did not start listening within 20s")
	}

	srv.Pause(t)
	defer srv.Resume(t)
	// A safety net, not a timing assertion: the pings are 200 ms apart and
	// a connection attempt gives up after 1 s.
	noticed := false
	for limit := time.After(15 * time.Second); !noticed; {
		select {
		case msg := <-logs:
			noticed = strings.Contains(msg, "cannot connect")
		case <-limit:
			t.Error("the watcher did not give up on its connection to a hung PostgreSQL within 15s")
			noticed = true
		}
	}
	cancel()
	select {
	case err := <-returned:
		if err != nil {
			t.Errorf("WatchChanges after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WatchChanges did not return within 10s of its context's cancel on a hung PostgreSQL")
	}
}

// TestWatcherCancelWhileListenHangs runs WatchChanges through a proxy that
// passes the connection's startup but never the LISTEN: a server that hangs
// just then. lib/pq waits for LISTEN's answer holding the listener's lock,
// before any ping is sent, so the watcher must fail that connection itself
// once its context is cancelled, or its Close waits for as long as the
// server hangs.
func TestWatcherCancelWhileListenHangs(t *testing.T) {
	dsn := testenv.Postgres(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	held := make(chan struct{}, 1)
	u.Host = holdListenProxy(t, u.Host, held)
	s, err := OpenPostgres(t.Context(), dsn, &Options{ListenDSN: u.String()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	returned := make(chan error, 1)
	go func() { returned <- s.WatchChanges(ctx, func(string, string) {}) }()
	select {
	case <-held:
	case err := <-returned:
		t.Fatalf("WatchChanges: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("the watcher sent no LISTEN within 20s")
	}
	cancel()
	select {
	case err := <-returned:
		if err != nil {
			t.Errorf("WatchChanges after cancel: %v", err)
		}
	case <-time.After(10 * time.Second): // a safety net, not a timing assertion
		t.Fatal("WatchChanges did not return within 10s of its context's cancel while its LISTEN hung")
	}
}

// holdListenProxy forwards connections to addr until a client sends a
// query holding LISTEN: from then on nothing more of that client's reaches
// the server, and held is signalled. It returns the proxy's address.
func holdListenProxy(t *testing.T, addr string, held chan<- struct{}) string {
	return loopbackServer(t, func(c net.Conn, keep func(net.Conn)) {
		srv, err := net.Dial("tcp", addr)
		if err != nil {
			c.Close()
			return
		}
		keep(srv)
		go io.Copy(c, srv)
		// The startup message has no type byte; every later one has.
		if !forwardMessage(c, srv) {
			return
		}
		for {
			var typ [1]byte
			if _, err := io.ReadFull(c, typ[:]); err != nil {
				return
			}
			if typ[0] == 'Q' {
				var hdr [4]byte
				if _, err := io.ReadFull(c, hdr[:]); err != nil {
					return
				}
				body := make([]byte, binary.BigEndian.Uint32(hdr[:])-4)
				if _, err := io.ReadFull(c, body); err != nil {
					return
				}
				if bytes.Contains(bytes.ToUpper(body), []byte("LISTEN")) {
					select {
					case held <- struct{}{}:
					default:
					}
					io.Copy(io.Discard, c)
					return
				}
				srv.Write(append(append(typ[:], hdr[:]...), body...))
				continue
			}
			srv.Write(typ[:])
			if !forwardMessage(c, srv) {
				return
			}
		}
	})
}

// loopbackServer accepts connections on a loopback address and passes each
// to serve on a goroutine of its own (nil: hold it open and say nothing)
// until the test ends; then it closes the listener, every connection it
// accepted and every one serve gave to keep. It returns the address.
func loopbackServer(t *testing.T, serve func(c net.Conn, keep func(net.Conn))) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	keep := func(c net.Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	}
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			keep(c)
			if serve != nil {
				go serve(c, keep)
			}
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-accepted
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// forwardMessage copies one length-prefixed message (its type byte, if
// any, already sent) from c to srv.
func forwardMessage(c, srv net.Conn) bool {
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return false
	}
	if _, err := srv.Write(hdr[:]); err != nil {
		return false
	}
	_, err := io.CopyN(srv, c, int64(binary.BigEndian.Uint32(hdr[:]))-4)
	return err == nil
}

// TestWatcherConnectIsBounded gives WatchChanges a ListenDSN without
// connect_timeout whose server accepts the connection and never answers:
// the listener must give up on it (and say so) as the pool's connections
// do, not wait on the handshake for as long as the server stays silent.
func TestWatcherConnectIsBounded(t *testing.T) {
	silent := loopbackServer(t, nil)
	logs := make(chan string, 64)
	s, err := OpenPostgres(t.Context(), testenv.Postgres(t), &Options{
		ListenDSN: "postgres://appauth@" + silent + "/postgres?sslmode=disable",
		Logger:    slog.New(msgHandler{logs}),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	returned := make(chan error, 1)
	go func() { returned <- s.WatchChanges(ctx, func(string, string) {}) }()
	defer func() {
		cancel()
		<-returned
	}()
	// A safety net, not a timing assertion: DefaultConnectTimeout is 5s.
	for limit := time.After(4 * DefaultConnectTimeout * time.Second); ; {
		select {
		case msg := <-logs:
			if strings.Contains(msg, "cannot connect") {
				return
			}
		case err := <-returned:
			t.Fatalf("WatchChanges: %v", err)
		case <-limit:
			t.Fatalf("the watcher was still connecting to a silent server after %ds", 4*DefaultConnectTimeout)
		}
	}
}

// TestWatcherReplacesAHungFirstListen: a server that hangs on the
// watcher's first LISTEN (here a proxy that passes the startup and never
// the LISTEN, on every connection) is pinged like a listening connection:
// the watcher gives up on that connection and dials another instead of
// waiting on it until its context ends. Meanwhile no change is heard, and
// a Manager's cache would trust what it holds for all of CacheTTL.
func TestWatcherReplacesAHungFirstListen(t *testing.T) {
	dsn := testenv.Postgres(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	held := make(chan struct{}, 16)
	u.Host = holdListenProxy(t, u.Host, held)
	s, err := OpenPostgres(t.Context(), dsn, &Options{ListenDSN: u.String()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.listenPing = 300 * time.Millisecond

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	returned := make(chan error, 1)
	go func() { returned <- s.WatchChanges(ctx, func(string, string) {}) }()
	for i := range 2 {
		select {
		case <-held:
		case err := <-returned:
			t.Fatalf("WatchChanges: %v", err)
		case <-time.After(10 * time.Second): // a safety net, not a timing assertion
			t.Fatalf("%d LISTEN held, and no other sent within 10s: the watcher waits on a hung connection", i)
		}
	}
	cancel()
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("WatchChanges did not return within 10s of its context's cancel")
	}
}
