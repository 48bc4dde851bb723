package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/backends/htpasswd"
	"github.com/appauth/appauth/backends/sqlstore"
	"github.com/appauth/appauth/internal/testenv"
	"github.com/appauth/appauth/internal/testkit"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/admin")

// adminNow is the admin commands' clock in the tests, so that snapshots
// and -unused-for are stable.
var adminNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// adminFixture is a data folder as the server leaves it: a users file
// (alice, bob, carol), a pepper file and a store (SQLite in the folder, or
// a fresh PostgreSQL database) holding known credentials.
type adminFixture struct {
	data, dsn string
	env       map[string]string
}

func (f *adminFixture) getenv(name string) string { return f.env[name] }

// openStore opens the fixture's store, closed at the test's end.
func (f *adminFixture) openStore(t *testing.T) *sqlstore.Store {
	t.Helper()
	var s *sqlstore.Store
	var err error
	if f.dsn != "" {
		s, err = sqlstore.OpenPostgres(t.Context(), f.dsn, nil)
	} else {
		s, err = sqlstore.OpenSQLite(t.Context(), filepath.Join(f.data, "appauth.db"), nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// manager opens a Manager as the server would, with the pepper file as it
// is now.
func (f *adminFixture) manager(t *testing.T) *auth.Manager {
	t.Helper()
	peppers, _, err := loadPeppers(filepath.Join(f.data, "pepper"))
	if err != nil {
		t.Fatal(err)
	}
	dir, err := htpasswd.Open(filepath.Join(f.data, "users.htpasswd"), nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := auth.NewManager(f.openStore(t), dir, &auth.Options{Peppers: peppers, CacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// day is a time relative to adminNow, in days.
func day(n float64) time.Time { return adminNow.Add(time.Duration(n * 24 * float64(time.Hour))) }

// fixtureCredentials are the stored credentials of every fixture. Hashes
// are SHA-256 of the ID: distinct, and searchable in the output.
func fixtureCredentials() []*auth.StoredCredential {
	cs := []*auth.StoredCredential{
		{ID: "ap-alice-phone", Kind: auth.KindAppPassword, UserID: "alice", Login: "alice", Name: "Alice's iPhone",
			Scopes: []string{auth.ScopeCalendars, auth.ScopeContacts}, Hint: "k3x9", CreatedAt: day(-507),
			LastUsedAt: day(-1), LastUsedAddr: "192.0.2.10", LastUsedClient: "iOS/17.4 dataaccessd"},
		{ID: "ap-alice-old", Kind: auth.KindAppPassword, UserID: "alice", Login: "alice", Name: "Old laptop",
			Hint: "7pqr", CreatedAt: day(-800), LastUsedAt: day(-547), LastUsedAddr: "198.51.100.7",
			LastUsedClient: "Thunderbird\x1b[31m\tforged"}, // a hostile User-Agent
		{ID: "ap-bob-tablet", Kind: auth.KindAppPassword, UserID: "bob", Login: "bob", Name: "Tablet",
			Scopes: []string{auth.ScopeFiles}, Hint: "mn42", CreatedAt: day(-147)},
		{ID: "ap-dave-nas", Kind: auth.KindAppPassword, UserID: "dave", Login: "dave", Name: "NAS backup",
			Hint: "zz10", CreatedAt: day(-485), LastUsedAt: day(-457), LastUsedAddr: "203.0.113.5",
			LastUsedClient: "rclone/v1.66", ExpiresAt: day(214)},
		{ID: "se-alice-firefox", Kind: auth.KindSession, UserID: "alice", Login: "alice", Name: "Firefox",
			CreatedAt: day(-2), AuthenticatedAt: day(-2), LastUsedAt: day(-1.0 / 24), LastUsedAddr: "192.0.2.10",
			LastUsedClient: "Mozilla/5.0 Firefox/126.0", ExpiresAt: day(28)},
		{ID: "se-bob-old", Kind: auth.KindSession, UserID: "bob", Login: "bob", Name: "Chrome",
			CreatedAt: day(-516), AuthenticatedAt: day(-516), LastUsedAt: day(-515), LastUsedAddr: "192.0.2.77",
			LastUsedClient: "Mozilla/5.0 Chrome/120.0", ExpiresAt: day(30)},
	}
	for _, c := range cs {
		h := sha256.Sum256([]byte(c.ID))
		c.Hash, c.KeyID = h[:], "1"
	}
	return cs
}

// newAdminFixture makes a fixture on "sqlite" or "postgres".
func newAdminFixture(t *testing.T, backend string) *adminFixture {
	t.Helper()
	ctx := t.Context()
	f := &adminFixture{data: t.TempDir()}
	f.env = map[string]string{"APPAUTH_DATA": f.data, "APPAUTH_LOG_LEVEL": "info"}
	if backend == "postgres" {
		f.dsn = testenv.Postgres(t)
		f.env["APPAUTH_POSTGRES"] = f.dsn
	}
	if err := makePrivateDir(f.data); err != nil {
		t.Fatal(err)
	}
	for _, login := range []string{"alice", "bob", "carol"} {
		if err := htpasswd.SetPassword(filepath.Join(f.data, "users.htpasswd"), login, "a long password", 4); err != nil {
			t.Fatal(err)
		}
	}
	store := f.openStore(t)
	if _, err := createPepperFile(ctx, filepath.Join(f.data, "pepper"), store); err != nil {
		t.Fatal(err)
	}
	for _, c := range fixtureCredentials() {
		if err := store.CreateCredential(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// cli runs an admin command on f with the fixed clock.
func (f *adminFixture) cli(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	// Safe for concurrent writers: the store's change listener logs from
	// its own goroutine.
	var out, errOut testkit.Buffer
	code = runAdmin(t.Context(), args, &adminEnv{stdout: &out, stderr: &errOut, getenv: f.getenv, now: func() time.Time { return adminNow }})
	return code, out.String(), errOut.String()
}

// mustCLI runs an admin command that must succeed and returns its output.
func (f *adminFixture) mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := f.cli(t, args...)
	if code != 0 {
		t.Fatalf("davserver %s: exit %d, stderr:\n%s", strings.Join(args, " "), code, errOut)
	}
	return out
}

// ids returns the IDs of the stored credentials of kind.
func ids(t *testing.T, s *sqlstore.Store, kind auth.Kind) string {
	t.Helper()
	creds, err := s.AllCredentials(t.Context(), kind)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range creds {
		out = append(out, c.ID)
	}
	return strings.Join(out, " ")
}

var backends = []string{"sqlite", "postgres"}

// TestAdminGolden: the listing commands' tables and JSON, on SQLite and
// PostgreSQL alike, match the snapshots in testdata/admin (go test -run
// TestAdminGolden -update rewrites them).
func TestAdminGolden(t *testing.T) {
	commands := []struct {
		golden string
		args   []string
	}{
		{"app-passwords-list.txt", []string{"app-passwords", "list"}},
		{"app-passwords-list.json", []string{"app-passwords", "list", "-json"}},
		{"app-passwords-list-unused-90d.txt", []string{"app-passwords", "list", "-unused-for", "90d"}},
		{"app-passwords-list-alice.txt", []string{"app-passwords", "list", "-user", "ALICE"}},
		{"app-passwords-purge-dry-run.txt", []string{"app-passwords", "purge", "-unused-for", "365d", "-dry-run"}},
		{"app-passwords-purge-dry-run.json", []string{"app-passwords", "purge", "-unused-for", "365d", "-dry-run", "-json"}},
		{"sessions-list.txt", []string{"sessions", "list"}},
		{"sessions-list.json", []string{"sessions", "list", "-json"}},
		{"users-list.txt", []string{"users", "list"}},
		{"users-list.json", []string{"users", "list", "-json"}},
		{"pepper-list.txt", []string{"pepper", "list"}},
		{"pepper-list.json", []string{"pepper", "list", "-json"}},
	}
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			f := newAdminFixture(t, backend)
			for _, c := range commands {
				got := f.mustCLI(t, c.args...)
				path := filepath.Join("testdata", "admin", c.golden)
				if *update && backend == "sqlite" {
					if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run with -update to create it)", err)
				}
				if got != string(want) {
					t.Errorf("davserver %s: output differs from %s:\n%s\nwant:\n%s", strings.Join(c.args, " "), path, got, want)
				}
				if strings.HasSuffix(c.golden, ".json") && !json.Valid([]byte(got)) {
					t.Errorf("davserver %s: not valid JSON", strings.Join(c.args, " "))
				}
			}
			// The dry run revoked nothing.
			if got, want := ids(t, f.openStore(t), auth.KindAppPassword), "ap-alice-old ap-alice-phone ap-bob-tablet ap-dave-nas"; got != want {
				t.Errorf("after the dry run: %s, want %s", got, want)
			}
		})
	}
}

// TestAdminRevoke: revoke -id removes that credential of that user only
// (another user's ID is refused), -all removes all of a user's, each
// revocation is audited, and a revoked app password stops working.
func TestAdminRevoke(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			f := newAdminFixture(t, backend)
			store := f.openStore(t)
			m := f.manager(t)
			u := &auth.User{ID: "alice", Login: "alice"}
			ap, secret, err := m.IssueAppPassword(t.Context(), u, auth.IssueRequest{Name: "Laptop"})
			if err != nil {
				t.Fatal(err)
			}
			attempt := auth.Attempt{Username: "alice", Password: secret, RemoteAddr: "192.0.2.1"}
			if _, err := m.Authenticate(t.Context(), attempt); err != nil {
				t.Fatal(err)
			}

			code, _, errOut := f.cli(t, "app-passwords", "revoke", "-user", "alice", "-id", "ap-bob-tablet")
			if code != 1 || !strings.Contains(errOut, "alice has no app password with ID ap-bob-tablet") {
				t.Errorf("revoking bob's app password as alice's: exit %d, %q; want 1 and a refusal", code, errOut)
			}
			code, out, errOut := f.cli(t, "app-passwords", "revoke", "-user", "alice", "-id", ap.ID)
			if code != 0 || out != "Revoked 1 app password of alice.\n" {
				t.Fatalf("revoke -id: exit %d, %q, stderr %s", code, out, errOut)
			}
			if !strings.Contains(errOut, "auth revoked") || !strings.Contains(errOut, "credential_id="+ap.ID) {
				t.Errorf("revoke -id was not audited; stderr:\n%s", errOut)
			}
			if _, err := m.Authenticate(t.Context(), attempt); !errors.Is(err, auth.ErrInvalidCredentials) {
				t.Errorf("revoked app password: %v, want ErrInvalidCredentials", err)
			}
			if got, want := ids(t, store, auth.KindAppPassword), "ap-alice-old ap-alice-phone ap-bob-tablet ap-dave-nas"; got != want {
				t.Errorf("after revoke -id: %s, want %s", got, want)
			}

			if out := f.mustCLI(t, "app-passwords", "revoke", "-user", "alice", "-all", "-json"); out != "{\n  \"revoked\": 2\n}\n" {
				t.Errorf("revoke -all -json: %q", out)
			}
			if out := f.mustCLI(t, "sessions", "revoke", "-user", "bob", "-all"); out != "Revoked 1 session of bob.\n" {
				t.Errorf("sessions revoke -all: %q", out)
			}
			if got, want := ids(t, store, auth.KindAppPassword), "ap-bob-tablet ap-dave-nas"; got != want {
				t.Errorf("after revoke -all: %s, want %s", got, want)
			}
			if got, want := ids(t, store, auth.KindSession), "se-alice-firefox"; got != want {
				t.Errorf("sessions after revoke -all: %s, want %s", got, want)
			}
		})
	}
}

// TestAdminPurge: purge revokes exactly the credentials unused for the
// given time (never used: since creation), nothing with -dry-run.
func TestAdminPurge(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			f := newAdminFixture(t, backend)
			store := f.openStore(t)
			all := "ap-alice-old ap-alice-phone ap-bob-tablet ap-dave-nas"
			out := f.mustCLI(t, "app-passwords", "purge", "-unused-for", "100d", "-dry-run")
			if !strings.Contains(out, "Dry run: would revoke 3 app passwords unused for 100d.") {
				t.Errorf("dry run said:\n%s", out)
			}
			if got := ids(t, store, auth.KindAppPassword); got != all {
				t.Errorf("after the dry run: %s, want %s", got, all)
			}
			code, out, errOut := f.cli(t, "app-passwords", "purge", "-unused-for", "365d")
			if code != 0 || !strings.Contains(out, "Revoked 2 app passwords unused for 365d.") {
				t.Fatalf("purge: exit %d:\n%s\n%s", code, out, errOut)
			}
			if strings.Count(errOut, "auth revoked") != 2 {
				t.Errorf("purge did not audit each revocation; stderr:\n%s", errOut)
			}
			if got, want := ids(t, store, auth.KindAppPassword), "ap-alice-phone ap-bob-tablet"; got != want {
				t.Errorf("after purge 365d: %s, want %s", got, want)
			}
			// 147 days since bob's tablet was created, never used.
			f.mustCLI(t, "app-passwords", "purge", "-unused-for", "3500h")
			if got, want := ids(t, store, auth.KindAppPassword), "ap-alice-phone"; got != want {
				t.Errorf("after purge 3500h: %s, want %s", got, want)
			}
			f.mustCLI(t, "sessions", "purge", "-unused-for", "1d")
			if got, want := ids(t, store, auth.KindSession), "se-alice-firefox"; got != want {
				t.Errorf("sessions after purge 1d: %s, want %s", got, want)
			}
		})
	}
}

