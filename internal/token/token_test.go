package token

import (
	"bytes"
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"
)

const testAlphabet = "23456789abcdefghjkmnpqrstuvwxyz"

// complete appends to the 31 random characters body the check character,
// found by trying all of them against the checksum as the spec states it, so
// that the test does not rely on the code under test.
func complete(t testing.TB, body string) string {
	t.Helper()
	if len(body) != BodyLen-1 {
		t.Fatalf("complete: body has %d characters, want %d", len(body), BodyLen-1)
	}
	for _, c := range []byte(testAlphabet) {
		full := body + string(c)
		sum := 0
		for i := range len(full) {
			sum += (i%30 + 1) * strings.IndexByte(testAlphabet, full[i])
		}
		if sum%31 == 0 {
			return full
		}
	}
	t.Fatalf("complete: no check character for %q", body)
	return ""
}

func display(prefix, body string) string {
	return prefix + "-" + body[0:8] + "-" + body[8:16] + "-" + body[16:24] + "-" + body[24:32]
}

func newCodec(t testing.TB, prefix string) *Codec {
	t.Helper()
	c, err := New(prefix)
	if err != nil {
		t.Fatalf("New(%q): %v", prefix, err)
	}
	return c
}

func TestNew(t *testing.T) {
	tests := []struct {
		prefix string
		ok     bool
	}{
		{"aap", true},
		{"aas", true},
		{"ab", true},
		{"abcdefgh", true},
		{"", false},
		{"a", false},
		{"abcdefghi", false},
		{"AAP", false},
		{"a1", false},
		{"a-p", false},
		{"aé", false},
		{"a\x00p", false},
	}
	for _, tt := range tests {
		c, err := New(tt.prefix)
		if (err == nil) != tt.ok {
			t.Errorf("New(%q) error = %v, want ok = %v", tt.prefix, err, tt.ok)
			continue
		}
		if tt.ok && c.Prefix() != tt.prefix {
			t.Errorf("New(%q).Prefix() = %q", tt.prefix, c.Prefix())
		}
	}
}

func TestGenerateRoundTrip(t *testing.T) {
	for _, prefix := range []string{"aap", "aas", "ab", "abcdefgh"} {
		c := newCodec(t, prefix)
		display := regexp.MustCompile("^" + prefix + "(-[" + testAlphabet + "]{8}){4}$")
		for range 100 {
			tok, err := c.Generate()
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			if !display.MatchString(tok) {
				t.Fatalf("Generate() = %q, want display form", tok)
			}
			got, err := c.AppendNormalized(nil, tok)
			if err != nil {
				t.Fatalf("AppendNormalized(Generate()): %v", err)
			}
			if want := strings.ReplaceAll(tok, "-", ""); string(got) != want {
				t.Fatalf("AppendNormalized(%q) = %q, want %q", tok, got, want)
			}
			if !c.Looks(tok) {
				t.Fatalf("Looks(%q) = false", tok)
			}
			if h := Hint(got); h != tok[len(tok)-4:] {
				t.Fatalf("Hint(%q) = %q", got, h)
			}
		}
	}
}

func TestAppendNormalizedForms(t *testing.T) {
	c := newCodec(t, "aap")
	body := complete(t, "23456789abcdefghjkmnpqrstuvwxyz")
	canonical := "aap" + body
	disp := display("aap", body)
	tests := []struct {
		name, input string
	}{
		{"canonical", canonical},
		{"display", disp},
		{"upper case", strings.ToUpper(disp)},
		{"mixed case", "AaP-" + strings.ToUpper(body[:16]) + body[16:]},
		{"spaces", strings.ReplaceAll(disp, "-", " ")},
		{"tabs and underscores", strings.ReplaceAll(strings.ReplaceAll(disp, "-", "\t"), body[8:16], "_"+body[8:16]+"_")},
		{"other grouping", "aap " + body[:4] + " " + body[4:8] + " " + body[8:12] + "--" + body[12:]},
		{"separators around", "  \t" + disp + " \t_-"},
		{"separators in prefix", "a-a p_" + body},
		{"every char separated", strings.Join(strings.Split(canonical, ""), " ")},
		{"padded to MaxInputLen", disp + strings.Repeat(" ", MaxInputLen-len(disp))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.AppendNormalized(nil, tt.input)
			if err != nil {
				t.Fatalf("AppendNormalized(%q): %v", tt.input, err)
			}
			if string(got) != canonical {
				t.Fatalf("AppendNormalized(%q) = %q, want %q", tt.input, got, canonical)
			}
			if !c.Looks(tt.input) {
				t.Errorf("Looks(%q) = false", tt.input)
			}
		})
	}

	t.Run("appends to dst", func(t *testing.T) {
		got, err := c.AppendNormalized([]byte("v1:"), disp)
		if err != nil || string(got) != "v1:"+canonical {
			t.Fatalf("AppendNormalized(\"v1:\", %q) = %q, %v", disp, got, err)
		}
	})
}

