package auth_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/backends/memory"
	"github.com/appauth/appauth/internal/testkit"
)

// TestSharedPeppersRefuseDifferentKey: servers sharing a store, the first
// has registered its key for ID "k1" and issued nothing yet; a second
// server with another key under "k1" is refused by Check with
// SharedPeppers (the first may issue under its key at any moment), while
// without it the key is recorded anew (one server whose pepper file was
// remade before any credential existed). The first server's key still
// passes afterwards in the shared case.
func TestSharedPeppersRefuseDifferentKey(t *testing.T) {
	for _, shared := range []bool{true, false} {
		store := memory.NewStore()
		dir := memory.NewDirectory()
		first := testkit.NewManager(t, store, dir, &auth.Options{SharedPeppers: shared})
		if err := first.Check(t.Context()); err != nil {
			t.Fatal(err)
		}
		other := auth.Pepper{ID: testkit.Pepper().ID, Key: bytes.Repeat([]byte("q"), 32)}
		second := testkit.NewManager(t, store, dir, &auth.Options{SharedPeppers: shared, Peppers: []auth.Pepper{other}})
		err := second.Check(t.Context())
		var mismatch *auth.PepperMismatchError
		switch {
		case shared && !errors.As(err, &mismatch):
			t.Fatalf("shared: a second server with another key under the same ID: %v, want a PepperMismatchError", err)
		case shared && mismatch.KeyID != other.ID:
			t.Fatalf("shared: mismatch names key %q, want %q", mismatch.KeyID, other.ID)
		case !shared && err != nil:
			t.Fatalf("not shared, no credential yet: %v, want the key recorded anew", err)
		}
		if shared {
			if err := testkit.NewManager(t, store, dir, &auth.Options{SharedPeppers: true}).Check(t.Context()); err != nil {
				t.Fatalf("shared: the first key after the refusal: %v, want accepted", err)
			}
		}
	}
}

// TestPurgeRunsOnce: two servers on one store that claims jobs
// (auth.JobClaimer): of their hourly purges only one runs in an hour, and
// the next hour's purge runs again (on either).
func TestPurgeRunsOnce(t *testing.T) {
	store := memory.NewStore()
	dir := memory.NewDirectory()
	clock := testkit.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	alice := &auth.User{ID: "u-alice", Login: "alice"}
	a := testkit.NewManager(t, store, dir, &auth.Options{Now: clock.Now, SessionLifetime: time.Hour})
	b := testkit.NewManager(t, store, dir, &auth.Options{Now: clock.Now, SessionLifetime: time.Hour})
	ctx := t.Context()
	expireOne := func() {
		t.Helper()
		if _, _, err := a.CreateSession(ctx, alice, "", ""); err != nil {
			t.Fatal(err)
		}
		clock.Add(2 * time.Hour)
	}
	expireOne()
	na, err := a.PurgeExpired(ctx)
	if err != nil {
		t.Fatal(err)
	}
	expireOne()
	nb, err := b.PurgeExpired(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if na != 1 || nb != 1 {
		t.Fatalf("purges two hours apart on two servers: deleted %d and %d, want 1 and 1", na, nb)
	}
	expireOne()
	na, _ = a.PurgeExpired(ctx)
	nb, _ = b.PurgeExpired(ctx) // same instant: a claimed this hour
	if na != 1 || nb != 0 {
		t.Fatalf("purges at one instant on two servers: deleted %d and %d, want 1 and 0 (one run)", na, nb)
	}
	if list, _ := a.ListSessions(ctx, alice.ID); len(list) != 0 {
		t.Errorf("%d sessions left after the purge", len(list))
	}
}
