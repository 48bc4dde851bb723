package htpasswd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/authtest"
	"github.com/appauth/appauth/internal/testkit"
)

// bcryptHash hashes at the lowest cost: tests need not be slow.
func bcryptHash(t testing.TB, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// fixtureFile writes the authtest fixture users: bcrypt ($2y$, as Apache
// writes it), SHA-256-crypt and SHA-512-crypt, dave disabled.
func fixtureFile(t testing.TB) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("# appauth test users\n\n")
	for i, fu := range authtest.FixtureUsers {
		var h string
		switch i % 3 {
		case 0:
			h = "$2y$" + bcryptHash(t, fu.Password)[4:]
		case 1:
			h = shaCryptHash(t, '5', fu.Password, "salt"+fmt.Sprint(i), 1000)
		case 2:
			h = shaCryptHash(t, '6', fu.Password, "salt"+fmt.Sprint(i), 5000)
		}
		if fu.Disabled {
			h = "!" + h
		}
		fmt.Fprintf(&b, "%s:%s\r\n", fu.Login, h)
	}
	path := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDirectory(t *testing.T) {
	authtest.RunDirectoryTests(t, func(t *testing.T) authtest.DirectoryFixture {
		d, err := Open(fixtureFile(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		return authtest.DirectoryFixture{Directory: d, Verifier: d, NoGroups: true, NoDisplayInfo: true}
	})
}

func TestRefusedEntries(t *testing.T) {
	for name, tc := range map[string]struct{ line, want string }{
		"plaintext":   {"alice:alice-Secret-1", "plaintext"},
		"DES crypt":   {"alice:rqXexS6ZhobKA", "DES"},
		"apr1 MD5":    {"alice:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/", "$apr1$"},
		"MD5 crypt":   {"alice:$1$saltsalt$qjXMvbEw8oaL.CzflDugX/", "MD5"},
		"SHA1":        {"alice:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=", "SHA-1"},
		"empty hash":  {"alice:", "empty hash"},
		"no colon":    {"alice", "no ':'"},
		"bad bcrypt":  {"alice:$2y$10$short", "bcrypt"},
		"bad sha":     {"alice:$6$salt$short", "SHA-crypt"},
		"argon2":      {"alice:$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA", "unsupported"},
		"space login": {" alice:" + shaCryptHash(t, '5', "x", "s", 1000), "spaces"},
		"case dup":    {"alice:" + bcryptHash(t, "a") + "\nAlice:" + bcryptHash(t, "b"), "already appears on line 3"},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "htpasswd")
			content := "# comment\nbob:" + bcryptHash(t, "bob-pw") + "\n" + tc.line + "\n"
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Open(path, nil)
			if err == nil {
				t.Fatalf("Open accepted %q", tc.line)
			}
			msg := err.Error()
			if !strings.Contains(msg, "line 3") || !strings.Contains(msg, tc.want) {
				t.Errorf("error %q does not name line 3 and %q", msg, tc.want)
			}
			if _, h, ok := strings.Cut(tc.line, ":"); ok && len(h) > 8 && strings.Contains(msg, h) {
				t.Errorf("error %q contains the hash", msg)
			}
		})
	}
}

func TestReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "htpasswd")
	write := func(content string) {
		t.Helper()
		// Written in place (same inode) on purpose; the size changes.
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	alice := "alice:" + bcryptHash(t, "alice-pw") + "\n"
	write(alice)
	clk := testkit.NewClock(time.Now())
	d, err := Open(path, &Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := d.LookupUser(ctx, "bob"); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("bob before he is added: %v", err)
	}

	write(alice + "bob:" + bcryptHash(t, "bob-pw") + "\n")
	if _, err := d.LookupUser(ctx, "bob"); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("file read again before CheckInterval passed: %v", err)
	}
	clk.Add(time.Second)
	if _, err := d.VerifyPassword(ctx, "bob", "bob-pw"); err != nil {
		t.Fatalf("bob after reload: %v", err)
	}

	// An invalid file fails closed: no login at all, ErrUnavailable.
	write(alice + "bob:bob-pw\n")
	clk.Add(time.Second)
	if _, err := d.VerifyPassword(ctx, "alice", "alice-pw"); !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("alice with an invalid file: %v, want ErrUnavailable", err)
	}
	if _, err := d.LookupUser(ctx, "alice"); !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("lookup with an invalid file: %v, want ErrUnavailable", err)
	}

	// Fixed with SetPassword (atomic replace: a new inode).
	write(alice)
	if err := SetPassword(path, "Bob", "bob-new", bcrypt.MinCost); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Second)
	if _, err := d.VerifyPassword(ctx, "bob", "bob-new"); err != nil {
		t.Fatalf("bob after SetPassword: %v", err)
	}

	// A deleted file: every login refused as unavailable, then back.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Second)
	if _, err := d.LookupUser(ctx, "alice"); !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("lookup with the file gone: %v, want ErrUnavailable", err)
	}
	write(alice)
	clk.Add(time.Second)
	if _, err := d.VerifyPassword(ctx, "alice", "alice-pw"); err != nil {
		t.Fatalf("alice after the file is back: %v", err)
	}
}

func TestSetPassword(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "htpasswd")
	ctx := t.Context()
	if err := SetPassword(path, "zoë o'brien", "pw-1", bcrypt.MinCost); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("new file has mode %v, want 0600", st.Mode().Perm())
	}
	// Existing content kept, including comments and a disabled user.
	old, _ := os.ReadFile(path)
	dave := "!" + bcryptHash(t, "dave-pw")
	content := "# keep me\n" + string(old) + "dave:" + dave + "\n"
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := SetPassword(path, "ZOË O'BRIEN", "pw-2", bcrypt.MinCost); err != nil {
		t.Fatal(err)
	}
	if err := SetPassword(path, "dave", "dave-new", bcrypt.MinCost); err != nil {
		t.Fatal(err)
	}
	if err := SetPassword(path, "alice", "alice-pw", bcrypt.MinCost); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 4 || lines[0] != "# keep me" || !strings.HasPrefix(lines[1], "zoë o'brien:$2a$") ||
		!strings.HasPrefix(lines[2], "dave:!$2a$") || !strings.HasPrefix(lines[3], "alice:$2a$") {
		t.Errorf("file after updates:\n%s", data)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("rewritten file has mode %v, want 0600", st.Mode().Perm())
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".htpasswd.tmp*")); len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
	d, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if u, err := d.VerifyPassword(ctx, "zoë o'brien", "pw-2"); err != nil || u.Login != "zoë o'brien" {
		t.Errorf("zoë with the new password: %+v, %v", u, err)
	}
	if _, err := d.VerifyPassword(ctx, "zoë o'brien", "pw-1"); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("zoë with the old password: %v", err)
	}
	if _, err := d.VerifyPassword(ctx, "dave", "dave-new"); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("dave stayed disabled? %v", err)
	}

	for _, bad := range [][2]string{{"", "pw"}, {"a:b", "pw"}, {"a\nb", "pw"}, {" a", "pw"}, {"a", ""}, {"a", strings.Repeat("x", 73)}} {
		if err := SetPassword(path, bad[0], bad[1], bcrypt.MinCost); err == nil {
			t.Errorf("SetPassword(%q, %q) accepted", bad[0], bad[1])
		}
	}
	after, _ := os.ReadFile(path)
	if string(after) != string(data) {
		t.Error("a refused SetPassword changed the file")
	}
}

func TestRemoveUser(t *testing.T) {
	path := filepath.Join(t.TempDir(), "htpasswd")
	content := "# keep me\nalice:" + bcryptHash(t, "a") + "\nBob:" + bcryptHash(t, "b") + "\ncarol:" + bcryptHash(t, "c")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := RemoveUser(path, "bob"); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if want := strings.Replace(content, "Bob:"+strings.Split(strings.Split(content, "Bob:")[1], "\n")[0]+"\n", "", 1); string(data) != want {
		t.Errorf("after removing bob:\n%s\nwant:\n%s", data, want)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	if err := RemoveUser(path, "bob"); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("removing bob again: %v, want ErrNotFound", err)
	}
	if err := RemoveUser(path, "carol"); err != nil {
		t.Fatal(err)
	}
	d, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for login, want := range map[string]error{"alice": nil, "bob": auth.ErrNotFound, "carol": auth.ErrNotFound} {
		if _, err := d.LookupUser(t.Context(), login); !errors.Is(err, want) {
			t.Errorf("LookupUser(%s): %v, want %v", login, err, want)
		}
	}
}