// knownErrors is every error AppendNormalized may return; none holds input.
var knownErrors = []error{errEmpty, errTooLong, errPrefix, errChar, errShort, errLong, ErrChecksum}

func isKnownError(err error) bool {
	for _, known := range knownErrors {
		if errors.Is(err, known) && err.Error() == known.Error() {
			return true
		}
	}
	return false
}

func TestAppendNormalizedErrors(t *testing.T) {
	c := newCodec(t, "aap")
	body := complete(t, "23456789abcdefghjkmnpqrstuvwxyz")
	disp := display("aap", body)
	typo := "aap" + body[:5] + "z" + body[6:] // body[5] is '7'
	tests := []struct {
		name, input string
		want        error // ErrMalformed or ErrChecksum
		reason      error // the exact error, nil if not checked
	}{
		{"empty", "", ErrMalformed, errEmpty},
		{"only separators", " - _\t", ErrMalformed, errShort},
		{"prefix only", "aap", ErrMalformed, errShort},
		{"wrong prefix", display("aas", body), ErrMalformed, errPrefix},
		{"longer prefix", display("aapx", body), ErrMalformed, errLong}, // x is in the alphabet
		{"no prefix", body, ErrMalformed, errPrefix},
		{"short", disp[:len(disp)-1], ErrMalformed, errShort},
		{"long", disp + "2", ErrMalformed, errLong},
		{"doubled", disp + disp, ErrMalformed, errLong},
		{"MaxInputLen+1", disp + strings.Repeat(" ", MaxInputLen+1-len(disp)), ErrMalformed, errTooLong},
		{"1 MiB", disp + strings.Repeat("2", 1<<20), ErrMalformed, errTooLong},
		{"1 MiB of separators", strings.Repeat("-", 1<<20), ErrMalformed, errTooLong},
		{"non-UTF-8", disp[:10] + "\xff" + disp[11:], ErrMalformed, errChar},
		{"non-UTF-8 only", "\xff\xfe\xfd", ErrMalformed, errPrefix},
		{"non-ASCII letter", disp[:10] + "é" + disp[12:], ErrMalformed, errChar},
		{"fullwidth", "ａａｐ" + body, ErrMalformed, errPrefix},
		{"NUL", disp[:10] + "\x00" + disp[11:], ErrMalformed, errChar},
		{"newline separator", strings.ReplaceAll(disp, "-", "\n"), ErrMalformed, errChar},
		{"zero", disp[:10] + "0" + disp[11:], ErrMalformed, errChar},
		{"letter o", disp[:10] + "o" + disp[11:], ErrMalformed, errChar},
		{"upper O", disp[:10] + "O" + disp[11:], ErrMalformed, errChar},
		{"one", disp[:10] + "1" + disp[11:], ErrMalformed, errChar},
		{"letter l", disp[:10] + "l" + disp[11:], ErrMalformed, errChar},
		{"upper L", disp[:10] + "L" + disp[11:], ErrMalformed, errChar},
		{"letter i", disp[:10] + "i" + disp[11:], ErrMalformed, errChar},
		{"upper I", disp[:10] + "I" + disp[11:], ErrMalformed, errChar},
		{"punctuation", disp[:10] + "." + disp[11:], ErrMalformed, errChar},
		{"typo", typo, ErrChecksum, ErrChecksum},
		{"typo upper case", strings.ToUpper(typo), ErrChecksum, ErrChecksum},
		{"swapped", "aap" + body[1:2] + body[0:1] + body[2:], ErrChecksum, ErrChecksum},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("keep")
			got, err := c.AppendNormalized(dst, tt.input)
			if !errors.Is(err, tt.want) {
				t.Fatalf("AppendNormalized error = %v, want %v", err, tt.want)
			}
			if tt.reason != nil && !errors.Is(err, tt.reason) {
				t.Errorf("AppendNormalized error = %v, want %v", err, tt.reason)
			}
			if errors.Is(err, ErrMalformed) && errors.Is(err, ErrChecksum) {
				t.Errorf("error %v is both malformed and checksum", err)
			}
			if !isKnownError(err) {
				t.Errorf("error %q is not one of the fixed messages", err)
			}
			if string(got) != "keep" {
				t.Errorf("dst = %q, want it unchanged", got)
			}
			if looks, want := c.Looks(tt.input), errors.Is(err, ErrChecksum); looks != want {
				t.Errorf("Looks = %v, want %v", looks, want)
			}
		})
	}
}

