package sqlstore_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/backends/sqlstore"
	"github.com/appauth/appauth/internal/testenv"
)

// TestSQLiteFilesAreMode0600: a new database and its -wal and -shm files
// are readable by their owner only, whatever the umask.
func TestSQLiteFilesAreMode0600(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	path := filepath.Join(t.TempDir(), "appauth.db")
	store := mustOpen(t, sqlstore.OpenSQLite, path)
	m := newManager(t, store, nil)
	if _, _, err := m.IssueAppPassword(t.Context(), alice, auth.IssueRequest{Name: "phone"}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if mode := fi.Mode().Perm(); mode != 0o600 {
			t.Errorf("%s: mode %o, want 600", filepath.Base(name), mode)
		}
	}
}

// TestSQLiteDiskFull puts the database on a 1 MiB tmpfs and fills it: an
// issue that cannot be written is ErrUnavailable (503), not an internal
// error, and verifying what is stored still works.
func TestSQLiteDiskFull(t *testing.T) {
	dir := tinyFS(t)
	store := mustOpen(t, sqlstore.OpenSQLite, filepath.Join(dir, "appauth.db"))
	m := newManager(t, store, func(o *auth.Options) { o.CacheSize = -1 })
	ctx := t.Context()
	_, secret, err := m.IssueAppPassword(ctx, alice, auth.IssueRequest{Name: "before"})
	if err != nil {
		t.Fatal(err)
	}
	fill(t, dir)
	var last error
	for i := range 50 { // the WAL may hold a few more pages
		if _, _, last = m.IssueAppPassword(ctx, alice, auth.IssueRequest{Name: "after"}); last != nil {
			break
		}
		_ = i
	}
	if !errors.Is(last, auth.ErrUnavailable) {
		t.Fatalf("issue on a full disk: %v, want ErrUnavailable", last)
	}
	if _, err := m.Authenticate(ctx, auth.Attempt{Username: "alice", Password: secret}); err != nil {
		t.Fatalf("verify on a full disk: %v", err)
	}
}

// tinyFS mounts a 1 MiB tmpfs for the test (root only).
func tinyFS(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		if testenv.Strict() {
			t.Fatal("mounting a tiny tmpfs needs root")
		}
		t.Skip("mounting a tiny tmpfs needs root; run `make test` as root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		if testenv.Strict() {
			t.Fatalf("mount tmpfs: %v: %s", err, out)
		}
		t.Skipf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fill writes a file in dir until the file system is full.
func fill(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
	}
}
