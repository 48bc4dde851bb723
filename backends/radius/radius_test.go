package radius

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/authtest"
	"github.com/appauth/appauth/backends/memory"
	"github.com/appauth/appauth/internal/testenv"
	"github.com/appauth/appauth/internal/testkit"
)

// TestMain stops the test servers that the tests started (see testenv.Main).
func TestMain(m *testing.M) { testenv.Main(m) }

const (
	alicePassword = "correct horse battery staple"
	wrongPassword = "correct horse battery stapler"
)

func freeRADIUS(t *testing.T, requireMA bool) *testenv.RADIUSServer {
	t.Helper()
	return testenv.RADIUS(t, testenv.RADIUSConfig{
		Users:                       map[string]string{"alice": alicePassword},
		RequireMessageAuthenticator: requireMA,
	})
}

func newVerifier(t *testing.T, cfg Config) *Verifier {
	t.Helper()
	v, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestFreeRADIUS: a real FreeRADIUS with a users file, which requires a
// Message-Authenticator in requests.
func TestFreeRADIUS(t *testing.T) {
	s := freeRADIUS(t, true)
	v := newVerifier(t, Config{Servers: []string{s.Addr}, Secret: s.Secret, Timeout: time.Second, AllowUnsignedReplies: true})

	u, err := v.VerifyPassword(t.Context(), "alice", alicePassword)
	if err != nil || u.Login != "alice" || u.ID != "alice" {
		t.Fatalf("right password: %+v, %v; FreeRADIUS log:\n%s", u, err, s.Log())
	}
	if _, err := v.VerifyPassword(t.Context(), "alice", wrongPassword); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := v.VerifyPassword(t.Context(), "mallory", alicePassword); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Fatalf("unknown user: %v", err)
	}
	// A password of 17 bytes takes two blocks of the RFC 2865 hiding.
	if _, err := v.VerifyPassword(t.Context(), "alice", alicePassword[:17]); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Fatalf("a prefix of the password: %v", err)
	}
}

// TestFreeRADIUSRequiresMessageAuthenticator: a server with
// require_message_authenticator drops a request without one (so ours,
// which it accepts, carries a valid one).
func TestFreeRADIUSRequiresMessageAuthenticator(t *testing.T) {
	s := freeRADIUS(t, true)
	cfg := Config{Servers: []string{s.Addr}, Secret: s.Secret, Timeout: 300 * time.Millisecond, Tries: 1, AllowUnsignedReplies: true}
	cfg.omitMessageAuthenticator = true
	if _, err := newVerifier(t, cfg).VerifyPassword(t.Context(), "alice", alicePassword); !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("without Message-Authenticator: %v, want ErrUnavailable (dropped)", err)
	}
	cfg.omitMessageAuthenticator = false
	if _, err := newVerifier(t, cfg).VerifyPassword(t.Context(), "alice", alicePassword); err != nil {
		t.Fatalf("with Message-Authenticator: %v", err)
	}
}

// TestFreeRADIUSUnsignedReplies: by default a reply must carry a
// Message-Authenticator, and Debian's FreeRADIUS 3.2.1 does not sign PAP
// replies: its Access-Accept is ignored, and the check is an outage that
// names the cause, never a sign-in.
func TestFreeRADIUSUnsignedReplies(t *testing.T) {
	s := freeRADIUS(t, false)
	v := newVerifier(t, Config{Servers: []string{s.Addr}, Secret: s.Secret, Timeout: 300 * time.Millisecond, Tries: 1})
	u, err := v.VerifyPassword(t.Context(), "alice", alicePassword)
	if u != nil || !errors.Is(err, auth.ErrUnavailable) || !errors.Is(err, errUnsigned) {
		t.Fatalf("default against FreeRADIUS: %v, %v; want the unsigned reply ignored (if this FreeRADIUS signs PAP replies, make this test send them to a responder instead)", u, err)
	}
}