// TestChecksumDetectsTypos proves on real tokens that every substitution of one
// character and every swap of two different neighbouring characters is caught.
func TestChecksumDetectsTypos(t *testing.T) {
	c := newCodec(t, "aap")
	tokens := []string{
		complete(t, "23456789abcdefghjkmnpqrstuvwxyz"),
		complete(t, strings.Repeat("2", 31)),
		complete(t, strings.Repeat("z", 31)),
	}
	for range 5 {
		tok, err := c.Generate()
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, strings.ReplaceAll(tok[len("aap"):], "-", ""))
	}
	check := func(t *testing.T, body []byte, what string) {
		t.Helper()
		input := "aap" + string(body)
		if _, err := c.AppendNormalized(nil, input); !errors.Is(err, ErrChecksum) {
			t.Fatalf("%s: AppendNormalized(%q) error = %v, want ErrChecksum", what, input, err)
		}
		if !c.Looks(input) {
			t.Fatalf("%s: Looks(%q) = false", what, input)
		}
		// The verify path's split: the shape passes, the check character not.
		shaped, err := c.AppendShape(nil, input)
		if err != nil || c.Checked(shaped) {
			t.Fatalf("%s: AppendShape(%q) = %q, %v; Checked = %v, want the shape and false", what, input, shaped, err, c.Checked(shaped))
		}
	}
	for n, tok := range tokens {
		canonical, err := c.AppendNormalized(nil, "aap"+tok)
		if err != nil {
			t.Fatalf("AppendNormalized(%q): %v", "aap"+tok, err)
		}
		if shaped, err := c.AppendShape(nil, "AAP-"+strings.ToUpper(tok)); err != nil || !bytes.Equal(shaped, canonical) || !c.Checked(shaped) {
			t.Fatalf("AppendShape = %q, %v (Checked %v), want %q as AppendNormalized", shaped, err, c.Checked(shaped), canonical)
		}
		body := []byte(tok)
		subs, swaps := 0, 0
		for i := range BodyLen {
			orig := body[i]
			for _, r := range []byte(testAlphabet) {
				if r == orig {
					continue
				}
				body[i] = r
				check(t, body, "substitution")
				subs++
			}
			body[i] = orig
		}
		for i := range BodyLen - 1 {
			if body[i] == body[i+1] {
				continue
			}
			body[i], body[i+1] = body[i+1], body[i]
			check(t, body, "transposition")
			swaps++
			body[i], body[i+1] = body[i+1], body[i]
		}
		if subs != BodyLen*30 {
			t.Fatalf("checked %d substitutions, want %d", subs, BodyLen*30)
		}
		t.Logf("token %d: %d substitutions, %d transpositions rejected", n, subs, swaps)
	}
}

// TestChecksumWeights proves the same for every position and every pair of
// values, whatever the rest of the token.
func TestChecksumWeights(t *testing.T) {
	w := func(i int) int { return i%30 + 1 }
	for i := range BodyLen {
		for a := range 31 {
			for b := range 31 {
				if a == b {
					continue
				}
				if (w(i)*a-w(i)*b)%31 == 0 {
					t.Fatalf("substituting %d by %d at %d is not detected", a, b, i)
				}
				if i+1 < BodyLen && (w(i)*a+w(i+1)*b-w(i)*b-w(i+1)*a)%31 == 0 {
					t.Fatalf("swapping %d and %d at %d is not detected", a, b, i)
				}
			}
		}
	}
}

func TestGenerateDistribution(t *testing.T) {
	c := newCodec(t, "aap")
	const n = 10000
	seen := make(map[string]bool, n)
	var random, check [256]int
	for range n {
		tok, err := c.Generate()
		if err != nil {
			t.Fatal(err)
		}
		if seen[tok] {
			t.Fatalf("Generate returned %q twice", tok)
		}
		seen[tok] = true
		body := strings.ReplaceAll(tok[len("aap-"):], "-", "")
		for i := range BodyLen - 1 {
			random[body[i]]++
		}
		check[body[BodyLen-1]]++
	}
	// Each character is expected n*31/31 = n times among the random
	// characters, with a standard deviation near 98; allow 6 of them.
	for b := range 256 {
		in := strings.IndexByte(testAlphabet, byte(b)) >= 0
		if !in && random[b]+check[b] != 0 {
			t.Errorf("character %q outside the alphabet generated", byte(b))
		}
		if in && (random[b] < n-600 || random[b] > n+600) {
			t.Errorf("character %q generated %d times in random positions, want %d±600", byte(b), random[b], n)
		}
		if in && check[b] == 0 {
			t.Errorf("character %q never generated as check character", byte(b))
		}
	}
}

