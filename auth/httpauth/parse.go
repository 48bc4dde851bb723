package httpauth

import (
	"encoding/base64"
	"errors"
	"strings"
	"unicode/utf8"
)

// MaxAuthorizationLen is the longest Authorization header the middleware
// reads; a longer one is refused (401) before it is decoded. It leaves room
// for a 256-byte username and a 256-byte password in Basic encoding.
const MaxAuthorizationLen = 1024

// maxFieldLen bounds a username, a password or a bearer token, in bytes.
const maxFieldLen = 256

// scheme is an Authorization scheme the middleware reads.
type scheme uint8

const (
	schemeBasic scheme = iota + 1
	schemeBearer
)

// errMalformed is every parse failure; it never says what was wrong, and
// never holds the input.
var errMalformed = errors.New("httpauth: malformed Authorization header")

// parseAuthorization parses an Authorization header value: "Basic" with
// base64 of UTF-8 "user:password" (RFC 7617), or "Bearer" with a token68
// (RFC 6750), the scheme in any case. Empty, over-long or control-character
// fields are errors; for Bearer, username is empty and password is the
// token.
func parseAuthorization(h string) (s scheme, username, password string, err error) {
	if len(h) > MaxAuthorizationLen {
		return 0, "", "", errMalformed
	}
	name, rest, ok := strings.Cut(h, " ")
	if !ok {
		return 0, "", "", errMalformed
	}
	rest = strings.Trim(rest, " ")
	switch {
	case strings.EqualFold(name, "Basic"):
		// Decode refuses every byte outside the alphabet but CR and LF,
		// which it skips; a header cannot hold them, but refuse them rather
		// than rely on that (two vectorized IndexBytes, not a table lookup
		// per byte).
		if strings.IndexByte(rest, '\r') >= 0 || strings.IndexByte(rest, '\n') >= 0 {
			return 0, "", "", errMalformed
		}
		// Decode on the stack and make one string of it: one allocation
		// per request instead of two.
		var buf [MaxAuthorizationLen * 3 / 4]byte
		n, err := base64.StdEncoding.Decode(buf[:], []byte(rest))
		if err != nil {
			return 0, "", "", errMalformed
		}
		username, password, ok = strings.Cut(string(buf[:n]), ":")
		if !ok || !validField(username) || !validField(password) {
			return 0, "", "", errMalformed
		}
		return schemeBasic, username, password, nil
	case strings.EqualFold(name, "Bearer"):
		if !isToken68(rest) || len(rest) > maxFieldLen {
			return 0, "", "", errMalformed
		}
		return schemeBearer, "", rest, nil
	}
	return 0, "", "", errMalformed
}

// validField reports whether a username or password is non-empty, at most
// maxFieldLen bytes, valid UTF-8 and free of control characters (RFC 7617
// section 2 forbids them).
func validField(s string) bool {
	if s == "" || len(s) > maxFieldLen {
		return false
	}
	ascii := true
	for i := range len(s) {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			ascii = false
			break
		}
	}
	if ascii {
		return true // printable ASCII, the common case: no decoding
	}
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return false
		}
	}
	return true
}

// isToken68 reports whether s is a non-empty RFC 7235 token68:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isToken68(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for i := range len(body) {
		c := body[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/') {
			return false
		}
	}
	return true
}
