package radius

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/binary"
)

// encodeReply signs a reply to the request with authenticator ra, with a
// Message-Authenticator first unless omitMA: what a server does, for the
// tests' own responders.
func encodeReply(code, id byte, ra [16]byte, secret []byte, attrs []attr, omitMA bool) []byte {
	b, _ := encodeRequest(id, ra, secret, attrs, omitMA) // MA over ra, value zeroed: as RFC 3579 wants for a reply
	b[0] = code
	if !omitMA {
		zeroed := append([]byte(nil), b...)
		clear(zeroed[headerLen+2 : headerLen+2+maLen])
		copy(b[headerLen+2:], hmacMD5(secret, zeroed))
	}
	p, _ := decode(b)
	return encodeResponseAuth(b, p, ra, secret)
}

// encodeResponseAuth sets b's Response Authenticator for the request
// authenticator ra.
func encodeResponseAuth(b []byte, _ *packet, ra [16]byte, secret []byte) []byte {
	n := int(binary.BigEndian.Uint16(b[2:4]))
	h := md5.New()
	h.Write(b[:4])
	h.Write(ra[:])
	h.Write(b[headerLen:n])
	h.Write(secret)
	copy(b[4:20], h.Sum(nil))
	return b
}

func hmacMD5(key, b []byte) []byte {
	m := hmac.New(md5.New, key)
	m.Write(b)
	return m.Sum(nil)
}

// unhidePassword reverses hidePassword, as a server does.
func unhidePassword(hidden, secret []byte, ra [16]byte) []byte {
	out := make([]byte, len(hidden))
	prev := ra[:]
	for i := 0; i+16 <= len(hidden); i += 16 {
		h := md5.New()
		h.Write(secret)
		h.Write(prev)
		sum := h.Sum(nil)
		for j := range 16 {
			out[i+j] = hidden[i+j] ^ sum[j]
		}
		prev = hidden[i : i+16]
	}
	return out
}
