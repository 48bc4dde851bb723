package radius

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
)

// The subset of RFC 2865 (RADIUS) and RFC 3579 (Message-Authenticator)
// that a PAP client needs.

// Packet codes.
const (
	codeAccessRequest   = 1
	codeAccessAccept    = 2
	codeAccessReject    = 3
	codeAccessChallenge = 11
)

// Attribute types.
const (
	attrUserName             = 1
	attrUserPassword         = 2
	attrNASIdentifier        = 32
	attrMessageAuthenticator = 80
)

// Sizes.
const (
	headerLen      = 20   // code, identifier, length, authenticator
	maxPacketLen   = 4096 // RFC 2865 section 3
	maxAttrLen     = 253  // a value's longest
	maxPasswordLen = 128  // User-Password, RFC 2865 section 5.2
	maLen          = 16   // Message-Authenticator's value
)

// attr is one attribute.
type attr struct {
	typ   byte
	value []byte
}

// packet is a decoded RADIUS packet; attrs alias the buffer it came from.
type packet struct {
	code, id byte
	auth     [16]byte
	attrs    []attr
}

// get returns the value of the first attribute of type typ.
func (p *packet) get(typ byte) ([]byte, bool) {
	for _, a := range p.attrs {
		if a.typ == typ {
			return a.value, true
		}
	}
	return nil, false
}

// decode parses b as a RADIUS packet: a header whose length lies between
// 20 and 4096 and within b (octets past it are padding, RFC 2865 section
// 3), then attributes of at least two octets that end exactly at that
// length. It never keeps more than the bytes it was given.
func decode(b []byte) (*packet, error) {
	if len(b) < headerLen {
		return nil, fmt.Errorf("radius: packet of %d bytes, shorter than a header", len(b))
	}
	n := int(binary.BigEndian.Uint16(b[2:4]))
	if n < headerLen || n > maxPacketLen || n > len(b) {
		return nil, fmt.Errorf("radius: length field %d for %d bytes", n, len(b))
	}
	p := &packet{code: b[0], id: b[1]}
	copy(p.auth[:], b[4:20])
	for rest := b[headerLen:n]; len(rest) > 0; {
		if len(rest) < 2 || rest[1] < 2 || int(rest[1]) > len(rest) {
			return nil, errors.New("radius: malformed attribute")
		}
		p.attrs = append(p.attrs, attr{typ: rest[0], value: rest[2:rest[1]]})
		rest = rest[rest[1]:]
	}
	return p, nil
}

// encodeRequest returns an Access-Request with id, the request
// authenticator ra, and a Message-Authenticator as its first attribute
// (RFC 3579 section 3.2; first, so that a chosen-prefix collision on the
// MD5 of the reply cannot be made to cover it: the BlastRADIUS
// mitigation), followed by attrs. With omitMA the Message-Authenticator is
// left out (for tests of servers that require it).
func encodeRequest(id byte, ra [16]byte, secret []byte, attrs []attr, omitMA bool) ([]byte, error) {
	b := make([]byte, headerLen, 256)
	b[0], b[1] = codeAccessRequest, id
	copy(b[4:20], ra[:])
	if !omitMA {
		b = append(b, attrMessageAuthenticator, 2+maLen)
		b = append(b, make([]byte, maLen)...)
	}
	for _, a := range attrs {
		if len(a.value) > maxAttrLen {
			return nil, fmt.Errorf("radius: attribute %d of %d bytes", a.typ, len(a.value))
		}
		b = append(b, a.typ, byte(2+len(a.value)))
		b = append(b, a.value...)
	}
	if len(b) > maxPacketLen {
		return nil, errors.New("radius: request too long")
	}
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)))
	if !omitMA {
		// The HMAC of the whole packet with the value zeroed.
		m := hmac.New(md5.New, secret)
		m.Write(b)
		copy(b[headerLen+2:headerLen+2+maLen], m.Sum(nil))
	}
	return b, nil
}

// hidePassword is the User-Password encryption of RFC 2865 section 5.2:
// the password padded with zeros to a multiple of 16, each block XORed
// with MD5(secret + previous block), the first with MD5(secret + ra).
func hidePassword(password, secret []byte, ra [16]byte) ([]byte, error) {
	if len(password) == 0 || len(password) > maxPasswordLen {
		return nil, fmt.Errorf("radius: a User-Password has 1 to %d bytes", maxPasswordLen)
	}
	out := make([]byte, (len(password)+15)/16*16)
	copy(out, password)
	prev := ra[:]
	for i := 0; i < len(out); i += 16 {
		h := md5.New()
		h.Write(secret)
		h.Write(prev)
		sum := h.Sum(nil)
		for j := range 16 {
			out[i+j] ^= sum[j]
		}
		prev = out[i : i+16]
	}
	return out, nil
}

// errUnsigned is a reply without the Message-Authenticator that was
// required.
var errUnsigned = errors.New("radius: reply without Message-Authenticator (Config.AllowUnsignedReplies allows it)")

// verifyReply checks a reply raw (decoded as p) to the request with
// authenticator ra: its Response Authenticator (RFC 2865 section 3) and
// its Message-Authenticator (RFC 3579 section 3.2), which must be present
// unless allowUnsigned and is checked whenever it is.
func verifyReply(raw []byte, p *packet, ra [16]byte, secret []byte, allowUnsigned bool) error {
	n := int(binary.BigEndian.Uint16(raw[2:4]))
	raw = raw[:n]
	// ResponseAuth = MD5(Code+ID+Length+RequestAuth+Attributes+Secret).
	h := md5.New()
	h.Write(raw[:4])
	h.Write(ra[:])
	h.Write(raw[headerLen:])
	h.Write(secret)
	if subtle.ConstantTimeCompare(h.Sum(nil), raw[4:20]) != 1 {
		return errors.New("radius: reply with a wrong Response Authenticator (forged, or another shared secret)")
	}
	ma, off, count := []byte(nil), -1, 0
	pos := headerLen
	for _, a := range p.attrs {
		if a.typ == attrMessageAuthenticator {
			ma, off = a.value, pos+2
			count++
		}
		pos += 2 + len(a.value)
	}
	switch {
	case count == 0 && allowUnsigned:
		return nil
	case count == 0:
		return errUnsigned
	case count > 1 || len(ma) != maLen:
		return errors.New("radius: reply with a malformed Message-Authenticator")
	}
	// The HMAC of the reply with the request's authenticator in place of
	// its own and the value zeroed.
	buf := make([]byte, n)
	copy(buf, raw)
	copy(buf[4:20], ra[:])
	clear(buf[off : off+maLen])
	m := hmac.New(md5.New, secret)
	m.Write(buf)
	if !hmac.Equal(m.Sum(nil), ma) {
		return errors.New("radius: reply with a wrong Message-Authenticator")
	}
	return nil
}
