package httpauth

import (
	"encoding/base64"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseAuthorization(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, tc := range []struct {
		in             string
		s              scheme
		user, password string
	}{
		{"Basic " + b64("alice:secret"), schemeBasic, "alice", "secret"},
		{"basic   " + b64("alice:pa:ss") + " ", schemeBasic, "alice", "pa:ss"},
		{"Basic " + b64("jürgen:pässwörd"), schemeBasic, "jürgen", "pässwörd"},
		{"Bearer aap-abc.DEF_~+/==", schemeBearer, "", "aap-abc.DEF_~+/=="},
		{"BEARER tok", schemeBearer, "", "tok"},
		// Refused:
		{"Basic dXNlcjo=", 0, "", ""}, // "user:"
		{"Basic Og==", 0, "", ""},     // ":"
		{"Basic " + b64(":pw"), 0, "", ""},
		{"Basic " + b64("nocolon"), 0, "", ""},
		{"Basic " + b64("a\x00b:pw"), 0, "", ""},
		{"Basic " + b64("ab:p\tw"), 0, "", ""},
		{"Basic " + b64("ab:p\u0085w"), 0, "", ""},
		{"Basic " + b64("ab:\xff\xfe"), 0, "", ""},
		{"Basic " + b64("ab:"+strings.Repeat("x", maxFieldLen+1)), 0, "", ""},
		{"Basic " + b64(strings.Repeat("x", maxFieldLen+1)+":pw"), 0, "", ""},
		{"Basic " + b64("a:b")[:3] + "\n" + b64("a:b")[3:], 0, "", ""},
		{"Basic " + b64("a:b")[:3] + "\r" + b64("a:b")[3:], 0, "", ""},
		{"Basic " + b64("a:b") + "\r\n", 0, "", ""},
		{"Basic " + b64("alice:pw")[:4] + " " + b64("alice:pw")[4:], 0, "", ""},
		{"Basic !!!!", 0, "", ""},
		{"Basic", 0, "", ""},
		{"Basic ", 0, "", ""},
		{"", 0, "", ""},
		{"Bearer", 0, "", ""},
		{"Bearer ", 0, "", ""},
		{"Bearer ====", 0, "", ""},
		{"Bearer a b", 0, "", ""},
		{"Bearer a=b", 0, "", ""},
		{"Bearer " + strings.Repeat("a", maxFieldLen+1), 0, "", ""},
		{"Digest a", 0, "", ""},
		{"Basic " + strings.Repeat("A", MaxAuthorizationLen), 0, "", ""},
	} {
		s, user, password, err := parseAuthorization(tc.in)
		if s != tc.s || user != tc.user || password != tc.password || (err != nil) != (tc.s == 0) {
			t.Errorf("parseAuthorization(%.40q) = %v, %q, %q, %v; want %v, %q, %q", tc.in, s, user, password, err, tc.s, tc.user, tc.password)
		}
		if err != nil && err != errMalformed {
			t.Errorf("parseAuthorization(%.40q): error %v, want errMalformed", tc.in, err)
		}
	}
}

func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{
		"Basic YWxpY2U6c2VjcmV0", "Basic dXNlcjo=", "Basic Og==", "Bearer aap-2345-6789", "basic  YTpi ",
		"Basic YTpi\n", "Bearer ==", "Digest x", "Basic ////", "Basic w4A6w4A=",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, user, password, err := parseAuthorization(in)
		if err != nil {
			if s != 0 || user != "" || password != "" {
				t.Fatalf("error %v with results %v %q %q", err, s, user, password)
			}
			return
		}
		if len(in) > MaxAuthorizationLen {
			t.Fatalf("accepted %d bytes", len(in))
		}
		switch s {
		case schemeBasic:
			if !validField(user) || !validField(password) || strings.Contains(user, ":") {
				t.Fatalf("accepted username %q password %q", user, password)
			}
			// Re-encoding what was parsed parses to the same.
			s2, u2, p2, err := parseAuthorization("Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password)))
			if err != nil || s2 != schemeBasic || u2 != user || p2 != password {
				t.Fatalf("round trip of %q %q: %v %q %q %v", user, password, s2, u2, p2, err)
			}
		case schemeBearer:
			if user != "" || password == "" || len(password) > maxFieldLen || !isToken68(password) || !utf8.ValidString(password) {
				t.Fatalf("accepted bearer %q", password)
			}
		default:
			t.Fatalf("no error and scheme %v", s)
		}
	})
}
