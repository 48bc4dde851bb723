package main

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/backends/memory"
	"github.com/appauth/appauth/backends/sqlstore"
)

// TestLostPepperFile: with app passwords in the database, a missing pepper
// file is never replaced by a new key (which would lock out every device
// without a word), and a pepper file with another key under the same ID
// stops the start; both errors name the file, the key ID and the count.
func TestLostPepperFile(t *testing.T) {
	data := t.TempDir()
	pepperFile := filepath.Join(data, "pepper")
	// An earlier run issued two app passwords under key "1".
	store, err := sqlstore.OpenSQLite(t.Context(), filepath.Join(data, "appauth.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := auth.NewManager(store, memory.NewDirectory(), &auth.Options{Peppers: []auth.Pepper{{ID: "1", Key: bytes.Repeat([]byte{1}, 32)}}})
	if err != nil {
		t.Fatal(err)
	}
	user := &auth.User{ID: "u-demo", Login: "demo"}
	for _, name := range []string{"phone", "laptop"} {
		if _, _, err := m.IssueAppPassword(t.Context(), user, auth.IssueRequest{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	m.Close()
	store.Close()

	start := func() (int, string) {
		var stdout, stderr bytes.Buffer
		code := run([]string{"-data", data, "-addr", "127.0.0.1:0"}, nil, &stdout, &stderr, noEnv)
		return code, lastLine(stderr.String())
	}
	t.Run("missing", func(t *testing.T) {
		code, msg := start()
		if code == 0 || !strings.Contains(msg, pepperFile) || !strings.Contains(msg, "2 credentials") || !strings.Contains(msg, `"1"`) || !strings.Contains(msg, "restore") {
			t.Errorf("exit %d, error %q; want non-zero, naming the file, 2 credentials, key ID \"1\" and to restore it", code, msg)
		}
		if _, err := os.Stat(pepperFile); err == nil {
			t.Error("a new pepper file was made although the database holds credentials")
		}
	})
	t.Run("another key", func(t *testing.T) {
		if err := os.WriteFile(pepperFile, []byte("1:"+hex.EncodeToString(bytes.Repeat([]byte{2}, 32))+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		code, msg := start()
		if code == 0 || !strings.Contains(msg, pepperFile) || !strings.Contains(msg, "2 stored credentials") || !strings.Contains(msg, `"1"`) {
			t.Errorf("exit %d, error %q; want non-zero, naming the file, key ID \"1\" and 2 credentials", code, msg)
		}
	})
}
