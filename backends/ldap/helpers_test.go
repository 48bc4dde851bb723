package ldap_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	goldap "github.com/go-ldap/ldap/v3"

	"github.com/appauth/appauth/backends/ldap"
	"github.com/appauth/appauth/internal/testenv"
)

// config is the OpenLDAP preset for the test server, with the service
// account, on the plain URL (no TLS: the recording proxy must read it).
func config(s *testenv.LDAPServer, urls ...string) ldap.Config {
	if len(urls) == 0 {
		urls = []string{s.URL}
	}
	c := ldap.OpenLDAP(urls, s.BaseDN)
	c.BindDN, c.BindPassword = s.BindDN, s.BindPassword
	c.CAFile = s.CAFile
	return c
}

func open(t testing.TB, c ldap.Config) *ldap.Directory {
	t.Helper()
	d, err := ldap.New(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// proxy sits between the library and slapd and records the LDAP requests
// it forwards: binds (with their DN) and search filters. It parses only the
// message envelope; after a successful StartTLS it forwards bytes unread,
// but notes if the client then sends plaintext LDAP instead of a TLS
// handshake. With refuseStartTLS it answers StartTLS itself with
// "unavailable", as a server without TLS would.
type proxy struct {
	addr           string
	upstream       string
	refuseStartTLS bool
	// stallBinds and stallSearches make the proxy swallow those requests,
	// as a hung server would: the client waits for an answer that never
	// comes. Binds as serviceDN (set before use) still pass.
	stallBinds, stallSearches atomic.Bool
	serviceDN                 string

	mu        sync.Mutex
	conns     int
	binds     []string // DNs
	filters   []string
	startTLS  int
	plaintext int // LDAP messages sent in the clear after StartTLS
}

func newProxy(t testing.TB, upstream string, refuseStartTLS bool) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{addr: l.Addr().String(), upstream: upstream, refuseStartTLS: refuseStartTLS}
	var wg sync.WaitGroup
	done := make(chan struct{})
	var open []net.Conn
	var openMu sync.Mutex
	t.Cleanup(func() {
		close(done)
		l.Close()
		openMu.Lock()
		for _, c := range open {
			c.Close()
		}
		openMu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			openMu.Lock()
			open = append(open, c, up)
			openMu.Unlock()
			p.mu.Lock()
			p.conns++
			p.mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(c, up); c.Close() }()
			go func() { defer wg.Done(); p.forward(c, up); up.Close() }()
		}
	}()
	return p
}

// URL is the proxy's ldap:// URL.
func (p *proxy) URL() string { return "ldap://" + p.addr }

type recorder struct {
	r   io.Reader
	buf bytes.Buffer
}

func (r *recorder) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	r.buf.Write(b[:n])
	return n, err
}

// forward copies client requests to up, recording them.
func (p *proxy) forward(client, up net.Conn) {
	rec := &recorder{r: client}
	for {
		rec.buf.Reset()
		pkt, err := ber.ReadPacket(rec)
		if err != nil {
			return
		}
		raw := bytes.Clone(rec.buf.Bytes())
		if len(pkt.Children) < 2 {
			return
		}
		op := pkt.Children[1]
		switch op.Tag {
		case goldap.ApplicationBindRequest:
			dn := ""
			if len(op.Children) > 1 {
				dn = string(op.Children[1].ByteValue)
			}
			if p.stallBinds.Load() && dn != p.serviceDN {
				continue
			}
			p.mu.Lock()
			p.binds = append(p.binds, dn)
			p.mu.Unlock()
		case goldap.ApplicationSearchRequest:
			if p.stallSearches.Load() {
				continue
			}
			if len(op.Children) > 6 {
				f, err := goldap.DecompileFilter(op.Children[6])
				if err != nil {
					f = "(undecodable: " + err.Error() + ")"
				}
				p.mu.Lock()
				p.filters = append(p.filters, f)
				p.mu.Unlock()
			}
		case goldap.ApplicationExtendedRequest:
			p.mu.Lock()
			p.startTLS++
			p.mu.Unlock()
			if p.refuseStartTLS {
				resp := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAP Response")
				resp.AppendChild(pkt.Children[0])
				ext := ber.Encode(ber.ClassApplication, ber.TypeConstructed, goldap.ApplicationExtendedResponse, nil, "Extended Response")
				ext.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, int64(goldap.LDAPResultUnavailable), "resultCode"))
				ext.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", "matchedDN"))
				ext.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "TLS not available", "diagnosticMessage"))
				resp.AppendChild(ext)
				client.Write(resp.Bytes())
				continue
			}
			if _, err := up.Write(raw); err != nil {
				return
			}
			// From here on the stream should be TLS: a handshake record
			// starts with 0x16; 0x30 would be an LDAP message in the clear.
			var first [1]byte
			if _, err := io.ReadFull(client, first[:]); err != nil {
				return
			}
			if first[0] == 0x30 {
				p.mu.Lock()
				p.plaintext++
				p.mu.Unlock()
			}
			up.Write(first[:])
			io.Copy(up, client)
			return
		}
		if _, err := up.Write(raw); err != nil {
			return
		}
	}
}

