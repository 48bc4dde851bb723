package oidc_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/oidc"
	"github.com/appauth/appauth/auth/settings"
	"github.com/appauth/appauth/backends/sqlstore"
	"github.com/appauth/appauth/internal/testenv"
)

// TestHungPendingStoreIsUnavailable keeps the sign-ins in progress in
// PostgreSQL (SharedPending) and pauses it (SIGSTOP: connections open,
// nothing answers). A request's context has no deadline of its own, so
// Begin and Complete must bound their store calls with Config.Timeout:
// each answers ErrUnavailable (503) instead of hanging with the database.
func TestHungPendingStoreIsUnavailable(t *testing.T) {
	srv := testenv.NewPostgres(t) // paused below: a server of its own
	store, err := sqlstore.OpenPostgres(t.Context(), srv.Database(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	const timeout = time.Second
	e := newEnv(t, &oidc.Config{Timeout: timeout, Pending: oidc.NewSharedPending(store, nil)})
	authURL, binding := e.begin(nil)
	q := e.op.authorize(authURL, e.op.claims("alice", time.Now()))

	srv.Pause(t)
	defer srv.Resume(t)
	// A safety net, not a timing assertion: a call that never returns
	// fails the test instead of hanging it.
	within := func(what string, fn func() error) error {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- fn() }()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * timeout):
			t.Fatalf("%s with a hung store did not return within %s", what, 30*timeout)
			return nil
		}
	}
	err = within("Begin", func() error {
		_, err := e.c.Begin(context.Background(), settings.SSORequest{ReturnPath: "security"})
		return err
	})
	if !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("Begin with a hung store: %v, want ErrUnavailable", err)
	}
	err = within("Complete", func() error {
		_, err := e.c.Complete(context.Background(), q, binding)
		return err
	})
	if !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("Complete with a hung store: %v, want ErrUnavailable", err)
	}
}
