// Package token encodes and checks app-password and session secrets.
//
// A secret is a lowercase prefix naming its kind ("aap", "aas"), then 32 body
// characters from a 31-letter alphabet without look-alikes (no 0/o, 1/l/i):
// 31 random characters (153 bits from crypto/rand) and a check character. The
// check character makes sum((i mod 30 + 1) * value(body[i])) divisible by 31.
// Because 31 is prime, every weight is nonzero mod 31 and adjacent weights
// differ, so every single-character typo and every swap of two neighbours is
// caught before any store is asked. Secrets are shown grouped for reading,
// aap-xxxxxxxx-xxxxxxxx-xxxxxxxx-xxxxxxxx, and accepted in any case with any
// dashes, spaces, tabs or underscores; their canonical form (prefix and body,
// lowercase, no separators) is what gets hashed.
package token

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
)

// MaxInputLen bounds the input [Codec.AppendNormalized] and [Codec.Looks]
// accept; longer input is refused before any work.
const MaxInputLen = 256

// BodyLen is the number of characters after the prefix in the canonical form,
// the check character included.
const BodyLen = 32

// Errors returned by [Codec.AppendNormalized]. The errors it returns wrap one of
// them and never contain the input.
var (
	// ErrMalformed reports input that cannot be a secret of the codec: empty,
	// too long, wrong prefix, wrong length or a character outside the alphabet.
	ErrMalformed = errors.New("token: malformed")
	// ErrChecksum reports input shaped like a secret whose check character does
	// not match: a typo.
	ErrChecksum = errors.New("token: checksum mismatch")
)

var (
	errEmpty   = fmt.Errorf("%w: empty", ErrMalformed)
	errTooLong = fmt.Errorf("%w: too long", ErrMalformed)
	errPrefix  = fmt.Errorf("%w: wrong prefix", ErrMalformed)
	errChar    = fmt.Errorf("%w: character outside the alphabet", ErrMalformed)
	errShort   = fmt.Errorf("%w: too few characters", ErrMalformed)
	errLong    = fmt.Errorf("%w: too many characters", ErrMalformed)
)

const (
	alphabet = "23456789abcdefghjkmnpqrstuvwxyz"
	base     = len(alphabet) // 31, prime

	// randLen is the number of random body characters; the last is the check.
	randLen = BodyLen - 1
	// checkInv is the inverse of the check character's weight
	// ((BodyLen-1)%30 + 1 = 2) modulo base: 2*16 = 32 ≡ 1.
	checkInv = 16

	groupLen = 8
	hintLen  = 4

	minPrefixLen = 2
	maxPrefixLen = 8
)

func weight(i int) int { return i%30 + 1 }

// Codec generates and normalizes the secrets of one kind, named by its prefix.
// A Codec is safe for concurrent use.
type Codec struct {
	prefix string
	random io.Reader // crypto/rand.Reader except in tests
}

// New returns a codec for secrets starting with prefix, which must be 2 to 8
// letters a-z.
func New(prefix string) (*Codec, error) {
	valid := len(prefix) >= minPrefixLen && len(prefix) <= maxPrefixLen
	for i := 0; valid && i < len(prefix); i++ {
		valid = 'a' <= prefix[i] && prefix[i] <= 'z'
	}
	if !valid {
		return nil, fmt.Errorf("token: invalid prefix %q: want %d to %d letters a-z", prefix, minPrefixLen, maxPrefixLen)
	}
	return &Codec{prefix: prefix, random: rand.Reader}, nil
}

// Prefix returns the prefix the codec was created with.
func (c *Codec) Prefix() string { return c.prefix }