// TestFailover: the first server is dead (it reads and never answers),
// the second answers within the overall deadline.
func TestFailover(t *testing.T) {
	s := freeRADIUS(t, true)
	dead := listenUDP(t) // silent: its packets are never read
	v := newVerifier(t, Config{Servers: []string{dead.LocalAddr().String(), s.Addr}, Secret: s.Secret,
		Timeout: 200 * time.Millisecond, Tries: 2, AllowUnsignedReplies: true})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := v.VerifyPassword(ctx, "alice", alicePassword); err != nil {
		t.Fatalf("failover: %v", err)
	}
	// Both dead: ErrUnavailable, within the context's deadline.
	v = newVerifier(t, Config{Servers: []string{dead.LocalAddr().String(), dead.LocalAddr().String()}, Secret: s.Secret,
		Timeout: time.Hour, AllowUnsignedReplies: true})
	ctx, cancel = context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if _, err := v.VerifyPassword(ctx, "alice", alicePassword); !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("all dead: %v, want ErrUnavailable", err)
	}
}

// TestManagerSignIn: the web sign-in (VerifyAccountPassword) checked by
// FreeRADIUS, with the identity from a directory.
func TestManagerSignIn(t *testing.T) {
	s := freeRADIUS(t, true)
	dir := memory.NewDirectory()
	if err := dir.AddUser(auth.User{ID: "u-alice", Login: "alice", DisplayName: "Alice"}, "not the RADIUS password"); err != nil {
		t.Fatal(err)
	}
	v := newVerifier(t, Config{Servers: []string{s.Addr}, Secret: s.Secret, Directory: dir, AllowUnsignedReplies: true})
	m := testkit.NewManager(t, memory.NewStore(), dir, nil)
	p, err := m.VerifyAccountPassword(t.Context(), v, auth.Attempt{Username: "Alice", Password: alicePassword, RemoteAddr: "192.0.2.1"})
	if err != nil || p.User.ID != "u-alice" || p.Method != auth.MethodAccountPassword {
		t.Fatalf("sign-in: %+v, %v", p, err)
	}
	if _, err := m.VerifyAccountPassword(t.Context(), v, auth.Attempt{Username: "alice", Password: "not the RADIUS password"}); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Fatalf("the directory's password: %v", err)
	}
}

// responder is a RADIUS server written in the test: answer returns the
// datagrams to send back for each request it reads.
func responder(t *testing.T, answer func(req *packet) [][]byte) string {
	t.Helper()
	c := listenUDP(t)
	go func() {
		buf := make([]byte, maxPacketLen)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			req, err := decode(buf[:n])
			if err != nil {
				continue
			}
			for _, b := range answer(req) {
				c.WriteTo(b, from)
			}
		}
	}()
	return c.LocalAddr().String()
}

func listenUDP(t *testing.T) net.PacketConn {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

const testSecret = "s3cret-shared"

// TestForgedReplies: replies that do not verify are ignored, so a forged
// Access-Accept never signs anyone in; a valid reply after one still counts.
func TestForgedReplies(t *testing.T) {
	secret := []byte(testSecret)
	other := []byte("another-secret")
	accept := func(req *packet, key []byte, omitMA bool) []byte {
		return encodeReply(codeAccessAccept, req.id, req.auth, key, nil, omitMA)
	}
	for _, tc := range []struct {
		name     string
		answer   func(req *packet) [][]byte
		unsigned bool // AllowUnsignedReplies
		want     error
	}{
		{"valid accept", func(r *packet) [][]byte { return [][]byte{accept(r, secret, false)} }, false, nil},
		{"wrong secret", func(r *packet) [][]byte { return [][]byte{accept(r, other, false)} }, false, auth.ErrUnavailable},
		{"unsigned accept", func(r *packet) [][]byte { return [][]byte{accept(r, secret, true)} }, false, errUnsigned},
		{"unsigned accept allowed", func(r *packet) [][]byte { return [][]byte{accept(r, secret, true)} }, true, nil},
		{"wrong MA, right authenticator", func(r *packet) [][]byte {
			// A Message-Authenticator computed with another secret, then
			// the Response Authenticator made right: the BlastRADIUS shape.
			b := encodeReply(codeAccessAccept, r.id, r.auth, other, nil, false)
			return [][]byte{resign(b, r.auth, secret)}
		}, false, auth.ErrUnavailable},
		{"wrong MA, unsigned allowed", func(r *packet) [][]byte {
			b := encodeReply(codeAccessAccept, r.id, r.auth, other, nil, false)
			return [][]byte{resign(b, r.auth, secret)}
		}, true, auth.ErrUnavailable},
		{"wrong identifier", func(r *packet) [][]byte {
			return [][]byte{encodeReply(codeAccessAccept, r.id+1, r.auth, secret, nil, false)}
		}, false, auth.ErrUnavailable},
		{"request echoed back", func(r *packet) [][]byte {
			b, _ := encodeRequest(r.id, r.auth, secret, nil, false)
			return [][]byte{b}
		}, false, auth.ErrUnavailable},
		{"forged accept, then a real reject", func(r *packet) [][]byte {
			return [][]byte{accept(r, other, false), encodeReply(codeAccessReject, r.id, r.auth, secret, nil, false)}
		}, false, auth.ErrInvalidCredentials},
		{"garbage, then a real accept", func(r *packet) [][]byte {
			return [][]byte{[]byte("\x02\x00\x00"), bytes.Repeat([]byte{0xff}, 100), accept(r, secret, false)}
		}, false, nil},
		{"challenge", func(r *packet) [][]byte {
			return [][]byte{encodeReply(codeAccessChallenge, r.id, r.auth, secret, []attr{{24, []byte("state")}}, false)}
		}, false, ErrChallenge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := responder(t, tc.answer)
			v := newVerifier(t, Config{Servers: []string{addr}, Secret: testSecret, Timeout: 300 * time.Millisecond, Tries: 1, AllowUnsignedReplies: tc.unsigned})
			u, err := v.VerifyPassword(t.Context(), "alice", alicePassword)
			switch {
			case tc.want == nil && err != nil:
				t.Fatalf("err %v", err)
			case tc.want != nil && (u != nil || !errors.Is(err, tc.want)):
				t.Fatalf("got %v, %v; want %v", u, err, tc.want)
			}
			if errors.Is(tc.want, ErrChallenge) && !errors.Is(err, auth.ErrInvalidCredentials) {
				t.Fatalf("a challenge must also be ErrInvalidCredentials: %v", err)
			}
		})
	}
}

