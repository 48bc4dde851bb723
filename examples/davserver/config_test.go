package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/appauth/appauth/backends/htpasswd"
)

func noEnv(string) string { return "" }

func TestBadConfigIsOneLineAndNonZero(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "short.secret"), []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-log-format", "xml"},
		{"-tls-cert", "c.pem"},
		{"-ldap-url", "ldap://127.0.0.1"},
		{"-ldap-base-dn", "dc=x"},
		{"-trusted-proxies", "not-an-ip"},
		{"-forwarded-header", "X-Real-IP"},
		{"-users", filepath.Join(dir, "missing.htpasswd"), "-data", filepath.Join(dir, "d1"), "-addr", "127.0.0.1:0"},
		{"-addr", "nonsense", "-data", filepath.Join(dir, "d2")},
		{"extra-argument"},
		{"-radius-addr", "127.0.0.1:0"},
		{"-radius-secret-file", filepath.Join(dir, "s")},
		{"-radius-servers", "127.0.0.1:1812"},
		{"-radius-allow-unsigned-replies"},
		{"-radius-addr", "127.0.0.1:0", "-radius-secret-file", filepath.Join(dir, "short.secret"), "-data", filepath.Join(dir, "d3")},
		{"-radius-servers", "no-port", "-radius-server-secret-file", filepath.Join(dir, "short.secret"), "-data", filepath.Join(dir, "d4"), "-addr", "127.0.0.1:0"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(args, nil, &stdout, &stderr, noEnv)
		msg := stderr.String()
		if code == 0 || !strings.HasPrefix(msg, "davserver: ") {
			t.Errorf("%v: exit %d, stderr %q", args, code, msg)
		}
		if lines := strings.Count(strings.TrimSpace(lastLine(msg)), "\n"); lines != 0 {
			t.Errorf("%v: error on more than one line: %q", args, msg)
		}
		if strings.Contains(stdout.String(), "Listening") {
			t.Errorf("%v: printed a banner: %q", args, stdout.String())
		}
	}
	// A start that fails leaves no half-made data behind (the demo password
	// would otherwise be lost).
	if _, err := os.Stat(filepath.Join(dir, "d2", "users.htpasswd")); err == nil {
		t.Error("a failed start left a users file")
	}
}

// lastLine is the "davserver: ..." line: log lines may come before it.
func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	return s[strings.LastIndex(s, "\n")+1:]
}