// TestUnknownUserHashes checks that an unknown login is checked against a
// real entry's hash (same cost as a wrong password) yet never accepted,
// even with that entry's password.
func TestUnknownUserHashes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "htpasswd")
	os.WriteFile(path, []byte("alice:"+bcryptHash(t, "pw")+"\n"), 0o600)
	d, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.snap.Load().decoy(d.decoyKey, "mallory") == nil {
		t.Fatal("no decoy entry: unknown logins would return faster")
	}
	if _, err := d.VerifyPassword(t.Context(), "mallory", "pw"); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Fatalf("unknown user with the decoy's password: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("alice:$2y$04$abcdefghijklmnopqrstuu5Xq9p5ThEL6Zt0vlLdE4F0nmjHB0D1m\n# c\n\nbob:$5$salt$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5\r\n"))
	f.Add([]byte("x:!$6$rounds=1000$x$JUgHESfT/mKR2X.Qz/PrkEgBINN.wbH/GsJhhFRcgrb0a4MjVYFixxXtKicccBbv9PSG/n1kVdpVqZiR7Brv1."))
	f.Add([]byte("a:plain\nA:$apr1$x$y"))
	f.Add([]byte("zoë o'brien:$5$rounds=5000$s$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"))
	f.Fuzz(func(t *testing.T, data []byte) {
		users, err := parse(data)
		if err != nil {
			if users != nil {
				t.Fatal("users returned with an error")
			}
			return
		}
		for k, e := range users {
			if k != fold(e.login) || checkLogin(e.login) != nil {
				t.Fatalf("entry %q under key %q", e.login, k)
			}
			if (e.sha == nil) == (e.bcrypt == nil) {
				t.Fatalf("entry %q has no hash or two", e.login)
			}
			// What the library decoded, encoded again, passes the same
			// checks (among them the rounds cap).
			if e.sha != nil {
				if _, err := parseShaCrypt(e.sha.Encode()); err != nil {
					t.Fatalf("entry %q decoded as a hash that is refused: %v", e.login, err)
				}
			}
		}
	})
}

// TestDecoyPerLogin: in a file whose hashes differ in cost (bcrypt 4 and
// 10 here, as `htpasswd -B` and SetPassword write them), unknown logins are
// checked against either, each login always against the same one, so no
// single "unknown" timing stands out.
func TestDecoyPerLogin(t *testing.T) {
	path := filepath.Join(t.TempDir(), "htpasswd")
	os.WriteFile(path, []byte("cheap:"+bcryptHash(t, "pw")+"\ncostly:$2y$10$abcdefghijklmnopqrstuu5Xq9p5ThEL6Zt0vlLdE4F0nmjHB0D1m\n"), 0o600)
	d, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := d.snap.Load()
	used := map[string]bool{}
	for i := range 64 {
		login := fmt.Sprint("unknown", i)
		e := s.decoy(d.decoyKey, login)
		if e != s.decoy(d.decoyKey, login) {
			t.Fatalf("%s: a different decoy each time", login)
		}
		used[e.login] = true
	}
	if len(used) != 2 {
		t.Errorf("64 unknown logins used decoys %v; want both entries", used)
	}
}