// Generate returns a new random secret in display form,
// prefix-xxxxxxxx-xxxxxxxx-xxxxxxxx-xxxxxxxx. It fails only if the random
// source fails.
func (c *Codec) Generate() (string, error) {
	var body [BodyLen]byte
	if err := c.fillRandom(body[:randLen]); err != nil {
		return "", fmt.Errorf("token: generate: %w", err)
	}
	body[randLen] = checkChar(body[:randLen])

	out := make([]byte, 0, len(c.prefix)+BodyLen+BodyLen/groupLen)
	out = append(out, c.prefix...)
	for i := 0; i < BodyLen; i += groupLen {
		out = append(out, '-')
		out = append(out, body[i:i+groupLen]...)
	}
	return string(out), nil
}

// fillRandom fills dst with alphabet characters drawn uniformly from c.random.
// Each byte gives 5 bits, 0..31, and 31 is rejected, so there is no modulo bias.
func (c *Codec) fillRandom(dst []byte) error {
	var buf [64]byte
	for n := 0; n < len(dst); {
		if _, err := io.ReadFull(c.random, buf[:]); err != nil {
			return err
		}
		got := 0
		for _, b := range buf {
			v := b & 31
			if int(v) >= base {
				continue
			}
			got++
			dst[n] = alphabet[v]
			if n++; n == len(dst) {
				break
			}
		}
		if got == 0 {
			// 64 rejections in a row has probability 2^-320 from a working source.
			return errors.New("random source returned only rejected bytes")
		}
	}
	return nil
}

// checkChar returns the character that completes the random body chars.
func checkChar(chars []byte) byte {
	sum := 0
	for i, b := range chars {
		sum += weight(i) * int(classes[b]-1)
	}
	return alphabet[(base-sum%base)*checkInv%base]
}

// AppendNormalized appends the canonical form of input to dst and returns it.
// It lowercases ASCII letters, drops the separators '-', ' ', '\t' and '_'
// anywhere, and requires the prefix, then exactly [BodyLen] alphabet
// characters, then nothing, with a valid check character. Errors wrap
// [ErrMalformed] or [ErrChecksum] and never include the input; on error dst is
// returned unchanged.
//
// AppendNormalized does not allocate when cap(dst)-len(dst) is at least
// len(c.Prefix())+BodyLen, so callers can pass a stack buffer.
func (c *Codec) AppendNormalized(dst []byte, input string) ([]byte, error) {
	var body [BodyLen]byte
	sum, err := c.parse(input, &body)
	if err != nil {
		return dst, err
	}
	if sum != 0 {
		return dst, ErrChecksum
	}
	dst = append(dst, c.prefix...)
	return append(dst, body[:]...), nil
}

// Looks reports whether s looks like a secret of the codec, to tell app
// passwords from account passwords cheaply: whether, ignoring case and
// separators as [Codec.AppendNormalized] does, s is the prefix followed by
// exactly [BodyLen] alphabet characters. The check character is not checked,
// so a secret with a typo still looks like one and AppendNormalized can report
// [ErrChecksum]; an account password that merely starts with the prefix's
// letters does not.
func (c *Codec) Looks(s string) bool {
	var body [BodyLen]byte
	_, err := c.parse(s, &body)
	return err == nil
}

// classes maps a byte to 1 + its value for an alphabet character in
// either case, sepClass for a separator and 0 for anything else: one table
// look-up per byte on the verify path.
var classes = func() (t [256]uint8) {
	for i := range len(alphabet) {
		b := alphabet[i]
		t[b] = uint8(i + 1)
		if 'a' <= b && b <= 'z' {
			t[b-'a'+'A'] = uint8(i + 1)
		}
	}
	for _, b := range []byte("- \t_") {
		t[b] = sepClass
	}
	return t
}()

const sepClass = 0xff

// AppendShape is [Codec.AppendNormalized] without the test of the check
// character: it appends the canonical form of a secret of the right shape
// (prefix, alphabet, length), which [Codec.Checked] must still test before
// the secret reaches anything a typo should not (a limiter, a store). A
// verify path uses it to test the check character only for secrets its
// cache does not know: a cached one passed the test when it was first
// verified. Errors wrap [ErrMalformed]; on error dst is returned unchanged.
func (c *Codec) AppendShape(dst []byte, input string) ([]byte, error) {
	var body [BodyLen]byte
	if err := c.shape(input, &body); err != nil {
		return dst, err
	}
	dst = append(dst, c.prefix...)
	return append(dst, body[:]...), nil
}

