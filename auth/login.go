package auth

import (
	"errors"
	"strings"

	"golang.org/x/text/secure/precis"
	"golang.org/x/text/unicode/norm"
)

// loginProfile is PRECIS UsernameCaseMapped (RFC 8265) without the Bidi
// Rule: golang.org/x/text applies that rule to every non-ASCII string,
// which would refuse left-to-right logins such as "zoë*" or "jürgen.",
// while RFC 8265 needs it only for strings with right-to-left characters.
var loginProfile = precis.NewIdentifier(precis.FoldWidth, precis.LowerCase(), precis.Norm(norm.NFC))

// ErrInvalidLogin is returned by [CanonicalLogin] for a login that no
// account can have: empty, too long, or holding characters the PRECIS
// IdentifierClass (RFC 8264) disallows, such as controls, symbols with a
// compatibility form ("ſ" U+017F, "ﬁ") or unassigned code points. It wraps
// [ErrInvalidCredentials].
var ErrInvalidLogin = errors.Join(errors.New("auth: invalid login"), ErrInvalidCredentials)

// CanonicalLogin returns the one spelling of a login that the Manager, the
// throttle and every directory use to compare logins, so that case and
// width variants ("sam", "SAM", fullwidth "ｓａｍ") name the same account and
// share one throttle count, and variants that a directory might fold
// differently ("ſam") name none. It is the PRECIS UsernameCaseMapped
// profile (RFC 8265: width mapping, lower case, NFC, IdentifierClass; the
// Bidi Rule is not applied),
// applied to each space-separated part, as RFC 8265 section 3.5 allows, so
// that directory logins with single inner spaces keep working.
//
// Printable ASCII, the common case, takes a fast path that allocates only
// when it has upper-case letters.
func CanonicalLogin(login string) (string, error) {
	if login == "" || len(login) > maxLoginLen {
		return "", ErrInvalidLogin
	}
	ascii, lower := true, true
	for i := 0; i < len(login); i++ {
		switch b := login[i]; {
		case b < 0x21 || b > 0x7e:
			ascii = false
		case 'A' <= b && b <= 'Z':
			lower = false
		}
	}
	switch {
	case ascii && lower:
		return login, nil
	case ascii:
		return strings.ToLower(login), nil
	}
	var b strings.Builder
	for i, part := range strings.Split(login, " ") {
		s, err := loginProfile.String(part)
		if err != nil || s == "" {
			return "", ErrInvalidLogin
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s)
	}
	if b.Len() > maxLoginLen {
		return "", ErrInvalidLogin
	}
	return b.String(), nil
}

// SameLogin reports whether a and b are spellings of one login (see
// [CanonicalLogin]); an invalid login is the same as none.
func SameLogin(a, b string) bool {
	ca, err := CanonicalLogin(a)
	if err != nil {
		return false
	}
	cb, err := CanonicalLogin(b)
	return err == nil && ca == cb
}
