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

// values maps a lowercase alphabet byte to its value and every other byte to -1.
var values = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for i := range len(alphabet) {
		t[alphabet[i]] = int8(i)
	}
	return t
}()

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
		sum += weight(i) * int(values[b])
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

// parse checks the shape of input, writes its lowercase body to body and
// returns the weighted checksum modulo base, which is 0 for a valid secret.
func (c *Codec) parse(input string, body *[BodyLen]byte) (int, error) {
	if len(input) == 0 {
		return 0, errEmpty
	}
	if len(input) > MaxInputLen {
		return 0, errTooLong
	}
	i := 0
	for p := 0; p < len(c.prefix); i++ {
		if i == len(input) {
			return 0, errShort
		}
		b := input[i]
		if classes[b] == sepClass {
			continue
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if b != c.prefix[p] {
			return 0, errPrefix
		}
		p++
	}
	n, sum, w := 0, 0, 1 // w is weight(n), kept without a division per byte
	for ; i < len(input); i++ {
		cl := classes[input[i]]
		switch {
		case cl == 0:
			return 0, errChar
		case cl == sepClass:
			continue
		case n == BodyLen:
			return 0, errLong
		}
		body[n] = input[i] | 0x20 // lowercase: alphabet letters and digits alike
		sum += w * int(cl-1)
		n++
		if w++; w > 30 {
			w = 1
		}
	}
	if n < BodyLen {
		return 0, errShort
	}
	return sum % base, nil
}

// Hint returns the last 4 characters of a canonical token, to be shown in
// lists as "…wxyz". It returns "" for input shorter than that.
func Hint(canonical []byte) string {
	if len(canonical) < hintLen {
		return ""
	}
	return string(canonical[len(canonical)-hintLen:])
}