// resign recomputes a reply's Response Authenticator with secret, leaving
// its Message-Authenticator as it is.
func resign(b []byte, ra [16]byte, secret []byte) []byte {
	p, _ := decode(b)
	return encodeResponseAuth(b, p, ra, secret)
}

// TestRequestOnTheWire: the request's first attribute is a valid
// Message-Authenticator, the password is hidden, and it round-trips.
func TestRequestOnTheWire(t *testing.T) {
	got := make(chan []byte, 1)
	c := listenUDP(t)
	go func() {
		buf := make([]byte, maxPacketLen)
		n, _, err := c.ReadFrom(buf)
		if err == nil {
			got <- append([]byte(nil), buf[:n]...)
		}
	}()
	v := newVerifier(t, Config{Servers: []string{c.LocalAddr().String()}, Secret: testSecret, Timeout: 100 * time.Millisecond, Tries: 1})
	v.VerifyPassword(t.Context(), "alice", alicePassword)
	raw := <-got
	p, err := decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if p.code != codeAccessRequest || len(p.attrs) < 3 || p.attrs[0].typ != attrMessageAuthenticator {
		t.Fatalf("request %+v: want Message-Authenticator first", p)
	}
	// Check the MA as a server would: HMAC over the packet, value zeroed.
	zeroed := append([]byte(nil), raw...)
	clear(zeroed[headerLen+2 : headerLen+2+maLen])
	if !bytes.Equal(hmacMD5([]byte(testSecret), zeroed), p.attrs[0].value) {
		t.Fatal("wrong Message-Authenticator")
	}
	hidden, _ := p.get(attrUserPassword)
	if bytes.Contains(raw, []byte(alicePassword[:8])) || len(hidden) != 32 {
		t.Fatalf("password not hidden: %x", hidden)
	}
	if plain := unhidePassword(hidden, []byte(testSecret), p.auth); !strings.HasPrefix(string(plain), alicePassword) {
		t.Fatalf("unhidden %q", plain)
	}
	if name, _ := p.get(attrUserName); string(name) != "alice" {
		t.Fatalf("User-Name %q", name)
	}
}

