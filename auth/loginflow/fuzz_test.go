package loginflow

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzClientName: whatever a User-Agent holds, the name shown on the grant
// page and given to the app password is valid UTF-8, printable, one line
// and short; and no input but a made token passes validToken.
func FuzzClientName(f *testing.F) {
	for _, s := range []string{"", "DAVx5/4.4.2-ose (2024/10/01; dav4jvm; okhttp/4.12.0) Android/15",
		"a\x00b\r\nc\u202ed", "\xff\xfe", strings.Repeat("é", 200), newToken()} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ua string) {
		name := clientName(ua)
		if !utf8.ValidString(name) || utf8.RuneCountInString(name) > maxClientName+1 {
			t.Fatalf("clientName(%q) = %q", ua, name)
		}
		for _, r := range name {
			if !unicode.IsPrint(r) && r != ' ' {
				t.Fatalf("clientName(%q) holds %U", ua, r)
			}
		}
		if validToken(ua) && len(ua) != 43 {
			t.Fatalf("validToken(%q) for a string of %d bytes", ua, len(ua))
		}
	})
}