// TestAdminPepperRotateRetire: rotate adds a key that issues new
// credentials while the old one keeps verifying; retire refuses while
// credentials use the key, saying how many, and -force revokes them and
// removes the key.
func TestAdminPepperRotateRetire(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			f := newAdminFixture(t, backend)
			pepperFile := filepath.Join(f.data, "pepper")
			u := &auth.User{ID: "alice", Login: "alice"}
			_, oldSecret, err := f.manager(t).IssueAppPassword(t.Context(), u, auth.IssueRequest{Name: "Old key"})
			if err != nil {
				t.Fatal(err)
			}

			var rep pepperReport
			if err := json.Unmarshal([]byte(f.mustCLI(t, "pepper", "rotate", "-json")), &rep); err != nil {
				t.Fatal(err)
			}
			want := []pepperKeyJSON{{ID: "1", Issues: false, Credentials: 7}, {ID: "2", Issues: true, Credentials: 0}}
			if rep.Added != "2" || len(rep.Keys) != 2 || rep.Keys[0] != want[0] || rep.Keys[1] != want[1] {
				t.Fatalf("rotate reported %+v, want key 2 added and %+v", rep, want)
			}
			if st, _ := os.Stat(pepperFile); st.Mode().Perm() != 0o600 {
				t.Errorf("pepper file mode %v after rotate, want 0600", st.Mode().Perm())
			}
			m := f.manager(t) // a restarted server
			if _, err := m.Authenticate(t.Context(), auth.Attempt{Username: "alice", Password: oldSecret}); err != nil {
				t.Errorf("app password of the old key after rotate: %v", err)
			}
			_, newSecret, err := m.IssueAppPassword(t.Context(), u, auth.IssueRequest{Name: "New key"})
			if err != nil {
				t.Fatal(err)
			}
			counts, err := f.openStore(t).CredentialsByKey(t.Context())
			if err != nil || counts["1"] != 7 || counts["2"] != 1 {
				t.Fatalf("CredentialsByKey after rotate and issue = %v, %v; want 1:7 2:1", counts, err)
			}

			before, _ := os.ReadFile(pepperFile)
			code, _, errOut := f.cli(t, "pepper", "retire", "1")
			if code != 1 || !strings.Contains(errOut, "key 1 still verifies 7 stored credentials") {
				t.Errorf("retire without -force: exit %d, %q; want 1 and the count", code, errOut)
			}
			if code, _, errOut := f.cli(t, "pepper", "retire", "2", "-force"); code != 1 || !strings.Contains(errOut, "key 2 issues new credentials") {
				t.Errorf("retiring the issuing key: exit %d, %q; want 1", code, errOut)
			}
			if after, _ := os.ReadFile(pepperFile); !bytes.Equal(before, after) {
				t.Error("a refused retire changed the pepper file")
			}

			code, out, errOut := f.cli(t, "pepper", "retire", "1", "-force")
			if code != 0 || !strings.Contains(out, "Retired key 1") || !strings.Contains(out, "revoked 7 credentials") {
				t.Fatalf("retire -force: exit %d:\n%s\n%s", code, out, errOut)
			}
			if strings.Count(errOut, "auth revoked") != 7 {
				t.Errorf("retire -force did not audit each revocation; stderr:\n%s", errOut)
			}
			peppers, _, err := loadPeppers(pepperFile)
			if err != nil || len(peppers) != 1 || peppers[0].ID != "2" {
				t.Fatalf("pepper file after retire: %v, %v; want key 2 only", peppers, err)
			}
			m = f.manager(t)
			if _, err := m.Authenticate(t.Context(), auth.Attempt{Username: "alice", Password: oldSecret}); !errors.Is(err, auth.ErrInvalidCredentials) {
				t.Errorf("app password of the retired key: %v, want ErrInvalidCredentials", err)
			}
			if _, err := m.Authenticate(t.Context(), auth.Attempt{Username: "alice", Password: newSecret}); err != nil {
				t.Errorf("app password of the new key after retire: %v", err)
			}
			if err := m.Check(t.Context()); err != nil {
				t.Errorf("Check after retire: %v", err)
			}
		})
	}
}

