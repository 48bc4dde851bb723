package safetext

import (
	"strings"
	"testing"
	"unicode/utf8"
	"unsafe"
)

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"alice":             "alice",
		"zoë o'brien":       "zoë o'brien",
		"a\nfake=line":      `a\nfake=line`,
		"\x1b[31mred":       `\x1b[31mred`,
		"bad\xffutf8":       `bad\xffutf8`,
		"tab\there":         `tab\there`,
		"evil\u202egpj.exe": `evil\u202egpj.exe`, // right-to-left override
		"zero\u200bwidth":   `zero\u200bwidth`,
		"":                  "",
	} {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly", 7, "exactly"},
		{"abcdef", 3, "abc"},
		{"ééé", 3, "é"}, // never cuts a rune in half
		{"ééé", 0, ""},
	} {
		got := Truncate(tc.in, tc.n)
		if got != tc.want || !utf8.ValidString(got) {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

// TestTruncateCopiesACut: a cut string shares no memory with the input (a
// slice of a 1 MiB header kept in a record would keep the whole header);
// an uncut one is the input itself.
func TestTruncateCopiesACut(t *testing.T) {
	long := strings.Repeat("x", 1000)
	if got := Truncate(long, 10); unsafe.StringData(got) == unsafe.StringData(long) {
		t.Error("Truncate(long, 10) is a slice of long, not a copy")
	}
	if got := Truncate(long, 1000); unsafe.StringData(got) != unsafe.StringData(long) {
		t.Error("Truncate(s, len(s)) copied s")
	}
}
