package auth_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/backends/memory"
)

const day = 24 * time.Hour

func TestExpireUnusedAfterOption(t *testing.T) {
	for _, d := range []time.Duration{-day, time.Hour, day - time.Second} {
		_, err := auth.NewManager(memory.NewStore(), memory.NewDirectory(), &auth.Options{Peppers: []auth.Pepper{testPepper}, ExpireUnusedAfter: d})
		if err == nil || !strings.Contains(err.Error(), "ExpireUnusedAfter") {
			t.Errorf("ExpireUnusedAfter %v: got %v, want an error naming the option", d, err)
		}
	}
}

// TestExpireUnused: with ExpireUnusedAfter, an app password unused that
// long (since its creation when never used) is refused like an expired
// one; every use moves the deadline, and the list says when it is.
func TestExpireUnused(t *testing.T) {
	e := newEnv(t, func(o *auth.Options) { o.ExpireUnusedAfter = 30 * day })
	used, usedSecret := e.issue(t, e.alice, "phone")
	_, idleSecret := e.issue(t, e.alice, "old laptop")
	created := e.clock.Now()
	if list, _ := e.m.ListAppPasswords(t.Context(), "u-alice"); len(list) != 2 || !list[0].UnusedExpiresAt.Equal(created.Add(30*day)) {
		t.Fatalf("list: %+v; want UnusedExpiresAt 30 days after creation", list[0])
	}
	for range 3 { // 87 days in all, never 30 without a use
		e.clock.Add(29 * day)
		if _, err := e.auth(t, "alice", usedSecret); err != nil {
			t.Fatalf("used every 29 days, refused after %v: %v", e.clock.Now().Sub(created), err)
		}
	}
	lastUse := e.clock.Now()
	_, err := e.auth(t, "alice", idleSecret)
	if !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Fatalf("never used for 87 days: %v, want ErrInvalidCredentials", err)
	}
	if !strings.Contains(e.logs.String(), `"reason":"unused"`) {
		t.Errorf("the audit log does not say why: %s", e.logs)
	}
	list, _ := e.m.ListAppPasswords(t.Context(), "u-alice")
	for _, a := range list {
		if a.ID == used.ID && !a.UnusedExpiresAt.Equal(lastUse.Add(30*day)) {
			t.Errorf("after use: UnusedExpiresAt %v, want 30 days after the last use %v", a.UnusedExpiresAt, lastUse)
		}
	}
	// Exactly 30 days after the last use it is gone.
	e.clock.Add(30 * day)
	if _, err := e.auth(t, "alice", usedSecret); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("unused for 30 days: %v, want ErrInvalidCredentials", err)
	}
}

// TestExpireUnusedIsOffByDefault: without the option, age means nothing.
func TestExpireUnusedIsOffByDefault(t *testing.T) {
	e := newEnv(t, nil)
	_, secret := e.issue(t, e.alice, "phone")
	e.clock.Add(400 * day)
	if _, err := e.auth(t, "alice", secret); err != nil {
		t.Fatalf("unused for 400 days without ExpireUnusedAfter: %v", err)
	}
	if list, _ := e.m.ListAppPasswords(t.Context(), "u-alice"); !list[0].UnusedExpiresAt.IsZero() {
		t.Errorf("UnusedExpiresAt %v without the option", list[0].UnusedExpiresAt)
	}
}

// TestUnusedArePurged: the purge deletes what went unused, and not one
// whose recent use is still queued for the store (it writes the queue first).
func TestUnusedArePurged(t *testing.T) {
	e := newEnv(t, func(o *auth.Options) {
		o.ExpireUnusedAfter = 30 * day
		o.LastUsedInterval = time.Hour // the use below stays queued until the purge writes it
	})
	_, usedSecret := e.issue(t, e.alice, "phone")
	idle, _ := e.issue(t, e.alice, "old laptop")
	session, _, err := e.m.CreateSession(t.Context(), e.alice, "", "")
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Add(29 * day)
	if _, err := e.auth(t, "alice", usedSecret); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(2 * day)
	n, err := e.m.PurgeExpired(t.Context())
	if err != nil || n != 2 { // the idle app password, and the session past its lifetime
		t.Fatalf("PurgeExpired = %d, %v; want 2", n, err)
	}
	list, _ := e.m.ListAppPasswords(t.Context(), "u-alice")
	if len(list) != 1 || list[0].ID == idle.ID || list[0].Name != "phone" {
		t.Errorf("left: %+v; want only the phone used 2 days ago", list)
	}
	if _, err := e.store.Credential(t.Context(), "u-alice", session.ID); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("the expired session: %v", err)
	}
}
