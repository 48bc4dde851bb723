package htpasswd

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"errors"
	"hash"
	"strconv"
	"strings"
)

// SHA-crypt ($5$ SHA-256, $6$ SHA-512) as specified by Ulrich Drepper in
// "Unix crypt using SHA-256 and SHA-512" (https://www.akkadia.org/drepper/SHA-crypt.txt),
// the scheme of glibc's crypt(3), `openssl passwd -5/-6` and `mkpasswd`.
// golang.org/x/crypto has no SHA-crypt, and no maintained module for it was
// available to us, so it is written here (about 150 lines of the spec's
// steps) and checked against the spec's and glibc's test vectors
// (TestShaCryptVectors).

const (
	shaCryptDefaultRounds = 5000
	shaCryptMinRounds     = 1000
	shaCryptMaxRounds     = 999_999_999
	shaCryptMaxSalt       = 16
	// shaCryptMaxParsedRounds bounds the work one verify may cost: a hash
	// with more rounds than this is refused when the file is read, so a
	// crafted entry cannot stall sign-ins. (glibc allows up to 999,999,999.)
	shaCryptMaxParsedRounds = 10_000_000
)

const cryptAlphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// shaCryptHash is a parsed $5$ or $6$ hash.
type shaCryptHash struct {
	variant      byte // '5' or '6'
	rounds       int
	roundsCustom bool // "rounds=N$" was given, so it is part of the output
	salt         string
	encoded      string // the full hash as written
}

var errShaCryptFormat = errors.New("malformed SHA-crypt hash")

// parseShaCrypt parses "$5$[rounds=N$]salt$hash" or the $6$ equivalent.
func parseShaCrypt(s string) (*shaCryptHash, error) {
	if len(s) < 3 || s[0] != '$' || (s[1] != '5' && s[1] != '6') || s[2] != '$' {
		return nil, errShaCryptFormat
	}
	h := &shaCryptHash{variant: s[1], rounds: shaCryptDefaultRounds, encoded: s}
	rest := s[3:]
	if r, ok := strings.CutPrefix(rest, "rounds="); ok {
		n, after, found := strings.Cut(r, "$")
		if !found || n == "" || len(n) > 9 || n[0] == '0' {
			return nil, errShaCryptFormat
		}
		v, err := strconv.Atoi(n)
		if err != nil || v < 0 {
			return nil, errShaCryptFormat
		}
		if v > shaCryptMaxParsedRounds {
			return nil, errors.New("SHA-crypt rounds above 10,000,000 are refused")
		}
		h.rounds = min(max(v, shaCryptMinRounds), shaCryptMaxRounds)
		h.roundsCustom = true
		rest = after
	}
	salt, sum, found := strings.Cut(rest, "$")
	if !found || len(salt) > shaCryptMaxSalt || strings.Contains(sum, "$") {
		return nil, errShaCryptFormat
	}
	want := 43
	if h.variant == '6' {
		want = 86
	}
	if len(sum) != want || !onlyCryptAlphabet(sum) {
		return nil, errShaCryptFormat
	}
	h.salt = salt
	return h, nil
}

func onlyCryptAlphabet(s string) bool {
	for i := range len(s) {
		if strings.IndexByte(cryptAlphabet, s[i]) < 0 {
			return false
		}
	}
	return true
}

// verify reports whether password hashes to h, in constant time in the
// comparison.
func (h *shaCryptHash) verify(password []byte) bool {
	got := shaCrypt(h.variant, password, []byte(h.salt), h.rounds, h.roundsCustom)
	return subtle.ConstantTimeCompare([]byte(got), []byte(h.encoded)) == 1
}

