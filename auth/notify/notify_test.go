package notify_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/notify"
	"github.com/appauth/appauth/backends/memory"
	"github.com/appauth/appauth/internal/testenv"
	"github.com/appauth/appauth/internal/testkit"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var alice = auth.User{ID: "u-alice", Login: "alice", Email: "alice@example.org"}

// setup returns a Manager whose events feed a notifier with opts (the
// Directory and Sessions filled in when unset).
func setup(t *testing.T, opts notify.Options, clock *testkit.Clock) (*auth.Manager, *notify.Notifier) {
	t.Helper()
	dir := memory.NewDirectory()
	if err := dir.AddUser(alice, "account-password"); err != nil {
		t.Fatal(err)
	}
	var n *notify.Notifier
	mo := &auth.Options{OnEvent: func(e auth.Event) { n.OnEvent(e) }}
	if clock != nil {
		mo.Now = clock.Now
		opts.Now = clock.Now
	}
	m := testkit.NewManager(t, memory.NewStore(), dir, mo)
	if opts.Directory == nil {
		opts.Directory = dir
	}
	if opts.Sessions == nil {
		opts.Sessions = m
	}
	var err error
	if n, err = notify.New(&opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return m, n
}

// recorder is a transport that hands every message to a channel, after
// waiting for release when that is set.
type recorder struct {
	got     chan *notify.Message
	started chan *notify.Message // nil: not watched
	release chan struct{}        // nil: no wait
}

func newRecorder() *recorder { return &recorder{got: make(chan *notify.Message, 100)} }

func (r *recorder) Send(ctx context.Context, m *notify.Message) error {
	if r.started != nil {
		r.started <- m
	}
	if r.release != nil {
		select {
		case <-r.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.got <- m
	return nil
}

func (r *recorder) next(t *testing.T) *notify.Message {
	t.Helper()
	select {
	case m := <-r.got:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message within 10s")
		return nil
	}
}

// watched wraps a transport and reports each attempt's result.
type watched struct {
	notify.Transport
	results chan error
}

func (w *watched) Send(ctx context.Context, m *notify.Message) error {
	err := w.Transport.Send(ctx, m)
	w.results <- err
	return err
}

func waitResult(t *testing.T, c chan error) error {
	t.Helper()
	select {
	case err := <-c:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("no delivery attempt within 30s")
		return nil
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func caPool(t *testing.T, file string) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		t.Fatal("no CA certificate in", file)
	}
	return p
}

// secretForms are the ways a secret could appear in a message.
func secretForms(secret string) []string {
	return []string{secret, strings.ReplaceAll(secret, "-", ""), strings.ToLower(secret)}
}

const evilAgent = "DAVx5/4.3\r\nBcc: victim@example.org\x1b[31m"

// TestSMTPDelivery issues an app password through the Manager and finds the
// e-mail in a real mail server (aiosmtpd over STARTTLS): what, when, where,
// which client (sanitised), the revoke link, and never the secret.
func TestSMTPDelivery(t *testing.T) {
	srv := testenv.SMTP(t)
	tr, err := notify.NewSMTP(notify.SMTPOptions{Addr: srv.Addr, From: "Accounts <accounts@example.org>",
		TLSConfig: &tls.Config{RootCAs: caPool(t, srv.CAFile)}, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	w := &watched{tr, make(chan error, 10)}
	clock := testkit.NewClock(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC))
	m, _ := setup(t, notify.Options{Transports: []notify.Transport{w}, SettingsURL: "https://dav.example.org/settings"}, clock)
	_, secret, err := m.IssueAppPassword(t.Context(), &alice, auth.IssueRequest{Name: "My iPhone", RemoteAddr: "192.0.2.7", UserAgent: evilAgent})
	if err != nil {
		t.Fatal(err)
	}
	if err := waitResult(t, w.results); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages(t)
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	raw := msgs[0]
	text := decodeQP(t, raw)
	for _, want := range []string{"To: <alice@example.org>", "Subject: New app password on your account"} {
		if !strings.Contains(raw, want) {
			t.Errorf("message lacks %q:\n%s", want, raw)
		}
	}
	for _, want := range []string{`"My iPhone"`, "2026-03-04T05:06:07Z", "Wednesday, 4 March 2026, 05:06 UTC", "192.0.2.7",
		`DAVx5/4.3\r\nBcc: victim@example.org\x1b[31m`, "https://dav.example.org/settings"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(raw, "\nBcc:") || strings.Contains(text, "\x1b") {
		t.Errorf("the user agent reached the message raw:\n%s", raw)
	}
	for _, s := range secretForms(secret) {
		if strings.Contains(raw, s) || strings.Contains(text, s) {
			t.Fatalf("the message holds the secret %q", s)
		}
	}
}

func decodeQP(t *testing.T, raw string) string {
	t.Helper()
	_, body, ok := strings.Cut(raw, "\n\n")
	if !ok {
		t.Fatalf("no body in %q", raw)
	}
	b, err := io.ReadAll(quotedPrintable(body))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSMTPOutage: with the mail server down, issuing returns at once, and
// the queued messages arrive once it is back.
func TestSMTPOutage(t *testing.T) {
	srv := testenv.SMTP(t)
	tr, err := notify.NewSMTP(notify.SMTPOptions{Addr: srv.Addr, From: "accounts@example.org",
		TLSConfig: &tls.Config{RootCAs: caPool(t, srv.CAFile)}, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	w := &watched{tr, make(chan error, 1000)}
	m, n := setup(t, notify.Options{Transports: []notify.Transport{w}, QueueSize: 10, MaxAttempts: 1 << 20,
		RetryBase: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond}, nil)
	srv.Stop(t)
	names := []string{"phone", "laptop", "tablet"}
	for _, name := range names {
		if _, _, err := m.IssueAppPassword(t.Context(), &alice, auth.IssueRequest{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	if err := waitResult(t, w.results); err == nil {
		t.Fatal("delivery succeeded with the mail server stopped")
	}
	srv.Start(t)

	for delivered, attempts := 0, 0; delivered < len(names); attempts++ {
		if attempts > 1000 {
			t.Fatalf("not delivered after the server came back: %v", err)
		}
		if err = waitResult(t, w.results); err == nil {
			delivered++
		}
	}
	msgs := srv.Messages(t)
	if len(msgs) != len(names) {
		t.Fatalf("%d messages, want %d", len(msgs), len(names))
	}
	all := ""
	for _, msg := range msgs {
		all += decodeQP(t, msg)
	}
	for _, name := range names {
		if strings.Count(all, `"`+name+`"`) != 1 {
			t.Errorf("not exactly one message about %q:\n%s", name, all)
		}
	}
	// The result is reported inside Send, before the notifier counts it.
	waitFor(t, "3 sent", func() bool { return n.Stats().Sent == 3 })
	if s := n.Stats(); s.Dropped != 0 || s.Failed != 0 {
		t.Errorf("stats %+v, want none dropped or failed", s)
	}
}

// TestSMTPRequiresTLS: a server without STARTTLS, or with a certificate
// that does not verify, gets no message.
func TestSMTPRequiresTLS(t *testing.T) {
	msg := &notify.Message{What: notify.AppPasswordCreated, UserID: alice.ID, Login: alice.Login, Email: alice.Email, Time: time.Now()}
	t.Run("no STARTTLS", func(t *testing.T) {
		addr, mailed := plainSMTP(t)
		tr, err := notify.NewSMTP(notify.SMTPOptions{Addr: addr, From: "a@example.org", Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Send(t.Context(), msg); err == nil || !strings.Contains(err.Error(), "STARTTLS") {
			t.Fatalf("Send = %v, want a refusal for lack of STARTTLS", err)
		}
		if *mailed {
			t.Fatal("MAIL FROM reached a server without TLS")
		}
	})
	t.Run("unverified certificate", func(t *testing.T) {
		srv := testenv.SMTP(t)
		tr, err := notify.NewSMTP(notify.SMTPOptions{Addr: srv.Addr, From: "a@example.org", Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		var uerr x509.UnknownAuthorityError
		if err := tr.Send(t.Context(), msg); !errors.As(err, &uerr) {
			t.Fatalf("Send = %v, want an unknown authority error", err)
		}
		if n := len(srv.Messages(t)); n != 0 {
			t.Fatalf("%d messages delivered", n)
		}
	})
	t.Run("insecure loopback only on loopback", func(t *testing.T) {
		if _, err := notify.NewSMTP(notify.SMTPOptions{Addr: "mail.example.org:25", From: "a@example.org", InsecureLoopback: true}); err == nil {
			t.Fatal("InsecureLoopback accepted for a remote server")
		}
	})
}

// plainSMTP is a server that offers no STARTTLS and records whether a
// client sent MAIL.
func plainSMTP(t *testing.T) (string, *bool) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mailed := new(bool)
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "220 plain\r\n")
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			line := string(buf[:n])
			switch {
			case strings.HasPrefix(line, "EHLO"):
				io.WriteString(c, "250-plain\r\n250 AUTH PLAIN\r\n")
			case strings.HasPrefix(line, "MAIL"):
				*mailed = true
				io.WriteString(c, "250 ok\r\n")
			case strings.HasPrefix(line, "QUIT"):
				io.WriteString(c, "221 bye\r\n")
				return
			default:
				io.WriteString(c, "250 ok\r\n")
			}
		}
	}()
	return ln.Addr().String(), mailed
}

// TestSMTPHungServer: a server that accepts and never answers ends the
// attempt at its deadline.
func TestSMTPHungServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 1)
	defer func() {
		ln.Close()
		if c, ok := <-accepted; ok {
			c.Close()
		}
	}()
	go func() {
		defer close(accepted)
		if c, err := ln.Accept(); err == nil {
			accepted <- c // held open, never answered
		}
	}()
	tr, err := notify.NewSMTP(notify.SMTPOptions{Addr: ln.Addr().String(), From: "a@example.org", Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	err = tr.Send(t.Context(), &notify.Message{UserID: "u", Email: "a@example.org"})
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Send = %v, want the deadline exceeded", err)
	}
}

// TestWebhook: the receiver checks the signature and timestamp; the body
// carries the event and never the secret; a tampered or old request fails.
func TestWebhook(t *testing.T) {
	key := []byte(strings.Repeat("k", 32))
	type received struct {
		h    http.Header
		body []byte
	}
	got := make(chan received, 10)
	fail := make(chan int, 10)
	fail <- http.StatusServiceUnavailable // the first delivery is refused: retried
	recv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		select {
		case code := <-fail:
			w.WriteHeader(code)
			return
		default:
		}
		if err := notify.VerifyWebhook(key, r.Header, body, time.Now(), 5*time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
		}
		got <- received{r.Header.Clone(), body}
	}))
	defer recv.Close()
	tr, err := notify.NewWebhook(notify.WebhookOptions{URL: recv.URL, Secret: key, Client: recv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	w := &watched{tr, make(chan error, 10)}
	m, _ := setup(t, notify.Options{Transports: []notify.Transport{w}, RetryBase: time.Millisecond, SettingsURL: "https://dav.example.org/settings"}, nil)
	_, secret, err := m.IssueAppPassword(t.Context(), &alice, auth.IssueRequest{Name: "Thunderbird", RemoteAddr: "198.51.100.2:4431", UserAgent: "Thunderbird/128"})
	if err != nil {
		t.Fatal(err)
	}
	if err := waitResult(t, w.results); err == nil {
		t.Fatal("the first, refused, delivery counted as sent")
	}
	if err := waitResult(t, w.results); err != nil {
		t.Fatal(err)
	}
	r := <-got
	body := string(r.body)
	for _, want := range []string{`"what":"app_password_created"`, `"login":"alice"`, `"email":"alice@example.org"`,
		`"name":"Thunderbird"`, `"remote_addr":"198.51.100.2"`, `"user_agent":"Thunderbird/128"`, `"settings_url":"https://dav.example.org/settings"`} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %s: %s", want, body)
		}
	}
	for _, s := range secretForms(secret) {
		if strings.Contains(body, s) {
			t.Fatalf("the webhook body holds the secret")
		}
	}
	if err := notify.VerifyWebhook(key, r.h, []byte(strings.Replace(body, "alice", "mallory", 1)), time.Now(), 5*time.Minute); err == nil {
		t.Error("a tampered body verified")
	}
	if err := notify.VerifyWebhook(key, r.h, r.body, time.Now().Add(time.Hour), 5*time.Minute); err == nil {
		t.Error("a replay an hour later verified")
	}
	if err := notify.VerifyWebhook([]byte(strings.Repeat("x", 32)), r.h, r.body, time.Now(), 5*time.Minute); err == nil {
		t.Error("another key verified")
	}
	if _, err := notify.NewWebhook(notify.WebhookOptions{URL: "http://hooks.example.org/x", Secret: key}); err == nil {
		t.Error("a plain http webhook was accepted")
	}
	if _, err := notify.NewWebhook(notify.WebhookOptions{URL: recv.URL, Secret: key[:31]}); err == nil {
		t.Error("a short secret was accepted")
	}
}

// TestNeverBlocks: with the transport stuck mid-delivery, the Manager's
// calls return (the hook only enqueues); beyond the queue bound messages are
// dropped and counted; within it, all are delivered once the transport
// recovers.
func TestNeverBlocks(t *testing.T) {
	const queue, extra = 3, 5
	r := newRecorder()
	r.started, r.release = make(chan *notify.Message, 100), make(chan struct{})
	m, n := setup(t, notify.Options{Transports: []notify.Transport{r}, QueueSize: queue, PerUserPerHour: 100}, nil)
	issue := func(name string) {
		if _, _, err := m.IssueAppPassword(t.Context(), &alice, auth.IssueRequest{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	issue("first")
	<-r.started // the transport holds "first" and does not return
	for i := range queue + extra {
		issue(string(rune('a' + i))) // returns although the transport is stuck
	}
	waitFor(t, "the drops", func() bool { return n.Stats().Dropped == extra })
	close(r.release)
	want := []string{"first", "a", "b", "c"}
	for _, name := range want {
		if got := r.next(t); got.Name != name {
			t.Fatalf("delivered %q, want %q", got.Name, name)
		}
	}
	// A later message still flows, and nothing else was queued.
	issue("later")
	if got := r.next(t); got.Name != "later" {
		t.Fatalf("delivered %q, want later", got.Name)
	}
	// The recorder hands a message over inside Send, before the notifier
	// counts it as sent: wait for the count.
	waitFor(t, "5 sent", func() bool { return n.Stats().Sent == 5 })
	if s := n.Stats(); s.Dropped != extra {
		t.Errorf("stats %+v, want %d dropped", s, extra)
	}
}

// TestRateLimit: at most PerUserPerHour messages per user per hour.
func TestRateLimit(t *testing.T) {
	r := newRecorder()
	clock := testkit.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	m, n := setup(t, notify.Options{Transports: []notify.Transport{r}, PerUserPerHour: 2}, clock)
	bob := auth.User{ID: "u-bob", Login: "bob"}
	issue := func(u *auth.User, name string) {
		if _, _, err := m.IssueAppPassword(t.Context(), u, auth.IssueRequest{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"1", "2", "3", "4"} {
		issue(&alice, name)
	}
	issue(&bob, "bob's") // another user has a bound of their own
	clock.Add(time.Hour)
	issue(&alice, "next hour")
	for _, want := range []string{"1", "2", "bob's", "next hour"} {
		if got := r.next(t); got.Name != want {
			t.Fatalf("delivered %q, want %q", got.Name, want)
		}
	}
	if s := n.Stats(); s.RateLimited != 2 {
		t.Errorf("stats %+v, want 2 rate limited", s)
	}
}

// TestNewAddress: a browser sign-in is told when its address is new for the
// user; addresses of the user's sessions count as known, also for a new
// notifier (after a restart).
func TestNewAddress(t *testing.T) {
	r := newRecorder()
	m, _ := setup(t, notify.Options{Transports: []notify.Transport{r}}, nil)
	signIn := func(addr string) {
		if _, _, err := m.CreateSession(t.Context(), &alice, addr, "Firefox/140"); err != nil {
			t.Fatal(err)
		}
	}
	marker := func(name string) { // an app password, to see what came before it
		if _, _, err := m.IssueAppPassword(t.Context(), &alice, auth.IssueRequest{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	signIn("192.0.2.1")
	if got := r.next(t); got.What != notify.NewSignIn || got.RemoteAddr != "192.0.2.1" || got.UserAgent != "Firefox/140" {
		t.Fatalf("first sign-in: %+v", got)
	}
	signIn("192.0.2.1")
	marker("after known")
	if got := r.next(t); got.Name != "after known" {
		t.Fatalf("a sign-in from a known address was notified: %+v", got)
	}
	signIn("203.0.113.9")
	if got := r.next(t); got.What != notify.NewSignIn || got.RemoteAddr != "203.0.113.9" {
		t.Fatalf("sign-in from a new address: %+v", got)
	}

	// A new notifier on the same Manager learns the sessions' addresses.
	r2 := newRecorder()
	n2, err := notify.New(&notify.Options{Transports: []notify.Transport{r2}, Sessions: m})
	if err != nil {
		t.Fatal(err)
	}
	defer n2.Close()
	e := auth.Event{Type: auth.EventIssued, Kind: auth.KindSession, UserID: alice.ID, Login: alice.Login, CredentialID: "new", RemoteAddr: "192.0.2.1"}
	n2.OnEvent(e)
	n2.OnEvent(auth.Event{Type: auth.EventIssued, Kind: auth.KindAppPassword, UserID: alice.ID, Name: "marker"})
	if got := r2.next(t); got.Name != "marker" {
		t.Fatalf("after a restart, a sign-in from a known address was notified: %+v", got)
	}
	e.RemoteAddr = "198.51.100.77"
	n2.OnEvent(e)
	if got := r2.next(t); got.What != notify.NewSignIn {
		t.Fatalf("after a restart, a new address was not notified: %+v", got)
	}
}

// TestNewAddressAcrossServers: two notifiers on one store, as two servers
// behind a load balancer: a sign-in from an address that the other server
// already told the user about is not told again, although this notifier
// knew the user from before that sign-in.
func TestNewAddressAcrossServers(t *testing.T) {
	m, _ := setup(t, notify.Options{Transports: []notify.Transport{newRecorder()}}, nil)
	r1, r2 := newRecorder(), newRecorder()
	n1, err := notify.New(&notify.Options{Transports: []notify.Transport{r1}, Sessions: m})
	if err != nil {
		t.Fatal(err)
	}
	defer n1.Close()
	n2, err := notify.New(&notify.Options{Transports: []notify.Transport{r2}, Sessions: m})
	if err != nil {
		t.Fatal(err)
	}
	defer n2.Close()
	marker := func(n *notify.Notifier, name string) {
		n.OnEvent(auth.Event{Type: auth.EventIssued, Kind: auth.KindAppPassword, UserID: alice.ID, Login: alice.Login, Name: name})
	}
	marker(n2, "n2 knows alice") // before her sign-in below
	if got := r2.next(t); got.Name != "n2 knows alice" {
		t.Fatalf("n2: %+v", got)
	}
	signIn := func(n *notify.Notifier) {
		s, _, err := m.CreateSession(t.Context(), &alice, "198.51.100.5", "Firefox/140")
		if err != nil {
			t.Fatal(err)
		}
		n.OnEvent(auth.Event{Type: auth.EventIssued, Kind: auth.KindSession, UserID: alice.ID, Login: alice.Login, CredentialID: s.ID, RemoteAddr: "198.51.100.5", UserAgent: "Firefox/140"})
	}
	signIn(n1)
	if got := r1.next(t); got.What != notify.NewSignIn || got.RemoteAddr != "198.51.100.5" {
		t.Fatalf("the first sign-in from 198.51.100.5, on n1: %+v", got)
	}
	signIn(n2)
	marker(n2, "after the second sign-in")
	if got := r2.next(t); got.Name != "after the second sign-in" {
		t.Fatalf("n2 told again of an address n1 already told: %+v", got)
	}
}

// stuckDirectory blocks every look-up until released, as a hung LDAP server.
type stuckDirectory struct {
	started chan struct{}
	release chan struct{}
}

func (d *stuckDirectory) LookupUser(ctx context.Context, login string) (*auth.User, error) {
	d.started <- struct{}{}
	select {
	case <-d.release:
		return &alice, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// TestHookNeverBlocks: with the notifier itself stuck (its directory hangs),
// the event hook still returns at once: events beyond the queue are dropped
// and counted then and there, and the queued ones are delivered later.
func TestHookNeverBlocks(t *testing.T) {
	const queue, extra = 3, 2
	r := newRecorder()
	dir := &stuckDirectory{started: make(chan struct{}, 100), release: make(chan struct{})}
	m, n := setup(t, notify.Options{Transports: []notify.Transport{r}, Directory: dir, QueueSize: queue, PerUserPerHour: 100}, nil)
	issue := func(name string) {
		if _, _, err := m.IssueAppPassword(t.Context(), &alice, auth.IssueRequest{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	issue("first")
	<-dir.started // the notifier is stuck on "first"
	for i := range queue + extra {
		issue(string(rune('a' + i)))
	}
	if s := n.Stats(); s.Dropped != extra { // counted by the hook itself, synchronously
		t.Fatalf("stats %+v, want %d dropped by the hook", s, extra)
	}
	close(dir.release)
	// The four queued events become four messages for a transport queue of
	// three; when they come faster than the transport takes them, the last
	// is dropped there (counted). So: everything settles, in order, with at
	// most that one more drop.
	waitFor(t, "every event to settle", func() bool { s := n.Stats(); return s.Sent+s.Dropped == 1+queue+extra })
	s := n.Stats()
	if s.Dropped > extra+1 {
		t.Fatalf("stats %+v: more than one drop after the release", s)
	}
	for i, want := range []string{"first", "a", "b", "c"}[:s.Sent] {
		if got := r.next(t); got.Name != want || got.Email != alice.Email {
			t.Fatalf("message %d: %q to %q, want %q", i, got.Name, got.Email, want)
		}
	}
}