// AppendUsual appends the canonical form of input, and reports true, when
// input is spelled one of the two usual ways, the canonical form or
// grouped as shown (lowercase, a dash before every group), without
// looking at its characters: it is a copy. It is for a probe of verified
// secrets, such as a cache keyed by their HMAC, whose hit proves the
// characters (only a secret that passed [Codec.AppendNormalized] has such
// a key); anything else must go through AppendShape or AppendNormalized.
// On false dst is returned unchanged.
func (c *Codec) AppendUsual(dst []byte, input string) ([]byte, bool) {
	p := len(c.prefix)
	if len(input) < p {
		return dst, false
	}
	for i := range p { // a call to compare strings costs more than this
		if input[i] != c.prefix[i] {
			return dst, false
		}
	}
	switch rest := input[p:]; len(rest) {
	case BodyLen:
		return append(dst, input...), true
	case groupedLen:
		if rest[0] != '-' || rest[groupLen+1] != '-' || rest[2*(groupLen+1)] != '-' || rest[3*(groupLen+1)] != '-' {
			return dst, false
		}
		dst = append(dst, c.prefix...)
		for at := 1; at < groupedLen; at += groupLen + 1 {
			dst = append(dst, rest[at:at+groupLen]...)
		}
		return dst, true
	}
	return dst, false
}

// groupedLen is the length of a body as shown: groups of groupLen, each
// after a dash.
const groupedLen = BodyLen / groupLen * (groupLen + 1)

// Checked reports whether canonical, from [Codec.AppendShape] or
// [Codec.AppendNormalized], ends in a valid check character.
func (c *Codec) Checked(canonical []byte) bool {
	if len(canonical) != len(c.prefix)+BodyLen {
		return false
	}
	return checksum((*[BodyLen]byte)(canonical[len(c.prefix):])) == 0
}

// parse checks the shape of input, writes its lowercase body to body and
// returns the weighted checksum modulo base, which is 0 for a valid secret.
func (c *Codec) parse(input string, body *[BodyLen]byte) (int, error) {
	if err := c.shape(input, body); err != nil {
		return 0, err
	}
	return checksum(body), nil
}

// checksum is the weighted sum of body's values modulo base.
func checksum(body *[BodyLen]byte) int {
	sum, w := 0, 1 // w is weight(i), kept without a division per byte
	for _, b := range body {
		sum += w * int(classes[b]-1)
		if w++; w > 30 {
			w = 1
		}
	}
	return sum % base
}

// shape checks the shape of input and writes its lowercase body to body:
// one table look-up per byte.
func (c *Codec) shape(input string, body *[BodyLen]byte) error {
	if len(input) == 0 {
		return errEmpty
	}
	if len(input) > MaxInputLen {
		return errTooLong
	}
	i := 0
	for p := 0; p < len(c.prefix); i++ {
		if i == len(input) {
			return errShort
		}
		b := input[i]
		if classes[b] == sepClass {
			continue
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if b != c.prefix[p] {
			return errPrefix
		}
		p++
	}
	n := 0
	for ; i < len(input); i++ {
		b := input[i]
		cl := classes[b]
		switch {
		case cl == 0:
			return errChar
		case cl == sepClass:
			continue
		case n == BodyLen:
			return errLong
		}
		body[n] = b | 0x20 // lowercase: alphabet letters and digits alike
		n++
	}
	if n < BodyLen {
		return errShort
	}
	return nil
}

// Hint returns the last 4 characters of a canonical token, to be shown in
// lists as "…wxyz". It returns "" for input shorter than that.
func Hint(canonical []byte) string {
	if len(canonical) < hintLen {
		return ""
	}
	return string(canonical[len(canonical)-hintLen:])
}
