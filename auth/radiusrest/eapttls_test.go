package radiusrest_test

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// A minimal EAP-TTLS/PAP device behind a NAS (RFC 5281, over RADIUS as in
// RFC 3579), for what eapol_test cannot do: send attributes of the
// device's own choosing inside the tunnel.

// RADIUS codes and attribute types used here.
const (
	radiusAccessRequest   = 1
	radiusAccessAccept    = 2
	radiusAccessReject    = 3
	radiusAccessChallenge = 11

	attrUserName             = 1
	attrUserPassword         = 2
	attrNASIPAddress         = 4
	attrState                = 24
	attrCallingStationID     = 31
	attrNASIdentifier        = 32
	attrEAPMessage           = 79
	attrMessageAuthenticator = 80
	attrNASIPv6Address       = 95
)

// radiusAttr is a RADIUS attribute, or (inside the tunnel) the Diameter AVP
// with the same code.
type radiusAttr struct {
	typ   byte
	value []byte
}

// eapTTLS runs one EAP-TTLS exchange with the RADIUS server at addr (with
// shared secret, server certificate signed by the CA in caFile): outer are
// the NAS's attributes on every Access-Request, inner the AVPs the device
// sends in the tunnel (User-Name and User-Password for PAP, and whatever
// else it likes). It returns the final RADIUS code: radiusAccessAccept or
// radiusAccessReject.
func eapTTLS(addr, secret, caFile string, outer, inner []radiusAttr) (byte, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return 0, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return 0, errors.New("no CA certificate in " + caFile)
	}
	udp, err := net.Dial("udp", addr)
	if err != nil {
		return 0, err
	}
	defer udp.Close()
	c := &ttlsConn{Conn: udp, secret: []byte(secret), outer: outer}
	// EAP-Response/Identity (the anonymous outer identity), answered by
	// EAP-TTLS Start.
	if err := c.send(eapResponse(0, eapTypeIdentity, []byte("anonymous"))); err != nil {
		return 0, err
	}
	if req := c.eap; c.code != radiusAccessChallenge || len(req) < 6 || req[4] != eapTypeTTLS || req[5]&ttlsStart == 0 {
		return 0, fmt.Errorf("no EAP-TTLS start: RADIUS code %d, EAP %x", c.code, req)
	}
	tc := tls.Client(c, &tls.Config{RootCAs: roots, ServerName: "localhost", MaxVersion: tls.VersionTLS12})
	if err := tc.Handshake(); err != nil {
		return c.code, fmt.Errorf("TLS handshake (RADIUS code %d): %w", c.code, err)
	}
	var avps []byte
	for _, a := range inner {
		avps = appendAVP(avps, a)
	}
	if _, err := tc.Write(avps); err != nil { // buffered by c until the exchange
		return 0, err
	}
	if err := c.exchange(); err != nil {
		return 0, err
	}
	if c.code != radiusAccessAccept && c.code != radiusAccessReject {
		return 0, fmt.Errorf("after the inner attributes: RADIUS code %d", c.code)
	}
	return c.code, nil
}

// EAP types, and the EAP-TTLS flags (RFC 5281 section 9.1).
const (
	eapTypeIdentity = 1
	eapTypeTTLS     = 21
	ttlsLength      = 0x80
	ttlsMore        = 0x40
	ttlsStart       = 0x20
)

// ttlsConn is the device's side of the tunnel as a net.Conn for
// crypto/tls: Write keeps TLS records until the client reads, then Read
// sends them in one EAP-TTLS response and returns the server's records
// (reassembled from fragments) of the Access-Challenge.
type ttlsConn struct {
	net.Conn // the UDP socket to the RADIUS server
	secret   []byte
	outer    []radiusAttr
	id       byte   // the last Access-Request's identifier
	state    []byte // the State to echo
	code     byte   // the last reply's code
	eap      []byte // the last reply's EAP packet
	out, in  []byte // TLS records to send, and received but not read
}

func (c *ttlsConn) Write(b []byte) (int, error) {
	c.out = append(c.out, b...)
	return len(b), nil
}

func (c *ttlsConn) Read(b []byte) (int, error) {
	if len(c.in) == 0 {
		if err := c.exchange(); err != nil {
			return 0, err
		}
		if c.code != radiusAccessChallenge {
			return 0, fmt.Errorf("RADIUS code %d in the handshake", c.code)
		}
	}
	n := copy(b, c.in)
	c.in = c.in[n:]
	return n, nil
}

