package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/httpauth"
	"github.com/appauth/appauth/backends/htpasswd"
	"github.com/appauth/appauth/backends/sqlstore"
)

// TestRemoveUser: -remove-user revokes the user's app passwords and
// sessions, archives their data (also an older version's login-named
// folder) and removes them from the users file, so a user added again
// under the same name (the same ID, with htpasswd) starts with nothing.
func TestRemoveUser(t *testing.T) {
	ctx := t.Context()
	data := t.TempDir()
	cfg := &config{data: data, users: filepath.Join(data, "users.htpasswd"), pepperFile: filepath.Join(data, "pepper"), logLevel: "info"}
	for _, login := range []string{"bob", "carol"} {
		if err := htpasswd.SetPassword(cfg.users, login, "a long password", 4); err != nil {
			t.Fatal(err)
		}
	}
	if err := makePrivateDir(data); err != nil {
		t.Fatal(err)
	}
	fresh, err := sqlstore.OpenSQLite(ctx, filepath.Join(data, "appauth.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	peppers, err := createPepperFile(ctx, cfg.pepperFile, fresh) // as the first start does
	fresh.Close()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := htpasswd.Open(cfg.users, nil)
	if err != nil {
		t.Fatal(err)
	}
	withManager := func(f func(m *auth.Manager)) {
		t.Helper()
		store, err := sqlstore.OpenSQLite(ctx, filepath.Join(data, "appauth.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		m, err := auth.NewManager(store, dir, &auth.Options{Peppers: peppers})
		if err != nil {
			t.Fatal(err)
		}
		f(m)
		m.Close()
		store.Close()
	}
	withManager(func(m *auth.Manager) {
		for _, login := range []string{"bob", "carol"} {
			u, err := dir.LookupUser(ctx, login)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := m.IssueAppPassword(ctx, u, auth.IssueRequest{Name: "phone"}); err != nil {
				t.Fatal(err)
			}
			if _, _, err := m.CreateSession(ctx, u, "127.0.0.1", "test"); err != nil {
				t.Fatal(err)
			}
		}
	})
	// bob's data in an older version's login-named folder.
	legacy := filepath.Join(data, "dav", "bob", "files")
	if err := os.MkdirAll(legacy, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(legacy, "secret.txt"), []byte("BOBSECRET"), 0o600); err != nil {
		t.Fatal(err)
	}

	var stdout, stderr bytes.Buffer
	if code := run([]string{"-data", data, "-remove-user", "nobody"}, nil, &stdout, &stderr, noEnv); code == 0 || !strings.Contains(stderr.String(), "no such user") {
		t.Errorf("-remove-user of an unknown user: exit %d, %s", code, stderr.String())
	}
	if code := run([]string{"-data", data}, nil, &stdout, &stderr, func(k string) string {
		if k == "APPAUTH_REMOVE_USER" {
			return "bob"
		}
		return ""
	}); code != 2 {
		t.Errorf("APPAUTH_REMOVE_USER: exit %d, want 2 (a command only on the command line)", code)
	}
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"-data", data, "-remove-user", "bob"}, nil, &stdout, &stderr, noEnv); code != 0 {
		t.Fatalf("-remove-user bob: exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "revoked 1 app passwords and 1 sessions") || !strings.Contains(stdout.String(), "archived") {
		t.Errorf("output: %s", stdout.String())
	}
	archives, _ := filepath.Glob(filepath.Join(data, "dav", ".archive", "*", "files", "secret.txt"))
	if len(archives) != 1 {
		t.Errorf("archived data: %v", archives)
	}
	if d, err := htpasswd.Open(cfg.users, nil); err != nil {
		t.Fatal(err)
	} else if _, err := d.LookupUser(ctx, "bob"); err == nil {
		t.Error("bob is still in the users file")
	}
	withManager(func(m *auth.Manager) {
		for login, want := range map[string]int{"bob": 0, "carol": 1} {
			aps, err := m.ListAppPasswords(ctx, login)
			if err != nil || len(aps) != want {
				t.Errorf("%s's app passwords: %d, %v; want %d", login, len(aps), err, want)
			}
			ss, err := m.ListSessions(ctx, login)
			if err != nil || len(ss) != want {
				t.Errorf("%s's sessions: %d, %v; want %d", login, len(ss), err, want)
			}
		}
	})

	// bob added again: nothing of the old bob's.
	if err := htpasswd.SetPassword(cfg.users, "bob", "another long password", 4); err != nil {
		t.Fatal(err)
	}
	if dir, err = htpasswd.Open(cfg.users, nil); err != nil {
		t.Fatal(err)
	}
	u, err := dir.LookupUser(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	dav, err := openDAV(ctx, cfg, dir, newLogger(cfg, &stderr))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/dav/files/bob/secret.txt"} {
		r := httptest.NewRequestWithContext(httpauth.ContextWithPrincipal(context.Background(), &auth.Principal{User: *u}), "GET", path, nil)
		w := httptest.NewRecorder()
		dav.ServeHTTP(w, r)
		if w.Code != http.StatusNotFound || strings.Contains(w.Body.String(), "BOBSECRET") {
			t.Errorf("the new bob GET %s: %d %q, want 404", path, w.Code, w.Body)
		}
	}
}