func (p *proxy) counts() (conns, binds int, filters []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conns, len(p.binds), append([]string(nil), p.filters...)
}

// userBinds counts binds as anyone but the service account.
func (p *proxy) userBinds(service string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, dn := range p.binds {
		if dn != service {
			n++
		}
	}
	return n
}

// admin returns a connection bound as the root DN, to change entries.
func admin(t testing.TB, s *testenv.LDAPServer) *goldap.Conn {
	t.Helper()
	c, err := goldap.DialURL(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Bind(s.AdminDN, s.AdminPassword); err != nil {
		t.Fatal(err)
	}
	return c
}

// addUser adds a user of this test only (removed at the end) and returns
// its login and DN.
func addUser(t testing.TB, s *testenv.LDAPServer, password string) (login, dn string) {
	t.Helper()
	b := make([]byte, 16) // 128 bits, so that no two tests share a login
	rand.Read(b)
	login = "tmp-" + hex.EncodeToString(b)
	dn = "uid=" + goldap.EscapeDN(login) + ",ou=people," + s.BaseDN
	c := admin(t, s)
	req := goldap.NewAddRequest(dn, nil)
	req.Attribute("objectClass", []string{"inetOrgPerson"})
	req.Attribute("uid", []string{login})
	req.Attribute("cn", []string{"Temporary " + login})
	req.Attribute("sn", []string{"Temporary"})
	req.Attribute("userPassword", []string{password})
	if err := c.Add(req); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c := admin(t, s)
		if err := c.Del(goldap.NewDelRequest(dn, nil)); err != nil && !goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
			t.Errorf("remove %s: %v", dn, err)
		}
	})
	return login, dn
}

// lock locks dn as an administrator does: pwdAccountLockedTime
// 000001010000Z, ppolicy's "locked until an administrator unlocks it".
func lock(t testing.TB, s *testenv.LDAPServer, dn string) {
	t.Helper()
	setLockedTime(t, s, dn, "000001010000Z")
}

// lockOut locks dn as ppolicy does after too many failed binds:
// pwdAccountLockedTime is the time of the lockout.
func lockOut(t testing.TB, s *testenv.LDAPServer, dn string) {
	t.Helper()
	setLockedTime(t, s, dn, time.Now().UTC().Format("20060102150405Z"))
}

// setLockedTime sets pwdAccountLockedTime on dn (the Relax Rules control
// lets the root DN write this operational attribute).
func setLockedTime(t testing.TB, s *testenv.LDAPServer, dn, value string) {
	t.Helper()
	c := admin(t, s)
	req := goldap.NewModifyRequest(dn, []goldap.Control{goldap.NewControlString("1.3.6.1.4.1.4203.666.5.12", true, "")})
	req.Replace("pwdAccountLockedTime", []string{value})
	if err := c.Modify(req); err != nil {
		t.Fatal(err)
	}
}