// TestUsers: Users lists every user of the file in file order, disabled
// ones marked, and fails closed once the file is invalid.
func TestUsers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "htpasswd")
	content := "# comment\ncarol:" + bcryptHash(t, "c") + "\nalice:!" + bcryptHash(t, "a") + "\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(0, 0)
	d, err := Open(path, &Options{CheckInterval: time.Nanosecond, Now: func() time.Time { now = now.Add(time.Second); return now }})
	if err != nil {
		t.Fatal(err)
	}
	users, err := d.Users(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 2 || users[0].Login != "carol" || users[0].Disabled || users[1].Login != "alice" || !users[1].Disabled {
		t.Fatalf("Users = %+v %+v, want carol, then alice disabled", users[0], users[1])
	}
	if err := os.WriteFile(path, []byte("not an htpasswd line at all\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Users(t.Context()); !errors.Is(err, auth.ErrUnavailable) {
		t.Errorf("Users on an invalid file: %v, want ErrUnavailable", err)
	}
}

// TestBcryptCostCap: bcrypt costs above 17, the most `htpasswd -C` writes,
// are refused when the file is read, as SHA-crypt rounds above 10,000,000
// are: at cost 31 one check takes days, and an unknown login may be checked
// against that entry (its decoy), so anyone could stall sign-ins with it.
func TestBcryptCostCap(t *testing.T) {
	const rest = "$abcdefghijklmnopqrstuu5Xq9p5ThEL6Zt0vlLdE4F0nmjHB0D1m"
	for cost, ok := range map[string]bool{"04": true, "17": true, "18": false, "31": false} {
		if _, err := parse([]byte("alice:$2y$" + cost + rest + "\n")); (err == nil) != ok {
			t.Errorf("bcrypt cost %s: %v, accepted %v", cost, err, ok)
		} else if err != nil && !strings.Contains(err.Error(), "cost") {
			t.Errorf("bcrypt cost %s: %v, want the cost named", cost, err)
		}
	}
}

// TestFileSizeBoundWhenStatSaysNothing: the bound on the file read holds
// for a path whose size stat does not tell (a pipe, a device such as
// /dev/zero given by mistake, a file still growing): Open refuses it
// instead of reading on.
func TestFileSizeBoundWhenStatSaysNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "htpasswd")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skip("no named pipes here:", err)
	}
	done := make(chan error, 1)
	go func() {
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			done <- err
			return
		}
		defer f.Close()
		// Valid content beyond the bound: comments, then one user.
		line := []byte("#" + strings.Repeat("x", 1<<16-2) + "\n")
		for written := 0; written <= maxFileSize; written += len(line) {
			if _, err := f.Write(line); err != nil {
				done <- nil // the reader stopped: what the bound asks
				return
			}
		}
		_, err = f.Write([]byte("alice:" + bcryptHash(t, "pw") + "\n"))
		done <- err
	}()
	_, err := Open(path, nil)
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Open read more than %d bytes: %v", maxFileSize, err)
	}
	<-done
}

// TestSetPasswordCommentLogin: a login starting with "#" would be written
// as a comment line: SetPassword refuses it rather than report a user set
// that the file does not hold.
func TestSetPasswordCommentLogin(t *testing.T) {
	path := filepath.Join(t.TempDir(), "htpasswd")
	if err := SetPassword(path, "#ops", "ops-pw", bcrypt.MinCost); err == nil {
		d, err := Open(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = d.VerifyPassword(t.Context(), "#ops", "ops-pw")
		t.Errorf("SetPassword(%q) succeeded, and the file does not hold it: VerifyPassword = %v", "#ops", err)
	}
}

// TestReloadSameSecond: a file changed in place, to the same size, within
// the timestamp granularity of its filesystem (a second on ext3, two on
// FAT; simulated here by setting the modification time back) after it was
// read, as a new password of the same length written by `htpasswd -b`
// is: the change is still read, and the old password stops working.
func TestReloadSameSecond(t *testing.T) {
	path := filepath.Join(t.TempDir(), "htpasswd")
	tick := time.Now().Truncate(time.Second) // what a coarse filesystem records
	write := func(password string) {
		t.Helper()
		if err := os.WriteFile(path, []byte("alice:"+bcryptHash(t, password)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, tick, tick); err != nil {
			t.Fatal(err)
		}
	}
	write("old-pw")
	clk := testkit.NewClock(time.Now())
	d, err := Open(path, &Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	write("new-pw") // same size, same recorded time
	clk.Add(time.Second)
	if _, err := d.VerifyPassword(t.Context(), "alice", "old-pw"); err == nil {
		t.Error("the old password still works after the file changed")
	}
	if _, err := d.VerifyPassword(t.Context(), "alice", "new-pw"); err != nil {
		t.Errorf("the new password: %v", err)
	}
}