func TestEnvironmentVariables(t *testing.T) {
	env := map[string]string{"APPAUTH_ADDR": "127.0.0.1:9999", "APPAUTH_LOG_FORMAT": "json", "APPAUTH_ALLOW_ACCOUNT_PASSWORD": "true", "APPAUTH_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.1"}
	c, err := parseConfig([]string{"-log-format", "text"}, func(k string) string { return env[k] }, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.addr != "127.0.0.1:9999" || !c.allowAccountPassword || len(c.proxies) != 2 || c.proxies[1].String() != "192.168.1.1/32" {
		t.Errorf("environment not applied: %+v", c)
	}
	if c.logFormat != "text" {
		t.Errorf("a flag must win over its variable: log format %q", c.logFormat)
	}
	if _, err := parseConfig(nil, func(k string) string {
		if k == "APPAUTH_ALLOW_ACCOUNT_PASSWORD" {
			return "maybe"
		}
		return ""
	}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "APPAUTH_ALLOW_ACCOUNT_PASSWORD") {
		t.Errorf("bad variable: %v", err)
	}
}

func TestAddUserFromStdin(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users.htpasswd")
	stdin := filepath.Join(dir, "stdin")
	os.WriteFile(stdin, []byte("a long password\n"), 0o600)
	f, err := os.Open(stdin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-users", users, "-add-user", "carol"}, f, &stdout, &stderr, noEnv); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if strings.Contains(stdout.String()+stderr.String(), "a long password") {
		t.Error("the password was echoed")
	}
	d, err := htpasswd.Open(users, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.VerifyPassword(t.Context(), "carol", "a long password"); err != nil {
		t.Fatalf("added user cannot sign in: %v", err)
	}
	if st, _ := os.Stat(users); st.Mode().Perm() != 0o600 {
		t.Errorf("users file mode %v", st.Mode())
	}
	// Too short: refused, nothing written.
	os.WriteFile(stdin, []byte("short\n"), 0o600)
	f2, _ := os.Open(stdin)
	defer f2.Close()
	if code := run([]string{"-users", users, "-add-user", "dave"}, f2, &stdout, &stderr, noEnv); code == 0 {
		t.Error("a 5-character password was accepted")
	}
	if _, err := d.LookupUser(t.Context(), "dave"); err == nil {
		t.Error("dave was added with a refused password")
	}
}

// TestBadPepperFile: a pepper file that others may read, or with a short
// key, stops the start with an error naming the file, before the users
// file or the database is made.
func TestBadPepperFile(t *testing.T) {
	for name, c := range map[string]struct {
		mode os.FileMode
		key  string
	}{
		"readable by others": {0o644, strings.Repeat("ab", 32)},
		"short key":          {0o600, strings.Repeat("ab", 16)},
	} {
		t.Run(name, func(t *testing.T) {
			data := t.TempDir()
			pepper := filepath.Join(data, "pepper")
			if err := os.WriteFile(pepper, []byte("1:"+c.key+"\n"), c.mode); err != nil {
				t.Fatal(err)
			}
			os.Chmod(pepper, c.mode) // past the umask
			var stdout, stderr bytes.Buffer
			code := run([]string{"-data", data, "-addr", "127.0.0.1:0"}, nil, &stdout, &stderr, noEnv)
			if msg := lastLine(stderr.String()); code == 0 || !strings.Contains(msg, pepper) {
				t.Errorf("exit %d, error %q; want non-zero and the pepper file named", code, msg)
			}
			for _, f := range []string{"users.htpasswd", "appauth.db"} {
				if _, err := os.Stat(filepath.Join(data, f)); err == nil {
					t.Errorf("a start refused for its pepper file left %s", f)
				}
			}
		})
	}
}

// TestCacheSizeSetting: -cache-size and APPAUTH_CACHE_SIZE set the
// credential cache; unset, it follows the store's count of credentials
// with headroom, within bounds; a negative or malformed size is refused.
func TestCacheSizeSetting(t *testing.T) {
	c, err := parseConfig([]string{"-cache-size", "50000"}, noEnv, &bytes.Buffer{})
	if err != nil || c.cacheSize != 50000 {
		t.Fatalf("-cache-size 50000: %d, %v", c.cacheSize, err)
	}
	env := map[string]string{"APPAUTH_CACHE_SIZE": "70000"}
	if c, err := parseConfig(nil, func(k string) string { return env[k] }, &bytes.Buffer{}); err != nil || c.cacheSize != 70000 {
		t.Errorf("APPAUTH_CACHE_SIZE=70000: %v, %v", c, err)
	}
	for _, v := range []string{"-1", "lots"} {
		if _, err := parseConfig([]string{"-cache-size", v}, noEnv, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "cache-size") {
			t.Errorf("-cache-size %s: %v, want an error naming the flag", v, err)
		}
	}
	for _, tc := range []struct{ flag, count, want int }{
		{0, 0, minAutoCacheSize},                        // small: the library's default
		{0, 8_000, minAutoCacheSize},                    // fits with room to spare
		{0, 40_000, 50_000},                             // every credential, plus a quarter
		{0, 10_000_000, maxAutoCacheSize},               // bounded: memory
		{25_000, 10_000_000, 25_000},                    // an explicit size wins
		{2_000_000, 0, 2_000_000},                       // also above the automatic bound
		{0, maxAutoCacheSize, maxAutoCacheSize},         // the bound itself
		{0, maxAutoCacheSize * 4 / 5, maxAutoCacheSize}, // just fits
	} {
		if got := cacheSize(tc.flag, tc.count); got != tc.want {
			t.Errorf("cacheSize(%d, %d) = %d, want %d", tc.flag, tc.count, got, tc.want)
		}
	}
}
func TestCheckEnvNames(t *testing.T) {
	for _, tc := range []struct {
		env     []string
		wantErr string // "" for none; else the suggestion
	}{
		{[]string{"HOME=/root", "APPAUTH_LDAP_URL=ldap://x", "APPAUTH_TEST_STRICT=1"}, ""},
		{[]string{"APPAUTH_LDAP_URI=ldap://x"}, "APPAUTH_LDAP_URL"},
		{[]string{"APPAUTH_POSTGRESS=x"}, "APPAUTH_POSTGRES"},
		{[]string{"APPAUTH_TLS_CERTIFICATE=x"}, "APPAUTH_TLS_CERT"},
	} {
		err := checkEnvNames(tc.env)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%v: %v", tc.env, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), "did you mean "+tc.wantErr+"?")):
			t.Errorf("%v: %v, want a suggestion of %s", tc.env, err, tc.wantErr)
		}
	}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1024": 1024, "1K": 1 << 10, "5M": 5 << 20, "2G": 2 << 30} {
		var b byteSize
		if err := b.Set(in); err != nil || int64(b) != want {
			t.Errorf("%q: %d %v, want %d", in, b, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1T", "x", "99999999999G"} {
		var b byteSize
		if err := b.Set(in); err == nil {
			t.Errorf("%q: accepted as %d", in, b)
		}
	}
}

func TestScanXML(t *testing.T) {
	deep := func(n int) []byte { return nested("", n) }
	if err := scanXML(deep(64), 64, 1000); err != nil {
		t.Errorf("depth 64: %v", err)
	}
	if err := scanXML(deep(65), 64, 1000); err == nil {
		t.Error("depth 65 accepted")
	}
	flat := []byte("<r>" + strings.Repeat(`<a x="1"/>`, 100) + "</r>")
	if err := scanXML(flat, 64, 201); err != nil {
		t.Errorf("201 elements and attributes: %v", err)
	}
	if err := scanXML(flat, 64, 200); err == nil {
		t.Error("201 elements and attributes accepted with a limit of 200")
	}
}
