// Package safetext makes client-supplied text safe to log and to store.
package safetext

import (
	"strconv"
	"strings"
	"unicode"
)

// Escape quotes s when it holds control characters, format characters
// (such as U+202E, which reverses the text after it, or zero-width ones) or
// invalid UTF-8, so that a username or user agent cannot forge or disguise
// log lines and table rows, whatever slog handler is used. Other text is
// returned as is, without allocating.
func Escape(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool {
		return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == unicode.ReplacementChar
	}) {
		return s
	}
	q := strconv.QuoteToASCII(s)
	return q[1 : len(q)-1]
}

// Truncate cuts s to at most n bytes on a rune boundary. A cut s is a
// copy: what is kept of a huge header must not keep the header.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return strings.Clone(s[:n])
}
