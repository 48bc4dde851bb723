package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
)

// stalledDirectory is a directory that cannot answer: each lookup takes
// its time, then fails as unavailable (a hung LDAP behind its deadline).
type stalledDirectory struct {
	calls atomic.Int32
	delay time.Duration
}

func (d *stalledDirectory) LookupUser(ctx context.Context, login string) (*auth.User, error) {
	d.calls.Add(1)
	select {
	case <-time.After(d.delay):
	case <-ctx.Done():
	}
	return nil, fmt.Errorf("ldap: %w: no answer", auth.ErrUnavailable)
}

// TestMigrationStopsAtAnOutage: at start, the login-named folders of older
// versions are looked up in the directory one by one; once the directory is
// unavailable, the rest wait for the next start instead of costing a
// lookup deadline each (with a hung LDAP, minutes or hours before the
// server answers).
func TestMigrationStopsAtAnOutage(t *testing.T) {
	cfg := &config{data: t.TempDir()}
	for _, login := range []string{"alice", "bob", "carol", "dave", "erin"} {
		if err := os.MkdirAll(filepath.Join(cfg.data, "dav", login, "files"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	dir := &stalledDirectory{delay: 200 * time.Millisecond}
	if _, err := openDAV(t.Context(), cfg, dir, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	if n := dir.calls.Load(); n != 1 {
		t.Errorf("%d lookups of an unavailable directory at start, want 1", n)
	}
	for _, login := range []string{"alice", "erin"} {
		if _, err := os.Stat(filepath.Join(cfg.data, "dav", login, "files")); err != nil {
			t.Errorf("%s's folder not left as is: %v", login, err)
		}
	}
}
