package sqlstore_test

import (
	"errors"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/backends/sqlstore"
	"github.com/appauth/appauth/internal/testenv"
	"github.com/appauth/appauth/internal/testkit"
)

// TestSessionsAcrossServers: two servers on one PostgreSQL database, the
// second with every session cached (CacheTTL an hour): a session revoked
// on the first, the sessions "signed out everywhere else" on the first,
// and a re-authentication (the recent sign-in) on the first are all what
// the second answers after its watcher hears of them; the session bound
// counts the sessions of both servers. The test waits on the second
// server's watcher, never on a clock.
func TestSessionsAcrossServers(t *testing.T) {
	dsn := testenv.Postgres(t)
	hour := func(o *auth.Options) { o.CacheTTL = time.Hour; o.MaxSessions = 3 }
	clock := testkit.NewClock(time.Now())
	a := newManager(t, mustOpen(t, sqlstore.OpenPostgres, dsn), func(o *auth.Options) { hour(o); o.Now = clock.Now })
	bStore := &watchedStore{Store: mustOpen(t, sqlstore.OpenPostgres, dsn), events: make(chan [2]string, 64)}
	b := newManager(t, bStore, hour)
	ctx := t.Context()
	if ev := bStore.next(t, "the listener to start"); ev != [2]string{} {
		t.Fatalf("first change event %q, want the listener's forget-everything", ev)
	}
	// drain waits for the notification of id (others may come first).
	drain := func(id string) {
		t.Helper()
		for {
			if ev := bStore.next(t, "the change of "+id); ev[1] == id {
				return
			}
		}
	}
	var ids, secrets []string
	for _, m := range []*auth.Manager{a, b, a} {
		s, secret, err := m.CreateSession(ctx, alice, "192.0.2.1", "test")
		if err != nil {
			t.Fatal(err)
		}
		ids, secrets = append(ids, s.ID), append(secrets, secret)
	}
	for i, secret := range secrets {
		if _, err := b.AuthenticateSession(ctx, secret, "", ""); err != nil {
			t.Fatalf("session %d on the second server: %v", i, err)
		}
	}

	// The recent sign-in: re-authenticated on a, seen by b.
	p, _ := b.AuthenticateSession(ctx, secrets[0], "", "")
	before := p.AuthTime
	clock.Add(time.Minute)
	if err := a.ReauthenticateSession(ctx, alice.ID, ids[0]); err != nil {
		t.Fatal(err)
	}
	drain(ids[0])
	if p, err := b.AuthenticateSession(ctx, secrets[0], "", ""); err != nil || !p.AuthTime.After(before) {
		t.Fatalf("after a re-authentication on the other server: %v, auth time %v, want after %v", err, p.AuthTime, before)
	}

	// Revoked on a: refused by b.
	if err := a.RevokeSession(ctx, alice.ID, ids[1]); err != nil {
		t.Fatal(err)
	}
	drain(ids[1])
	if _, err := b.AuthenticateSession(ctx, secrets[1], "", ""); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Fatalf("a session revoked on the other server: %v, want ErrInvalidCredentials", err)
	}

	// The bound (3) counts both servers' sessions: a fourth sign-in on b
	// beyond three live ones signs out the least recently used.
	s4, secret4, err := b.CreateSession(ctx, alice, "192.0.2.1", "test")
	if err != nil {
		t.Fatal(err)
	}
	s5, _, err := a.CreateSession(ctx, alice, "192.0.2.1", "test")
	if err != nil {
		t.Fatal(err)
	}
	if list, err := b.ListSessions(ctx, alice.ID); err != nil || len(list) != 3 {
		t.Fatalf("sessions after sign-ins on both servers: %d, %v; want the bound, 3", len(list), err)
	}

	// "Sign out everywhere else" on a, keeping the newest: b refuses the rest.
	if _, err := a.RevokeOtherSessions(ctx, alice.ID, s5.ID); err != nil {
		t.Fatal(err)
	}
	drain(s4.ID)
	if _, err := b.AuthenticateSession(ctx, secret4, "", ""); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Fatalf("a session signed out by another server's revoke-others: %v, want ErrInvalidCredentials", err)
	}
	if list, err := b.ListSessions(ctx, alice.ID); err != nil || len(list) != 1 || list[0].ID != s5.ID {
		t.Fatalf("sessions after revoke-others: %v, %v; want only the kept one", list, err)
	}
}
