//go:build unix

package sqlstore_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/backends/sqlstore"
)

// holdPendingEnv names the file whose PENDING lock byte this test binary,
// started again by holdPending, holds.
const holdPendingEnv = "APPAUTH_TEST_HOLD_SQLITE_PENDING"

func init() {
	if path := os.Getenv(holdPendingEnv); path != "" {
		os.Exit(holdPendingLock(path))
	}
}

// holdPendingLock takes the write lock on SQLite's PENDING byte of path,
// says "locked" on stdout and keeps it until stdin closes.
func holdPendingLock(path string) int {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		return 1
	}
	const pendingByte = 0x40000000 // SQLite's os_unix.c PENDING_BYTE
	lock := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: io.SeekStart, Start: pendingByte, Len: 1}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_SETLKW, &lock); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		return 1
	}
	os.Stdout.WriteString("locked\n")
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// holdPending makes another process hold path's PENDING lock, as one on
// its way to an exclusive lock does: SQLite then refuses new readers their
// shared lock (SQLITE_BUSY) until release. POSIX locks belong to a
// process, so it cannot be this one: it is this test binary again.
func holdPending(t *testing.T, path string) (release func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holdPendingEnv+"="+path)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(stdout).ReadString('\n'); line != "locked\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("lock holder: %q, %v", line, err)
	}
	release = sync.OnceFunc(func() {
		stdin.Close()
		cmd.Wait()
	})
	t.Cleanup(release)
	return release
}

// openLockable opens a SQLite Store whose every call takes a new
// connection (the lock refuses only new readers) and stores a credential.
func openLockable(t *testing.T) (string, *sqlstore.Store, *auth.StoredCredential) {
	path := filepath.Join(t.TempDir(), "appauth.db")
	s, err := sqlstore.OpenSQLite(t.Context(), path, &sqlstore.Options{ConnMaxLifetime: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	c := newCredential("alice")
	if err := s.CreateCredential(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	return path, s, c
}

// TestSQLiteCallsEndAtTheirDeadlineWhileLocked: while another process
// holds a lock that refuses new readers, a call ends at its context's
// deadline with ErrUnavailable, not after a busy timeout of the Store's
// own (a lookup waited 1 s, any other call 10 s).
func TestSQLiteCallsEndAtTheirDeadlineWhileLocked(t *testing.T) {
	path, s, c := openLockable(t)
	holdPending(t, path)
	for _, call := range []struct {
		name string
		f    func(context.Context) error
	}{
		{"CredentialByHash", func(ctx context.Context) error { _, err := s.CredentialByHash(ctx, c.Hash); return err }},
		{"Credential", func(ctx context.Context) error { _, err := s.Credential(ctx, c.UserID, c.ID); return err }},
		{"CreateCredential", func(ctx context.Context) error { return s.CreateCredential(ctx, newCredential("bob")) }},
	} {
		const deadline = 100 * time.Millisecond
		ctx, cancel := context.WithTimeout(t.Context(), deadline)
		err, took := within(t, 20*time.Second, call.name+" while locked", func() error { return call.f(ctx) })
		cancel()
		if !errors.Is(err, auth.ErrUnavailable) {
			t.Errorf("%s while locked: %v, want ErrUnavailable", call.name, err)
		}
		if took > deadline+400*time.Millisecond {
			t.Errorf("%s while locked took %s, its deadline was %s", call.name, took, deadline)
		}
	}
}

// TestSQLiteLookupWaitsOutALock: a lookup waits for a lock as long as its
// context allows, not only for a busy timeout of its own (1 s before).
func TestSQLiteLookupWaitsOutALock(t *testing.T) {
	path, s, c := openLockable(t)
	release := holdPending(t, path)
	const held = 1500 * time.Millisecond
	time.AfterFunc(held, release)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var got *auth.StoredCredential
	err, took := within(t, 20*time.Second, "a lookup while locked", func() (err error) {
		got, err = s.CredentialByHash(ctx, c.Hash)
		return err
	})
	if err != nil {
		t.Fatalf("lookup while a lock is held for %s, with 10 s to wait: %v (after %s)", held, err, took)
	}
	if got.ID != c.ID {
		t.Errorf("found %s, want %s", got.ID, c.ID)
	}
	if took < held-100*time.Millisecond {
		t.Errorf("answered after %s, while the lock was held for %s: the test's lock did not hold", took, held)
	}
}