// Byte order of the final encoding: groups of three digest bytes, each
// written as four characters (the last group as fewer).
var (
	sha256Order = [][3]int{{0, 10, 20}, {21, 1, 11}, {12, 22, 2}, {3, 13, 23}, {24, 4, 14}, {15, 25, 5}, {6, 16, 26}, {27, 7, 17}, {18, 28, 8}, {9, 19, 29}}
	sha512Order = [][3]int{{0, 21, 42}, {22, 43, 1}, {44, 2, 23}, {3, 24, 45}, {25, 46, 4}, {47, 5, 26}, {6, 27, 48}, {28, 49, 7}, {50, 8, 29}, {9, 30, 51}, {31, 52, 10}, {53, 11, 32}, {12, 33, 54}, {34, 55, 13}, {56, 14, 35}, {15, 36, 57}, {37, 58, 16}, {59, 17, 38}, {18, 39, 60}, {40, 61, 19}, {62, 20, 41}}
)

// shaCrypt computes the SHA-crypt string of password with salt (at most 16
// bytes are used) and rounds (clamped to the spec's range).
func shaCrypt(variant byte, password, salt []byte, rounds int, roundsCustom bool) string {
	var newHash func() hash.Hash
	switch variant {
	case '5':
		newHash = sha256.New
	case '6':
		newHash = sha512.New
	default:
		panic("htpasswd: unknown SHA-crypt variant")
	}
	if len(salt) > shaCryptMaxSalt {
		salt = salt[:shaCryptMaxSalt]
	}
	rounds = min(max(rounds, shaCryptMinRounds), shaCryptMaxRounds)

	// Steps 4-8: digest B = H(P S P).
	b := newHash()
	b.Write(password)
	b.Write(salt)
	b.Write(password)
	sumB := b.Sum(nil)
	size := len(sumB)

	// Steps 1-3, 9-12: digest A.
	a := newHash()
	a.Write(password)
	a.Write(salt)
	n := len(password)
	for ; n > size; n -= size {
		a.Write(sumB)
	}
	a.Write(sumB[:n])
	for n = len(password); n > 0; n >>= 1 {
		if n&1 != 0 {
			a.Write(sumB)
		} else {
			a.Write(password)
		}
	}
	sumA := a.Sum(nil)

	// Steps 13-16: sequence P from digest DP.
	dp := newHash()
	for range len(password) {
		dp.Write(password)
	}
	sumDP := dp.Sum(nil)
	p := make([]byte, 0, len(password))
	for n = len(password); n > size; n -= size {
		p = append(p, sumDP...)
	}
	p = append(p, sumDP[:n]...)

	// Steps 17-20: sequence S from digest DS.
	ds := newHash()
	for range 16 + int(sumA[0]) {
		ds.Write(salt)
	}
	sumDS := ds.Sum(nil)
	s := make([]byte, 0, len(salt))
	for n = len(salt); n > size; n -= size {
		s = append(s, sumDS...)
	}
	s = append(s, sumDS[:n]...)

	// Step 21: the rounds.
	c := newHash()
	sum := sumA
	for i := range rounds {
		c.Reset()
		if i&1 != 0 {
			c.Write(p)
		} else {
			c.Write(sum)
		}
		if i%3 != 0 {
			c.Write(s)
		}
		if i%7 != 0 {
			c.Write(p)
		}
		if i&1 != 0 {
			c.Write(sum)
		} else {
			c.Write(p)
		}
		sum = c.Sum(sum[:0])
	}

	// Step 22: the output string.
	var out strings.Builder
	out.WriteString("$")
	out.WriteByte(variant)
	out.WriteString("$")
	if roundsCustom {
		out.WriteString("rounds=")
		out.WriteString(strconv.Itoa(rounds))
		out.WriteString("$")
	}
	out.Write(salt)
	out.WriteString("$")
	enc := func(b2, b1, b0 byte, n int) {
		w := uint(b2)<<16 | uint(b1)<<8 | uint(b0)
		for range n {
			out.WriteByte(cryptAlphabet[w&0x3f])
			w >>= 6
		}
	}
	if variant == '5' {
		for _, g := range sha256Order {
			enc(sum[g[0]], sum[g[1]], sum[g[2]], 4)
		}
		enc(0, sum[31], sum[30], 3)
	} else {
		for _, g := range sha512Order {
			enc(sum[g[0]], sum[g[1]], sum[g[2]], 4)
		}
		enc(0, 0, sum[63], 2)
	}
	return out.String()
}