// TestAdminUsage: a wrong command line exits 2 and changes nothing, -help
// exits 0, a failure exits 1; an APPAUTH_* variable cannot stand in for an
// admin command's own flag (APPAUTH_ALL cannot turn a revoke into -all).
func TestAdminUsage(t *testing.T) {
	f := newAdminFixture(t, "sqlite")
	for _, tc := range []struct {
		code int
		args []string
	}{
		{2, []string{"app-passwords"}},
		{2, []string{"app-passwords", "frobnicate"}},
		{2, []string{"users", "revoke"}},
		{2, []string{"app-passwords", "revoke", "-id", "ap-bob-tablet"}},
		{2, []string{"app-passwords", "revoke", "-user", "bob"}},
		{2, []string{"app-passwords", "revoke", "-user", "bob", "-id", "ap-bob-tablet", "-all"}},
		{2, []string{"app-passwords", "list", "-unused-for", "0d"}},
		{2, []string{"app-passwords", "list", "-unused-for", "ninety"}},
		{2, []string{"app-passwords", "list", "-unused-for", "-5h"}},
		{2, []string{"app-passwords", "list", "-force"}},
		{2, []string{"app-passwords", "purge"}},
		{2, []string{"users", "list", "extra"}},
		{2, []string{"pepper", "retire"}},
		{2, []string{"pepper", "rotate", "-remove-user", "bob"}},
		{0, []string{"app-passwords", "list", "-help"}},
		{0, []string{"pepper", "-help"}},
		{1, []string{"app-passwords", "list", "-data", t.TempDir()}},
		{1, []string{"pepper", "retire", "nosuchkey"}},
	} {
		if code, out, errOut := f.cli(t, tc.args...); code != tc.code {
			t.Errorf("davserver %s: exit %d, want %d\n%s%s", strings.Join(tc.args, " "), code, tc.code, out, errOut)
		}
	}
	f.env["APPAUTH_ALL"] = "true"
	if code, _, _ := f.cli(t, "app-passwords", "revoke", "-user", "bob"); code != 2 {
		t.Errorf("revoke with APPAUTH_ALL set: exit %d, want 2 (the variable must not mean -all)", code)
	}
	if got, want := ids(t, f.openStore(t), auth.KindAppPassword), "ap-alice-old ap-alice-phone ap-bob-tablet ap-dave-nas"; got != want {
		t.Errorf("after the refused commands: %s, want %s", got, want)
	}
	// main's dispatch: run hands an admin noun to the admin commands.
	var out, errOut bytes.Buffer
	if code := run([]string{"sessions", "nope"}, nil, &out, &errOut, f.getenv); code != 2 || !strings.Contains(errOut.String(), `unknown command "nope"`) {
		t.Errorf("run sessions nope: exit %d, %q", code, errOut.String())
	}
}

