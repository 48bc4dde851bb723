package htpasswd

import (
	"strconv"
	"strings"
	"testing"

	"github.com/go-crypt/crypt/algorithm/shacrypt"
)

// Vectors from the SHA-crypt specification and from glibc crypt(3)
// (perl -e 'print crypt(PASSWORD, SALT)') and `openssl passwd -5/-6`.
var shaCryptVectors = []struct{ password, hash string }{
	{"Hello world!", "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"},
	{"Hello world!", "$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA"},
	{"Hello world!", "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"},
	{"Hello world!", "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."},
	{"", "$6$rounds=1000$x$JUgHESfT/mKR2X.Qz/PrkEgBINN.wbH/GsJhhFRcgrb0a4MjVYFixxXtKicccBbv9PSG/n1kVdpVqZiR7Brv1."},
	// Long passwords, and salts longer than 16 bytes cut to 16 (the
	// specification's inputs, glibc's outputs).
	{"we have a short salt string but not a short password", "$5$rounds=5000$toolongsaltstrin$MFW7Vdfl6BBsKShK1Hhi8amLns1JdP1B6EZH7.YwQU8"},
	{"a very much longer text to encrypt.  This one even stretches over morethan one line.", "$5$rounds=1400$anotherlongsalts$Rx.j8H.h8HjEDGomFU8bDkXm3XIUnzyxf12oP84Bnq1"},
	{"we have a short salt string but not a short password", "$6$rounds=5000$toolongsaltstrin$CsXGH/Hv7LfzV7cz4e5PZ25Frby4INJn6I9bBUm6PHYCfL3ryXe64vEUIDqe.2fTY/Xn2QWl570cYoUZo3uIR1"},
	{"a very much longer text to encrypt.  This one even stretches over morethan one line.", "$6$rounds=1400$anotherlongsalts$POfYwTEok97VWcjxIiSOjiykti.o/pQs.wPvMxQ6Fm7I6IoYN3CmLs66x9t0oSwbtEW7o7UmJEiDwGqd8p4ur1"},
}

func TestShaCryptVectors(t *testing.T) {
	for _, v := range shaCryptVectors {
		d, err := parseShaCrypt(v.hash)
		if err != nil {
			t.Fatalf("parse %q: %v", v.hash, err)
		}
		if !d.MatchBytes([]byte(v.password)) {
			t.Errorf("verify(%q) against %q failed", v.password, v.hash)
		}
		if d.MatchBytes([]byte(v.password + "x")) {
			t.Errorf("a wrong password verified against %q", v.hash)
		}
		// Hashing (as the test fixtures do) gives the same key.
		rounds := shacrypt.IterationsDefaultOmitted
		if r, ok := strings.CutPrefix(v.hash[3:], "rounds="); ok {
			n, _, _ := strings.Cut(r, "$")
			rounds, _ = strconv.Atoi(n)
		}
		got := shaCryptHash(t, v.hash[1], v.password, string(d.Salt()), rounds)
		if g, err := parseShaCrypt(got); err != nil || string(g.Key()) != string(d.Key()) {
			t.Errorf("hashing %q gives %q (%v), want the key of %q", v.password, got, err, v.hash)
		}
	}
}

// shaCryptHash hashes password with variant '5' or '6', salt and rounds.
func shaCryptHash(t testing.TB, variant byte, password, salt string, rounds int) string {
	t.Helper()
	h, err := shacrypt.New(shacrypt.WithVariantName(string(variant)), shacrypt.WithIterations(rounds))
	if err != nil {
		t.Fatal(err)
	}
	d, err := h.HashWithSalt(password, []byte(salt))
	if err != nil {
		t.Fatal(err)
	}
	return d.Encode()
}

func TestParseShaCryptRefuses(t *testing.T) {
	for _, h := range []string{
		"$5$", "$5$salt", "$5$salt$short", "$7$salt$" + string(make([]byte, 43)),
		"$5$rounds=$salt$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5",
		"$5$rounds=01000$salt$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5",
		"$5$rounds=999999999$salt$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5", // too costly
		"$5$rounds=999$salt$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5",       // below 1000
		"$5$rounds=+1000$salt$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5",
		"$5$rounds=1000,x=1$salt$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5",
		"$6$salt$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5",                 // a $5$ key under $6$
		"$5$saltsaltsaltsaltsalt$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5", // salt over 16
		"$5$salt$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWE!5",
		"$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl",
	} {
		if _, err := parseShaCrypt(h); err == nil {
			t.Errorf("parseShaCrypt(%q) accepted", h)
		}
	}
}

// TestShaCryptRoundsCap: up to 10,000,000 rounds are read; more are refused
// with an error that says why, before any hashing.
func TestShaCryptRoundsCap(t *testing.T) {
	const key = "$salt$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"
	if _, err := parseShaCrypt("$5$rounds=10000000" + key); err != nil {
		t.Errorf("10,000,000 rounds refused: %v", err)
	}
	for _, n := range []string{"10000001", "999999999"} {
		_, err := parseShaCrypt("$5$rounds=" + n + key)
		if err == nil || !strings.Contains(err.Error(), "above 10,000,000") {
			t.Errorf("%s rounds: %v, want the rounds cap", n, err)
		}
	}
}
