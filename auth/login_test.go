package auth_test

import (
	"errors"
	"testing"

	"github.com/appauth/appauth/auth"
)

func TestCanonicalLogin(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"sam", "sam"}, {"SAM", "sam"}, {"Sam", "sam"}, {"ｓａｍ", "sam"}, {"ＳＡＭ", "sam"},
		{"alice@example.com", "alice@example.com"}, {"Jürgen", "jürgen"}, {"JU\u0308RGEN", "jürgen"},
		{"Ann Lee", "ann lee"}, {"Zoë*", "zoë*"}, {"Jürgen.", "jürgen."}, {"\u212Aate", "kate"}, // Kelvin sign: canonically K

	} {
		got, err := auth.CanonicalLogin(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("CanonicalLogin(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "ſam", "ﬁle", "a\x00b", "a  b", " a", "a\tb", string(make([]byte, 300))} {
		if got, err := auth.CanonicalLogin(in); !errors.Is(err, auth.ErrInvalidLogin) || !errors.Is(err, auth.ErrInvalidCredentials) {
			t.Errorf("CanonicalLogin(%q) = %q, %v; want ErrInvalidLogin", in, got, err)
		}
	}
	if !auth.SameLogin("SAM", "ｓａｍ") || auth.SameLogin("ſam", "sam") || auth.SameLogin("", "") {
		t.Error("SameLogin disagrees with CanonicalLogin")
	}
}