// bytesReader returns the given bytes, then fails.
type bytesReader struct{ b []byte }

func (r *bytesReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.ErrUnexpectedEOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

func TestGenerateRandomSource(t *testing.T) {
	t.Run("rejection sampling", func(t *testing.T) {
		c := newCodec(t, "aap")
		// Only the low 5 bits count and 31 is rejected.
		var src []byte
		for i := range 31 {
			src = append(src, 0xff, 0x1f, byte(i)|0xe0)
		}
		src = append(src, make([]byte, 64*3-len(src))...)
		c.random = &bytesReader{src}
		tok, err := c.Generate()
		if err != nil {
			t.Fatal(err)
		}
		if want := display("aap", complete(t, testAlphabet)); tok != want {
			t.Fatalf("Generate() = %q, want %q", tok, want)
		}
	})
	t.Run("failing source", func(t *testing.T) {
		c := newCodec(t, "aap")
		c.random = &bytesReader{}
		tok, err := c.Generate()
		if !errors.Is(err, io.ErrUnexpectedEOF) || tok != "" {
			t.Fatalf("Generate() = %q, %v; want error", tok, err)
		}
	})
	t.Run("source of rejected bytes", func(t *testing.T) {
		c := newCodec(t, "aap")
		c.random = &bytesReader{bytes.Repeat([]byte{0xff}, 1<<16)}
		if tok, err := c.Generate(); err == nil {
			t.Fatalf("Generate() = %q, want error", tok)
		}
	})
}

func TestAppendNormalizedAllocs(t *testing.T) {
	c := newCodec(t, "aap")
	tok, err := c.Generate()
	if err != nil {
		t.Fatal(err)
	}
	for _, input := range []string{tok, strings.ToUpper(tok), tok[:20], tok + "x", strings.Repeat("x", 1<<20)} {
		allocs := testing.AllocsPerRun(100, func() {
			var buf [64]byte
			_, _ = c.AppendNormalized(buf[:0], input)
		})
		if allocs != 0 {
			t.Errorf("AppendNormalized(stack buffer, %.20q...) allocates %v times, want 0", input, allocs)
		}
	}
	allocs := testing.AllocsPerRun(100, func() { c.Looks(tok) })
	if allocs != 0 {
		t.Errorf("Looks allocates %v times, want 0", allocs)
	}
}

func TestLooks(t *testing.T) {
	c := newCodec(t, "aap")
	body := complete(t, "23456789abcdefghjkmnpqrstuvwxyz")
	tests := []struct {
		input string
		want  bool
	}{
		{display("aap", body), true},
		{"AAP " + body, true},
		{"aap" + body[:31] + "2", true}, // wrong check character: a typo
		{"", false},
		{"aap", false},
		{"aapje123", false},
		{"Aap-noot-mies", false},
		{"correct horse battery staple", false},
		{display("aas", body), false},
		{display("aap", body) + "2", false},
		{display("aap", body)[:30], false},
		{strings.Repeat("a", 1<<20), false},
	}
	for _, tt := range tests {
		if got := c.Looks(tt.input); got != tt.want {
			t.Errorf("Looks(%.50q) = %v, want %v", tt.input, got, tt.want)
		}
	}
}

func TestHint(t *testing.T) {
	tests := []struct{ in, want string }{
		{"aap23456789abcdefghjkmnpqrstuvwxyz", "wxyz"},
		{"wxyz", "wxyz"},
		{"xyz", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := Hint([]byte(tt.in)); got != tt.want {
			t.Errorf("Hint(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzAppendNormalized(f *testing.F) {
	c := newCodec(f, "aap")
	body := complete(f, "23456789abcdefghjkmnpqrstuvwxyz")
	for _, seed := range []string{
		"aap" + body,
		display("aap", body),
		strings.ToUpper(display("aap", body)),
		"a a p\t" + body[:16] + "_" + body[16:],
		"aap" + complete(f, strings.Repeat("z", 31)),
		"aap" + body[:31] + "2",
		display("aas", body),
		"",
		"aap",
		"aapje123",
		"\xff\xfe",
		"aap-0o1li",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, input string) {
		var buf [64]byte
		out, err := c.AppendNormalized(buf[:0], input)
		looks := c.Looks(input)
		if err != nil {
			if !isKnownError(err) {
				t.Fatalf("unexpected error %q", err)
			}
			if len(out) != 0 {
				t.Fatalf("output %q on error", out)
			}
			if looks != errors.Is(err, ErrChecksum) {
				t.Fatalf("Looks = %v with error %v", looks, err)
			}
			return
		}
		if !looks {
			t.Fatal("accepted but Looks = false")
		}
		if len(out) != len("aap")+BodyLen || !bytes.HasPrefix(out, []byte("aap")) {
			t.Fatalf("accepted as %q", out)
		}
		for _, b := range out[len("aap"):] {
			if strings.IndexByte(testAlphabet, b) < 0 {
				t.Fatalf("accepted as %q: %q outside the alphabet", out, b)
			}
		}
		again, err := c.AppendNormalized(nil, string(out))
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("normalizing %q again = %q, %v", out, again, err)
		}
		mutated := bytes.Clone(out)
		for i := len("aap"); i < len(mutated); i++ {
			for _, r := range []byte(testAlphabet) {
				if r == out[i] {
					continue
				}
				mutated[i] = r
				if _, err := c.AppendNormalized(nil, string(mutated)); !errors.Is(err, ErrChecksum) {
					t.Fatalf("%q with one character changed: error = %v, want ErrChecksum", mutated, err)
				}
			}
			mutated[i] = out[i]
		}
	})
}

func BenchmarkAppendNormalized(b *testing.B) {
	c := newCodec(b, "aap")
	tok, err := c.Generate()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		var buf [64]byte
		if _, err := c.AppendNormalized(buf[:0], tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGenerate(b *testing.B) {
	c := newCodec(b, "aap")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Generate(); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzAppendUsual checks what a cache probe relies on: whenever
// AppendUsual's copy is the canonical form of some secret (shape takes
// it), input is an accepted spelling of that very secret; and it takes
// the canonical and the shown spelling of every secret.
func FuzzAppendUsual(f *testing.F) {
	c := newCodec(f, "aap")
	body := complete(f, "23456789abcdefghjkmnpqrstuvwxyz")
	for _, seed := range []string{
		"aap" + body, display("aap", body), strings.ToUpper(display("aap", body)),
		"aap" + body[:31] + "0", "aap_" + body[:8] + "-" + body[8:16] + "-" + body[16:24] + "-" + body[24:],
		display("aap", body)[:38] + "i", "aa" + body + "p", "aap" + strings.ReplaceAll(display("", body), "-", "+"), "",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, input string) {
		var byByte, ofCopy [BodyLen]byte
		err := c.shape(input, &byByte)
		out, ok := c.AppendUsual([]byte("x"), input)
		if !ok {
			if string(out) != "x" {
				t.Fatalf("AppendUsual refused %q but appended %q", input, out)
			}
			if usual := "aap" + string(byByte[:]); err == nil && (input == usual || input == display("aap", usual[3:])) {
				t.Fatalf("AppendUsual refused %q, a usual spelling", input)
			}
			return
		}
		copied := string(out[1:])
		if c.shape(copied, &ofCopy) != nil || "aap"+string(ofCopy[:]) != copied {
			return // no secret's canonical form: no verified key can match it
		}
		if err != nil || byByte != ofCopy {
			t.Fatalf("AppendUsual(%q) = %q, but shape says %q, %v", input, copied, byByte[:], err)
		}
	})
}

func TestAppendUsualTakesGeneratedSecrets(t *testing.T) {
	c := newCodec(t, "aap")
	for range 100 {
		tok, err := c.Generate()
		if err != nil {
			t.Fatal(err)
		}
		canonical := strings.ReplaceAll(tok, "-", "")
		for _, in := range []string{tok, canonical} {
			if out, ok := c.AppendUsual(nil, in); !ok || string(out) != canonical {
				t.Fatalf("AppendUsual(%q) = %q, %v; want %q", in, out, ok, canonical)
			}
		}
	}
}

// BenchmarkAppendShape is the shape check of a cached verify, on the
// spelling shown: AppendUsual's copy against AppendShape's check of
// every byte.
func BenchmarkAppendShape(b *testing.B) {
	c := newCodec(b, "aap")
	tok, err := c.Generate()
	if err != nil {
		b.Fatal(err)
	}
	var buf [64]byte
	b.Run("usual", func(b *testing.B) {
		for b.Loop() {
			if _, ok := c.AppendUsual(buf[:0], tok); !ok {
				b.Fatal("refused")
			}
		}
	})
	b.Run("shape", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.AppendShape(buf[:0], tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}