// TestAdminPrintsNoSecret: no output of any admin command, table or JSON,
// holds a secret, a stored hash (hex or base64) or a pepper key.
func TestAdminPrintsNoSecret(t *testing.T) {
	f := newAdminFixture(t, "sqlite")
	m := f.manager(t)
	u := &auth.User{ID: "carol", Login: "carol"}
	_, apSecret, err := m.IssueAppPassword(t.Context(), u, auth.IssueRequest{Name: "Phone"})
	if err != nil {
		t.Fatal(err)
	}
	_, sessionSecret, err := m.CreateSession(t.Context(), u, "192.0.2.3", "Firefox")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Authenticate(t.Context(), auth.Attempt{Username: "carol", Password: apSecret, RemoteAddr: "192.0.2.3", UserAgent: "DAVx5"}); err != nil {
		t.Fatal(err)
	}
	m.Close() // writes the last use

	var outputs []string
	for _, args := range [][]string{
		{"app-passwords", "list"}, {"sessions", "list"}, {"users", "list"}, {"pepper", "list"},
		{"app-passwords", "purge", "-unused-for", "1d", "-dry-run"}, {"pepper", "rotate"},
		{"pepper", "retire", "1"}, {"sessions", "revoke", "-user", "carol", "-all"},
		{"app-passwords", "purge", "-unused-for", "365d"}, {"app-passwords", "revoke", "-user", "carol", "-all"},
	} {
		for _, j := range []bool{false, true} {
			if j {
				args = append(args, "-json")
			}
			_, out, errOut := f.cli(t, args...)
			outputs = append(outputs, out, errOut)
		}
	}
	secrets := map[string]string{"app password": apSecret, "session secret": sessionSecret}
	creds := fixtureCredentials()
	store := f.openStore(t)
	for _, kind := range []auth.Kind{auth.KindAppPassword, auth.KindSession} {
		cs, err := store.AllCredentials(t.Context(), kind)
		if err != nil {
			t.Fatal(err)
		}
		creds = append(creds, cs...)
	}
	for _, c := range creds {
		secrets["hash of "+c.ID] = hex.EncodeToString(c.Hash)
		secrets["base64 hash of "+c.ID] = base64.StdEncoding.EncodeToString(c.Hash)
		secrets["raw base64 hash of "+c.ID] = base64.RawURLEncoding.EncodeToString(c.Hash)
	}
	peppers, _, err := loadPeppers(filepath.Join(f.data, "pepper"))
	if err != nil || len(peppers) < 2 {
		t.Fatalf("pepper file after rotate: %d keys, %v", len(peppers), err)
	}
	for _, p := range peppers {
		secrets["pepper "+p.ID] = hex.EncodeToString(p.Key)
	}
	for _, out := range outputs {
		for what, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("an output holds the %s:\n%s", what, out)
			}
		}
	}
	if joined := strings.Join(outputs, ""); strings.Contains(joined, "\x1b") {
		t.Error("an output holds a raw escape character from a stored User-Agent")
	}
}
