package htpasswd

import (
	"errors"
	"strconv"
	"strings"

	"github.com/go-crypt/crypt/algorithm/shacrypt"
)

// SHA-crypt ($5$ SHA-256, $6$ SHA-512, the scheme of glibc's crypt(3),
// `openssl passwd -5/-6` and `mkpasswd`) is computed and compared (in
// constant time) by github.com/go-crypt/crypt/algorithm/shacrypt. Its
// decoder is lenient where a file read at start-up should not be: an
// unknown identifier decodes as SHA-512, a key of any length or alphabet
// decodes (and then never matches), and rounds go up to 999,999,999. So
// parseShaCrypt checks the form first and refuses what glibc never writes.

const (
	shaCryptMaxSalt = 16
	// shaCryptMaxParsedRounds bounds the work one verify may cost: a hash
	// with more rounds than this is refused when the file is read, so a
	// crafted entry cannot stall sign-ins. (glibc allows up to 999,999,999.)
	shaCryptMaxParsedRounds = 10_000_000
)

// cryptAlphabet is crypt(3)'s base-64 alphabet.
const cryptAlphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

var errShaCryptFormat = errors.New("malformed SHA-crypt hash")

// parseShaCrypt checks and decodes "$5$[rounds=N$]salt$hash" or the $6$
// equivalent.
func parseShaCrypt(s string) (*shacrypt.Digest, error) {
	variant, keyLen := shacrypt.VariantSHA256, 43
	switch {
	case strings.HasPrefix(s, "$5$"):
	case strings.HasPrefix(s, "$6$"):
		variant, keyLen = shacrypt.VariantSHA512, 86
	default:
		return nil, errShaCryptFormat
	}
	rest := s[3:]
	if r, ok := strings.CutPrefix(rest, "rounds="); ok {
		n, after, found := strings.Cut(r, "$")
		if !found || n == "" || len(n) > 9 || n[0] == '0' {
			return nil, errShaCryptFormat
		}
		v, err := strconv.ParseUint(n, 10, 32)
		if err != nil {
			return nil, errShaCryptFormat
		}
		if v > shaCryptMaxParsedRounds {
			return nil, errors.New("SHA-crypt rounds above 10,000,000 are refused")
		}
		if v < shacrypt.IterationsMin {
			// crypt(3) raises them to 1000 and writes "rounds=1000".
			return nil, errors.New("SHA-crypt rounds below 1000 are refused")
		}
		rest = after
	}
	salt, key, found := strings.Cut(rest, "$")
	if !found || len(salt) > shaCryptMaxSalt || len(key) != keyLen || !onlyCryptAlphabet(key) {
		return nil, errShaCryptFormat
	}
	d, err := shacrypt.DecodeVariant(variant)(s)
	if err != nil {
		// Its message may quote parts of the hash: not passed on.
		return nil, errShaCryptFormat
	}
	return d.(*shacrypt.Digest), nil
}

func onlyCryptAlphabet(s string) bool {
	for i := range len(s) {
		if strings.IndexByte(cryptAlphabet, s[i]) < 0 {
			return false
		}
	}
	return true
}
