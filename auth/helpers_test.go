package auth_test

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/backends/memory"
	"github.com/appauth/appauth/internal/testkit"
)

// countingDirectory wraps a Directory, counting lookups and failing on demand.
type countingDirectory struct {
	*memory.Directory
	lookups atomic.Int64
	down    atomic.Bool
}

func (d *countingDirectory) LookupUser(ctx context.Context, login string) (*auth.User, error) {
	d.lookups.Add(1)
	if d.down.Load() {
		return nil, auth.ErrUnavailable
	}
	return d.Directory.LookupUser(ctx, login)
}

type env struct {
	m     *auth.Manager
	store *testkit.Store
	dir   *countingDirectory
	clock *testkit.Clock
	logs  *testkit.Buffer
	alice *auth.User
	bob   *auth.User
}

var testPepper = testkit.Pepper()

// newEnv returns a Manager on a memory store and directory with users alice
// and bob, a settable clock and a captured debug log. edit may change options.
func newEnv(t testing.TB, edit func(*auth.Options)) *env {
	t.Helper()
	e := &env{
		store: testkit.NewStore(memory.NewStore()),
		dir:   &countingDirectory{Directory: memory.NewDirectory()},
		clock: testkit.NewClock(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)),
		logs:  &testkit.Buffer{},
		alice: &auth.User{ID: "u-alice", Login: "alice", DisplayName: "Alice", Groups: []string{"staff"}},
		bob:   &auth.User{ID: "u-bob", Login: "bob"},
	}
	for _, u := range []*auth.User{e.alice, e.bob} {
		if err := e.dir.AddUser(*u, "account-password-of-"+u.Login); err != nil {
			t.Fatal(err)
		}
	}
	opts := &auth.Options{
		Peppers: []auth.Pepper{testPepper},
		Now:     e.clock.Now,
		Logger:  slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if edit != nil {
		edit(opts)
	}
	e.m = testkit.NewManager(t, e.store, e.dir, opts)
	return e
}

func (e *env) issue(t *testing.T, u *auth.User, name string) (*auth.AppPassword, string) {
	t.Helper()
	ap, secret, err := e.m.IssueAppPassword(t.Context(), u, auth.IssueRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return ap, secret
}

func (e *env) auth(t *testing.T, login, password string) (*auth.Principal, error) {
	t.Helper()
	return e.m.Authenticate(t.Context(), auth.Attempt{Username: login, Password: password, RemoteAddr: "192.0.2.7", UserAgent: "DAVx5/4.4"})
}