// exchange sends the pending TLS records and reads the server's answer,
// acknowledging its fragments.
func (c *ttlsConn) exchange() error {
	data := []byte{0} // flags: no length, no more fragments, version 0
	if len(c.out) > 0 {
		data = binary.BigEndian.AppendUint32([]byte{ttlsLength}, uint32(len(c.out)))
		data = append(data, c.out...)
		c.out = nil
	}
	for {
		if err := c.send(eapResponse(c.eap[1], eapTypeTTLS, data)); err != nil {
			return err
		}
		if c.code != radiusAccessChallenge {
			return nil
		}
		req := c.eap
		if len(req) < 6 || req[4] != eapTypeTTLS {
			return fmt.Errorf("not an EAP-TTLS request: %x", req)
		}
		flags, payload := req[5], req[6:]
		if flags&ttlsLength != 0 {
			if len(payload) < 4 {
				return fmt.Errorf("short EAP-TTLS request: %x", req)
			}
			payload = payload[4:]
		}
		c.in = append(c.in, payload...)
		if flags&ttlsMore == 0 {
			return nil
		}
		data = []byte{0} // acknowledge the fragment
	}
}

// send sends eap in an Access-Request with the NAS's attributes and reads
// the reply's code, EAP packet and State.
func (c *ttlsConn) send(eap []byte) error {
	c.id++
	b := make([]byte, 20, 4096)
	b[0], b[1] = radiusAccessRequest, c.id
	rand.Read(b[4:20])
	// The Message-Authenticator first (RFC 3579, the BlastRADIUS
	// mitigation), zero until the packet is complete.
	attrs := append([]radiusAttr{{attrMessageAuthenticator, make([]byte, 16)}}, c.outer...)
	for len(eap) > 0 {
		n := min(253, len(eap))
		attrs = append(attrs, radiusAttr{attrEAPMessage, eap[:n]})
		eap = eap[n:]
	}
	if c.state != nil {
		attrs = append(attrs, radiusAttr{attrState, c.state})
	}
	for _, a := range attrs {
		b = append(b, a.typ, byte(2+len(a.value)))
		b = append(b, a.value...)
	}
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)))
	m := hmac.New(md5.New, c.secret)
	m.Write(b)
	copy(b[22:38], m.Sum(nil))
	if _, err := c.Conn.Write(b); err != nil {
		return err
	}
	c.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, err := c.Conn.Read(buf)
	if err != nil {
		return fmt.Errorf("RADIUS reply: %w", err)
	}
	// From the server of this test: its authenticators are not checked.
	if n < 20 || buf[1] != c.id || int(binary.BigEndian.Uint16(buf[2:4])) != n {
		return fmt.Errorf("malformed RADIUS reply %x", buf[:n])
	}
	c.code, c.eap, c.state = buf[0], nil, nil
	for rest := buf[20:n]; len(rest) > 0; rest = rest[rest[1]:] {
		if len(rest) < 2 || rest[1] < 2 || int(rest[1]) > len(rest) {
			return fmt.Errorf("malformed RADIUS reply %x", buf[:n])
		}
		switch rest[0] {
		case attrEAPMessage:
			c.eap = append(c.eap, rest[2:rest[1]]...)
		case attrState:
			c.state = append([]byte(nil), rest[2:rest[1]]...)
		}
	}
	if c.code == radiusAccessChallenge && len(c.eap) < 5 {
		return fmt.Errorf("Access-Challenge without an EAP request: %x", c.eap)
	}
	return nil
}

// eapResponse is an EAP-Response to the request with identifier id.
func eapResponse(id, typ byte, data []byte) []byte {
	b := []byte{2, id, 0, 0, typ}
	b = append(b, data...)
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)))
	return b
}

// appendAVP appends a as a Diameter AVP (RFC 5281 section 10.1: code,
// the M flag, a 24-bit length, the value padded to 4 octets).
func appendAVP(b []byte, a radiusAttr) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(a.typ))
	n := 8 + len(a.value)
	b = append(b, 0x40, byte(n>>16), byte(n>>8), byte(n))
	b = append(b, a.value...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}