func TestNew(t *testing.T) {
	for _, cfg := range []Config{
		{Secret: "x"},
		{Servers: []string{"127.0.0.1:1812"}},
		{Servers: []string{"no-port"}, Secret: "x"},
		{Servers: []string{"127.0.0.1:1812"}, Secret: "x", NASIdentifier: strings.Repeat("n", 300)},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
	v := newVerifier(t, Config{Servers: []string{"127.0.0.1:9"}, Secret: "x"})
	for _, pw := range []string{"", strings.Repeat("p", maxPasswordLen+1)} {
		if _, err := v.VerifyPassword(t.Context(), "alice", pw); !errors.Is(err, auth.ErrInvalidCredentials) {
			t.Errorf("password of %d bytes: %v", len(pw), err)
		}
	}
}

// FuzzDecode: the decoder never panics, never reads past the length
// field, and what it accepts re-encodes to the same bytes.
func FuzzDecode(f *testing.F) {
	var ra [16]byte
	req, _ := encodeRequest(7, ra, []byte(testSecret), []attr{{attrUserName, []byte("alice")}}, false)
	f.Add(req)
	f.Add(encodeReply(codeAccessAccept, 7, ra, []byte(testSecret), nil, false))
	f.Add([]byte("\x02\x07\x00\x14aaaaaaaaaaaaaaaa"))
	f.Add([]byte("\x02\x07\x00\x16aaaaaaaaaaaaaaaa\x01\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decode(b)
		if err != nil {
			return
		}
		n := int(b[2])<<8 | int(b[3])
		re := []byte{p.code, p.id, b[2], b[3]}
		re = append(re, p.auth[:]...)
		for _, a := range p.attrs {
			re = append(re, a.typ, byte(2+len(a.value)))
			re = append(re, a.value...)
		}
		if !bytes.Equal(re, b[:n]) {
			t.Fatalf("decode(%x) re-encodes to %x", b, re)
		}
		// Verifying a decoded packet never panics either.
		var ra [16]byte
		verifyReply(b, p, ra, []byte(testSecret), false)
	})
}

// TestConformance: the Verifier, with FreeRADIUS checking the passwords
// and a directory saying who the users are, passes the PasswordVerifier
// conformance suite (authtest.RunDirectoryTests): a disabled user, a
// password with a NUL and hostile logins are refused.
func TestConformance(t *testing.T) {
	authtest.RunDirectoryTests(t, func(t *testing.T) authtest.DirectoryFixture {
		users := map[string]string{}
		dir := memory.NewDirectory()
		for i, fu := range authtest.FixtureUsers {
			users[fu.Login] = fu.Password
			u := auth.User{ID: fmt.Sprint("id-", i), Login: fu.Login, DisplayName: fu.DisplayName, Email: fu.Email, Groups: fu.Groups, Disabled: fu.Disabled}
			if err := dir.AddUser(u, ""); err != nil {
				t.Fatal(err)
			}
		}
		s := testenv.RADIUS(t, testenv.RADIUSConfig{Users: users, RequireMessageAuthenticator: true})
		v := newVerifier(t, Config{Servers: []string{s.Addr}, Secret: s.Secret, Directory: dir, AllowUnsignedReplies: true})
		return authtest.DirectoryFixture{Directory: dir, Verifier: v}
	})
}

// TestNULRefusedUnasked: PAP pads User-Password with NULs, which servers
// strip, and FreeRADIUS ends a User-Name at a NUL: "pw\x00" would be
// checked as "pw", "\x00" as an empty password, and "alice\x00junk" as
// alice (the user returned would be "alice\x00junk"). Such a login or
// password is refused without a request, even to a server that accepts
// anything.
func TestNULRefusedUnasked(t *testing.T) {
	var asked atomic.Int32
	addr := responder(t, func(r *packet) [][]byte {
		asked.Add(1)
		return [][]byte{encodeReply(codeAccessAccept, r.id, r.auth, []byte(testSecret), nil, false)}
	})
	v := newVerifier(t, Config{Servers: []string{addr}, Secret: testSecret, Timeout: 300 * time.Millisecond, Tries: 1})
	for _, lp := range [][2]string{{"alice", "\x00"}, {"alice", alicePassword + "\x00"}, {"alice", "a\x00b"}, {"alice\x00junk", alicePassword}} {
		if u, err := v.VerifyPassword(t.Context(), lp[0], lp[1]); !errors.Is(err, auth.ErrInvalidCredentials) {
			t.Errorf("VerifyPassword(%q, %q) = %+v, %v; want ErrInvalidCredentials", lp[0], lp[1], u, err)
		}
	}
	if n := asked.Load(); n != 0 {
		t.Errorf("%d requests sent for logins or passwords with a NUL", n)
	}
	// The responder does answer: the refusals above are the Verifier's own.
	if _, err := v.VerifyPassword(t.Context(), "alice", alicePassword); err != nil {
		t.Fatalf("the responder's accept: %v", err)
	}
}
