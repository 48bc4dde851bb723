package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/appauth/appauth/internal/testenv"
)

// TestLDAPCheckAtStart: a wrong LDAP setting stops the start with an error
// naming the flag to fix; an LDAP server that is only unreachable is
// logged and the server starts anyway.
func TestLDAPCheckAtStart(t *testing.T) {
	s := testenv.LDAP(t)
	args := func(url, baseDN, filter, password string) []string {
		passFile := filepath.Join(t.TempDir(), "bind-password")
		if err := os.WriteFile(passFile, []byte(password+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		a := []string{"-data", t.TempDir(), "-addr", "127.0.0.1:0", "-ldap-url", url, "-ldap-base-dn", baseDN,
			"-ldap-bind-dn", s.BindDN, "-ldap-bind-password-file", passFile, "-ldap-ca-file", s.CAFile}
		if filter != "" {
			a = append(a, "-ldap-filter", filter)
		}
		return a
	}
	// start runs the server with args until it listens (then stops it)
	// or fails to start, and returns the error and the log.
	start := func(t *testing.T, args []string) (started bool, logs string, err error) {
		t.Helper()
		var stdout bytes.Buffer
		w := &signalWriter{match: "listening", seen: make(chan struct{})}
		cfg, err := parseConfig(args, noEnv, &stdout)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- serve(ctx, cfg, &stdout, w) }()
		select {
		case <-w.seen:
			cancel()
			return true, w.String(), <-done
		case err := <-done:
			return false, w.String(), err
		}
	}
	for name, tc := range map[string]struct {
		args []string
		want []string
	}{
		"wrong bind password":   {args(s.URL, s.BaseDN, "", "not-the-Password-7x"), []string{"-ldap-bind-password-file", "result 49"}},
		"missing base DN":       {args(s.URL, "ou=nowhere,"+s.BaseDN, "", s.BindPassword), []string{"-ldap-base-dn", "result 32"}},
		"filter matches nobody": {args(s.URL, s.BaseDN, "(&(objectClass=device)(cn={login}))", s.BindPassword), []string{"-ldap-filter", "matches no entry"}},
	} {
		t.Run(name, func(t *testing.T) {
			started, _, err := start(t, tc.args)
			if started || err == nil {
				t.Fatalf("started with %s (err %v)", name, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q; want it to name %q", err, w)
				}
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		url := "ldap://" + l.Addr().String()
		l.Close() // nothing listens there now
		started, logs, err := start(t, args(url, s.BaseDN, "", s.BindPassword))
		if !started || err != nil {
			t.Fatalf("the server did not start with an unreachable LDAP server: %v", err)
		}
		if !strings.Contains(logs, "directory is unreachable") {
			t.Errorf("no log line about the unreachable directory in:\n%s", logs)
		}
	})
}

// signalWriter collects log output and closes seen once it holds match.
type signalWriter struct {
	mu    sync.Mutex
	b     bytes.Buffer
	match string
	seen  chan struct{}
	once  sync.Once
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Write(p)
	if strings.Contains(w.b.String(), w.match) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

func (w *signalWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
