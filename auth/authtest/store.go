// Package authtest holds conformance suites that every implementation of the
// auth interfaces runs from its own test file.
package authtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
)

// NewStoreFunc opens a new, empty store for one test, and arranges with
// t.Cleanup to close it. If the store is persistent, reopen opens the same
// storage again (as a restarted process would); otherwise it is nil.
type NewStoreFunc func(t *testing.T) (store auth.Store, reopen func() auth.Store)

// RunStoreTests runs the [auth.Store] conformance suite. Stores must keep
// times to at least microsecond precision and return them in UTC.
func RunStoreTests(t *testing.T, newStore NewStoreFunc) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s auth.Store)
	}{
		{"CreateAndGet", testCreateAndGet},
		{"ZeroValues", testZeroValues},
		{"Duplicates", testDuplicates},
		{"Missing", testMissing},
		{"Isolation", testIsolation},
		{"ListOrderAndKind", testList},
		{"Update", testUpdate},
		{"DeleteCredentials", testDeleteCredentials},
		{"RecordUsage", testRecordUsage},
		{"ReturnedCopies", testReturnedCopies},
		{"Concurrency", testConcurrency},
		{"DeleteExpired", testDeleteExpired},
		{"DeleteUnused", testDeleteUnused},
		{"PepperRegistry", testPepperRegistry},
		{"ManagerPepperCheck", testManagerPepperCheck},
		{"AllCredentials", testAllCredentials},
		{"ClaimJob", testClaimJob},
		{"Transient", testTransient},
		{"FederatedSessions", testFederatedSessions},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newStore(t)
			tt.fn(t, s)
		})
	}
	t.Run("PersistenceAcrossReopen", func(t *testing.T) {
		s, reopen := newStore(t)
		if reopen == nil {
			t.Log("store is not persistent")
			return
		}
		c := newCredential("alice", auth.KindAppPassword)
		fed := newCredential("alice", auth.KindSession)
		fed.Federation = auth.Federation{Issuer: "https://idp.example", Subject: "sub-älice", SID: "sid-1"}
		mustCreate(t, s, c, fed)
		if got, err := reopen().Credential(t.Context(), fed.UserID, fed.ID); err != nil {
			t.Fatalf("after reopen: %v", err)
		} else {
			assertEqual(t, got, fed)
		}
		if err := s.RecordUsage(t.Context(), []auth.Usage{{UserID: c.UserID, ID: c.ID, At: c.CreatedAt.Add(time.Hour), Addr: "192.0.2.9", Client: "DAVx5"}}); err != nil {
			t.Fatal(err)
		}
		c.LastUsedAt, c.LastUsedAddr, c.LastUsedClient = c.CreatedAt.Add(time.Hour), "192.0.2.9", "DAVx5"
		got, err := reopen().CredentialByHash(t.Context(), c.Hash)
		if err != nil {
			t.Fatalf("after reopen: %v", err)
		}
		assertEqual(t, got, c)
	})
}

var base = time.Date(2026, 3, 29, 1, 30, 0, 123456000, time.FixedZone("CEST", 2*3600))

var seq struct {
	sync.Mutex
	n int
}

// newCredential returns a credential with every field set, times in a
// non-UTC zone at microsecond precision.
func newCredential(userID string, kind auth.Kind) *auth.StoredCredential {
	seq.Lock()
	seq.n++
	n := seq.n
	seq.Unlock()
	hash := make([]byte, 32)
	rand.Read(hash)
	created := base.Add(time.Duration(n) * time.Second)
	return &auth.StoredCredential{
		ID:              fmt.Sprintf("id-%d-%s", n, hex.EncodeToString(hash[:4])),
		Kind:            kind,
		UserID:          userID,
		Login:           "login-" + userID,
		Name:            fmt.Sprintf("Ďevice “%d” 📱", n),
		Scopes:          []string{"calendars", "contacts"},
		Hash:            hash,
		KeyID:           "k1",
		Hint:            "wxyz",
		CreatedAt:       created,
		ExpiresAt:       created.Add(90 * 24 * time.Hour),
		AuthenticatedAt: created.Add(time.Minute),
	}
}

func mustCreate(t *testing.T, s auth.Store, cs ...*auth.StoredCredential) {
	t.Helper()
	for _, c := range cs {
		if err := s.CreateCredential(t.Context(), c); err != nil {
			t.Fatalf("CreateCredential(%s): %v", c.ID, err)
		}
	}
}

func mustGet(t *testing.T, s auth.Store, userID, id string) *auth.StoredCredential {
	t.Helper()
	c, err := s.Credential(t.Context(), userID, id)
	if err != nil {
		t.Fatalf("Credential(%s, %s): %v", userID, id, err)
	}
	return c
}

// assertEqual compares got with want, requiring UTC times equal to want's.
func assertEqual(t *testing.T, got, want *auth.StoredCredential) {
	t.Helper()
	for name, tm := range map[string]time.Time{
		"CreatedAt": got.CreatedAt, "ExpiresAt": got.ExpiresAt,
		"AuthenticatedAt": got.AuthenticatedAt, "LastUsedAt": got.LastUsedAt,
	} {
		if !tm.IsZero() && tm.Location() != time.UTC {
			t.Errorf("%s is in %v, want UTC", name, tm.Location())
		}
	}
	times := func(c *auth.StoredCredential) [4]time.Time {
		return [4]time.Time{c.CreatedAt, c.ExpiresAt, c.AuthenticatedAt, c.LastUsedAt}
	}
	gt, wt := times(got), times(want)
	for i := range gt {
		if !gt[i].Equal(wt[i]) {
			t.Errorf("time %d = %v, want %v", i, gt[i], wt[i])
		}
	}
	if got.ID != want.ID || got.Kind != want.Kind || got.UserID != want.UserID || got.Login != want.Login ||
		got.Name != want.Name || !slices.Equal(got.Scopes, want.Scopes) || string(got.Hash) != string(want.Hash) ||
		got.KeyID != want.KeyID || got.Hint != want.Hint || got.LastUsedAddr != want.LastUsedAddr ||
		got.LastUsedClient != want.LastUsedClient || got.Federation != want.Federation {
		t.Errorf("got  %+v\nwant %+v", *got, *want)
	}
}

func testCreateAndGet(t *testing.T, s auth.Store) {
	for _, kind := range []auth.Kind{auth.KindAppPassword, auth.KindSession} {
		c := newCredential("alice", kind)
		mustCreate(t, s, c)
		assertEqual(t, mustGet(t, s, "alice", c.ID), c)
		got, err := s.CredentialByHash(t.Context(), c.Hash)
		if err != nil {
			t.Fatalf("CredentialByHash: %v", err)
		}
		assertEqual(t, got, c)
	}
}

func testZeroValues(t *testing.T, s auth.Store) {
	c := newCredential("alice", auth.KindAppPassword)
	c.Scopes, c.ExpiresAt, c.AuthenticatedAt = nil, time.Time{}, time.Time{}
	mustCreate(t, s, c)
	got := mustGet(t, s, "alice", c.ID)
	if len(got.Scopes) != 0 || !got.ExpiresAt.IsZero() || !got.AuthenticatedAt.IsZero() || !got.LastUsedAt.IsZero() {
		t.Errorf("zero values did not round-trip: %+v", got)
	}
}

func testDuplicates(t *testing.T, s auth.Store) {
	c := newCredential("alice", auth.KindAppPassword)
	mustCreate(t, s, c)
	sameHash := newCredential("bob", auth.KindAppPassword)
	sameHash.Hash = c.Hash
	if err := s.CreateCredential(t.Context(), sameHash); !errors.Is(err, auth.ErrAlreadyExists) {
		t.Errorf("duplicate hash: got %v, want ErrAlreadyExists", err)
	}
	sameID := newCredential("alice", auth.KindAppPassword)
	sameID.ID = c.ID
	if err := s.CreateCredential(t.Context(), sameID); !errors.Is(err, auth.ErrAlreadyExists) {
		t.Errorf("duplicate ID: got %v, want ErrAlreadyExists", err)
	}
	if _, err := s.Credential(t.Context(), "bob", sameHash.ID); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("a refused create left a record behind: %v", err)
	}
	assertEqual(t, mustGet(t, s, "alice", c.ID), c)
}

func testMissing(t *testing.T, s auth.Store) {
	ctx := t.Context()
	ghost := newCredential("alice", auth.KindAppPassword)
	checks := map[string]error{
		"Credential":       func() error { _, err := s.Credential(ctx, "alice", "nope"); return err }(),
		"CredentialByHash": func() error { _, err := s.CredentialByHash(ctx, ghost.Hash); return err }(),
		"UpdateCredential": s.UpdateCredential(ctx, ghost),
		"DeleteCredential": s.DeleteCredential(ctx, "alice", "nope"),
	}
	for name, err := range checks {
		if !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("%s of a missing credential: got %v, want ErrNotFound", name, err)
		}
	}
	if list, err := s.ListCredentials(ctx, "nobody", auth.KindAppPassword); err != nil || len(list) != 0 {
		t.Errorf("ListCredentials of an unknown user = %v, %v; want empty, nil", list, err)
	}
	if n, err := s.DeleteCredentials(ctx, "nobody", auth.KindAppPassword, ""); err != nil || n != 0 {
		t.Errorf("DeleteCredentials of an unknown user = %d, %v; want 0, nil", n, err)
	}
	if err := s.RecordUsage(ctx, []auth.Usage{{UserID: "alice", ID: "nope", At: base}}); err != nil {
		t.Errorf("RecordUsage for a missing credential: %v, want nil", err)
	}
	if err := s.RecordUsage(ctx, nil); err != nil {
		t.Errorf("RecordUsage(nil): %v", err)
	}
}

func testIsolation(t *testing.T, s auth.Store) {
	ctx := t.Context()
	a := newCredential("alice", auth.KindAppPassword)
	mustCreate(t, s, a)
	if _, err := s.Credential(ctx, "bob", a.ID); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("bob reads alice's credential: %v, want ErrNotFound", err)
	}
	stolen := *a
	stolen.UserID, stolen.Name = "bob", "renamed by bob"
	if err := s.UpdateCredential(ctx, &stolen); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("bob renames alice's credential: %v, want ErrNotFound", err)
	}
	if err := s.DeleteCredential(ctx, "bob", a.ID); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("bob deletes alice's credential: %v, want ErrNotFound", err)
	}
	if n, err := s.DeleteCredentials(ctx, "bob", auth.KindAppPassword, ""); err != nil || n != 0 {
		t.Errorf("bob's DeleteCredentials = %d, %v; want 0, nil", n, err)
	}
	if err := s.RecordUsage(ctx, []auth.Usage{{UserID: "bob", ID: a.ID, At: base.Add(time.Hour), Addr: "x"}}); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.ListCredentials(ctx, "bob", auth.KindAppPassword); len(list) != 0 {
		t.Errorf("bob's list holds %d of alice's credentials", len(list))
	}
	assertEqual(t, mustGet(t, s, "alice", a.ID), a)
}

func testList(t *testing.T, s auth.Store) {
	ctx := t.Context()
	// Created out of order, to check the store sorts by CreatedAt.
	c1, c2, c3 := newCredential("alice", auth.KindAppPassword), newCredential("alice", auth.KindAppPassword), newCredential("alice", auth.KindAppPassword)
	sess := newCredential("alice", auth.KindSession)
	mustCreate(t, s, c3, c1, sess, c2, newCredential("bob", auth.KindAppPassword))
	list, err := s.ListCredentials(ctx, "alice", auth.KindAppPassword)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 {
		t.Fatalf("listed %d app passwords, want 3", len(list))
	}
	for i, want := range []*auth.StoredCredential{c1, c2, c3} {
		assertEqual(t, list[i], want)
	}
	sessions, err := s.ListCredentials(ctx, "alice", auth.KindSession)
	if err != nil || len(sessions) != 1 || sessions[0].ID != sess.ID {
		t.Errorf("sessions = %v, %v; want just %s", sessions, err, sess.ID)
	}
}

func testUpdate(t *testing.T, s auth.Store) {
	c := newCredential("alice", auth.KindSession)
	mustCreate(t, s, c)
	upd := *c
	upd.Name, upd.Scopes = "renamed", []string{"files"}
	upd.ExpiresAt, upd.AuthenticatedAt = base.Add(48*time.Hour), base.Add(2*time.Hour)
	// Fields that UpdateCredential must leave alone.
	upd.Hash, upd.Login, upd.Hint, upd.CreatedAt = []byte("other"), "other", "zzzz", base.Add(time.Hour)
	if err := s.UpdateCredential(t.Context(), &upd); err != nil {
		t.Fatal(err)
	}
	want := *c
	want.Name, want.Scopes, want.ExpiresAt, want.AuthenticatedAt = upd.Name, upd.Scopes, upd.ExpiresAt, upd.AuthenticatedAt
	assertEqual(t, mustGet(t, s, "alice", c.ID), &want)
}

func testDeleteCredentials(t *testing.T, s auth.Store) {
	ctx := t.Context()
	s1, s2, s3 := newCredential("alice", auth.KindSession), newCredential("alice", auth.KindSession), newCredential("alice", auth.KindSession)
	app := newCredential("alice", auth.KindAppPassword)
	bobs := newCredential("bob", auth.KindSession)
	mustCreate(t, s, s1, s2, s3, app, bobs)
	if err := s.DeleteCredential(ctx, "alice", s3.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CredentialByHash(ctx, s3.Hash); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("deleted credential still found by hash: %v", err)
	}
	n, err := s.DeleteCredentials(ctx, "alice", auth.KindSession, s1.ID)
	if err != nil || n != 1 {
		t.Fatalf("DeleteCredentials = %d, %v; want 1, nil", n, err)
	}
	mustGet(t, s, "alice", s1.ID)
	mustGet(t, s, "alice", app.ID)
	mustGet(t, s, "bob", bobs.ID)
	if _, err := s.Credential(ctx, "alice", s2.ID); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("s2 survived DeleteCredentials: %v", err)
	}
	if n, err := s.DeleteCredentials(ctx, "alice", auth.KindAppPassword, ""); err != nil || n != 1 {
		t.Errorf("DeleteCredentials(app passwords) = %d, %v; want 1, nil", n, err)
	}
}

func testRecordUsage(t *testing.T, s auth.Store) {
	ctx := t.Context()
	a, b := newCredential("alice", auth.KindAppPassword), newCredential("alice", auth.KindAppPassword)
	mustCreate(t, s, a, b)
	t1, t2 := base.Add(time.Hour), base.Add(2*time.Hour)
	err := s.RecordUsage(ctx, []auth.Usage{
		{UserID: "alice", ID: a.ID, At: t2, Addr: "2001:db8::1", Client: "iOS/17 (dataaccessd)"},
		{UserID: "alice", ID: b.ID, At: t1, Addr: "192.0.2.1", Client: "DAVx5/4.4"},
	})
	if err != nil {
		t.Fatal(err)
	}
	// An older update must not move the time backwards.
	if err := s.RecordUsage(ctx, []auth.Usage{{UserID: "alice", ID: a.ID, At: t1, Addr: "old", Client: "old"}}); err != nil {
		t.Fatal(err)
	}
	a.LastUsedAt, a.LastUsedAddr, a.LastUsedClient = t2, "2001:db8::1", "iOS/17 (dataaccessd)"
	b.LastUsedAt, b.LastUsedAddr, b.LastUsedClient = t1, "192.0.2.1", "DAVx5/4.4"
	assertEqual(t, mustGet(t, s, "alice", a.ID), a)
	assertEqual(t, mustGet(t, s, "alice", b.ID), b)

	// Several uses of one credential in one batch, in any order: the
	// latest of its owner's wins; a later one naming another owner
	// changes nothing.
	t3, t4, t5 := base.Add(3*time.Hour), base.Add(4*time.Hour), base.Add(5*time.Hour)
	err = s.RecordUsage(ctx, []auth.Usage{
		{UserID: "alice", ID: b.ID, At: t3, Addr: "192.0.2.3", Client: "third"},
		{UserID: "mallory", ID: b.ID, At: t5, Addr: "198.51.100.5", Client: "mallory"},
		{UserID: "alice", ID: b.ID, At: t4, Addr: "192.0.2.4", Client: "fourth"},
		{UserID: "alice", ID: b.ID, At: t2, Addr: "192.0.2.2", Client: "second"},
	})
	if err != nil {
		t.Fatal(err)
	}
	b.LastUsedAt, b.LastUsedAddr, b.LastUsedClient = t4, "192.0.2.4", "fourth"
	assertEqual(t, mustGet(t, s, "alice", b.ID), b)
}

func testReturnedCopies(t *testing.T, s auth.Store) {
	c := newCredential("alice", auth.KindAppPassword)
	mustCreate(t, s, c)
	want := *c
	want.Scopes, want.Hash = slices.Clone(c.Scopes), slices.Clone(c.Hash)
	c.Scopes[0], c.Hash[0], c.Name = "mutated", c.Hash[0]^1, "mutated"
	got := mustGet(t, s, "alice", c.ID)
	assertEqual(t, got, &want)
	got.Scopes[0] = "mutated"
	assertEqual(t, mustGet(t, s, "alice", c.ID), &want)
}

func testConcurrency(t *testing.T, s auth.Store) {
	ctx := t.Context()
	const workers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := fmt.Sprintf("user%d", w%2)
			for i := range each {
				c := newCredential(user, auth.KindAppPassword)
				if err := s.CreateCredential(ctx, c); err != nil {
					errs <- err
					continue
				}
				if _, err := s.CredentialByHash(ctx, c.Hash); err != nil {
					errs <- err
				}
				if err := s.RecordUsage(ctx, []auth.Usage{{UserID: user, ID: c.ID, At: base.Add(time.Duration(i) * time.Minute)}}); err != nil {
					errs <- err
				}
				if i%2 == 0 {
					if err := s.DeleteCredential(ctx, user, c.ID); err != nil {
						errs <- err
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	total := 0
	for _, user := range []string{"user0", "user1"} {
		list, err := s.ListCredentials(ctx, user, auth.KindAppPassword)
		if err != nil {
			t.Fatal(err)
		}
		total += len(list)
	}
	if want := workers * (each / 2); total != want {
		t.Errorf("%d credentials left, want %d", total, want)
	}
}

// testDeleteExpired checks the optional [auth.ExpiredPurger] capability.
func testDeleteExpired(t *testing.T, s auth.Store) {
	p, ok := s.(auth.ExpiredPurger)
	if !ok {
		t.Log("store does not implement auth.ExpiredPurger")
		return
	}
	now := base.Add(24 * time.Hour)
	expired, atNow, later, never := newCredential("alice", auth.KindSession), newCredential("alice", auth.KindAppPassword),
		newCredential("bob", auth.KindSession), newCredential("bob", auth.KindAppPassword)
	expired.ExpiresAt, atNow.ExpiresAt, later.ExpiresAt, never.ExpiresAt = now.Add(-time.Hour), now, now.Add(time.Microsecond), time.Time{}
	mustCreate(t, s, expired, atNow, later, never)
	n, err := p.DeleteExpired(t.Context(), now)
	if err != nil || n != 2 {
		t.Fatalf("DeleteExpired = %d, %v; want 2, nil", n, err)
	}
	for _, c := range []*auth.StoredCredential{expired, atNow} {
		if _, err := s.CredentialByHash(t.Context(), c.Hash); !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("expired credential %s survived: %v", c.ID, err)
		}
	}
	assertEqual(t, mustGet(t, s, "bob", later.ID), later)
	assertEqual(t, mustGet(t, s, "bob", never.ID), never)
}

// testDeleteUnused checks the optional [auth.UnusedPurger] capability:
// the last use counts, the creation when never used, the cutoff itself is
// included, and other kinds are left alone.
func testDeleteUnused(t *testing.T, s auth.Store) {
	p, ok := s.(auth.UnusedPurger)
	if !ok {
		t.Log("store does not implement auth.UnusedPurger")
		return
	}
	ctx := t.Context()
	cutoff := base.Add(30 * 24 * time.Hour)
	neverUsed := newCredential("alice", auth.KindAppPassword) // created at base: before the cutoff
	usedLongAgo := newCredential("alice", auth.KindAppPassword)
	usedAtCutoff := newCredential("bob", auth.KindAppPassword)
	usedSince := newCredential("bob", auth.KindAppPassword)
	newer := newCredential("bob", auth.KindAppPassword)
	newer.CreatedAt, newer.AuthenticatedAt = cutoff.Add(time.Microsecond), time.Time{}
	session := newCredential("alice", auth.KindSession)
	mustCreate(t, s, neverUsed, usedLongAgo, usedAtCutoff, usedSince, newer, session)
	err := s.RecordUsage(ctx, []auth.Usage{
		{UserID: "alice", ID: usedLongAgo.ID, At: cutoff.Add(-time.Hour)},
		{UserID: "bob", ID: usedAtCutoff.ID, At: cutoff},
		{UserID: "bob", ID: usedSince.ID, At: cutoff.Add(time.Microsecond)},
	})
	if err != nil {
		t.Fatal(err)
	}
	n, err := p.DeleteUnused(ctx, auth.KindAppPassword, cutoff)
	if err != nil || n != 3 {
		t.Fatalf("DeleteUnused = %d, %v; want 3, nil", n, err)
	}
	for _, c := range []*auth.StoredCredential{neverUsed, usedLongAgo, usedAtCutoff} {
		if _, err := s.CredentialByHash(ctx, c.Hash); !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("unused credential %s survived: %v", c.ID, err)
		}
	}
	for _, c := range []*auth.StoredCredential{usedSince, newer, session} {
		if _, err := s.Credential(ctx, c.UserID, c.ID); err != nil {
			t.Errorf("credential %s (%s) used or created after the cutoff was deleted: %v", c.ID, c.Kind, err)
		}
	}
}

func testPepperRegistry(t *testing.T, s auth.Store) {
	r, ok := s.(auth.PepperRegistry)
	if !ok {
		t.Log("store does not implement auth.PepperRegistry")
		return
	}
	ctx := t.Context()
	first, second := []byte("check value one"), []byte("check value two")
	for i, tc := range []struct {
		id      string
		check   []byte
		replace bool
		want    []byte
	}{
		{"k1", first, false, first},   // recorded
		{"k1", second, false, first},  // kept
		{"k2", second, false, second}, // per key ID
		{"k1", second, true, second},  // replaced
		{"k1", first, false, second},
	} {
		got, err := r.RegisterPepper(ctx, tc.id, tc.check, tc.replace)
		if err != nil {
			t.Fatalf("step %d: RegisterPepper(%s): %v", i, tc.id, err)
		}
		if string(got) != string(tc.want) {
			t.Fatalf("step %d: RegisterPepper(%s, %q, replace=%v) = %q, want %q", i, tc.id, tc.check, tc.replace, got, tc.want)
		}
	}
	a, b, c := newCredential("alice", auth.KindAppPassword), newCredential("alice", auth.KindSession), newCredential("bob", auth.KindAppPassword)
	c.KeyID = "k2"
	mustCreate(t, s, a, b, c)
	counts, err := r.CredentialsByKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if counts["k1"] != 2 || counts["k2"] != 1 || len(counts) != 2 {
		t.Fatalf("CredentialsByKey = %v, want k1:2 k2:1", counts)
	}
}

// testAllCredentials: a CredentialLister returns every user's credentials
// of the asked kind, by owner then oldest first, as copies.
func testAllCredentials(t *testing.T, s auth.Store) {
	l, ok := s.(auth.CredentialLister)
	if !ok {
		t.Log("store does not implement auth.CredentialLister")
		return
	}
	ctx := t.Context()
	if got, err := l.AllCredentials(ctx, auth.KindAppPassword); err != nil || len(got) != 0 {
		t.Fatalf("AllCredentials on an empty store = %d, %v; want 0, nil", len(got), err)
	}
	bobOld, bobNew, alice := newCredential("bob", auth.KindAppPassword), newCredential("bob", auth.KindAppPassword), newCredential("alice", auth.KindAppPassword)
	bobOld.CreatedAt = base.Add(-time.Hour)
	session := newCredential("alice", auth.KindSession)
	mustCreate(t, s, bobNew, session, alice, bobOld)
	got, err := l.AllCredentials(ctx, auth.KindAppPassword)
	if err != nil {
		t.Fatal(err)
	}
	want := []*auth.StoredCredential{alice, bobOld, bobNew}
	if len(got) != len(want) {
		t.Fatalf("AllCredentials(app passwords) returned %d credentials, want %d", len(got), len(want))
	}
	for i := range want {
		assertEqual(t, got[i], want[i])
	}
	got[0].Name = "changed"
	if again, _ := l.AllCredentials(ctx, auth.KindAppPassword); again[0].Name == "changed" {
		t.Error("AllCredentials returned the stored credential, not a copy")
	}
	sessions, err := l.AllCredentials(ctx, auth.KindSession)
	if err != nil || len(sessions) != 1 || sessions[0].ID != session.ID {
		t.Fatalf("AllCredentials(sessions) = %d credentials, %v; want only %s", len(sessions), err, session.ID)
	}
}

// testManagerPepperCheck: a Manager whose pepper is not the key that made
// the stored credentials of its ID (a lost pepper file replaced by a new
// key) fails Check, naming the key ID and the count, and issues nothing;
// the right key passes.
func testManagerPepperCheck(t *testing.T, s auth.Store) {
	if _, ok := s.(auth.PepperRegistry); !ok {
		t.Log("store does not implement auth.PepperRegistry")
		return
	}
	ctx := t.Context()
	pepper := func(b byte) auth.Pepper {
		return auth.Pepper{ID: "main", Key: []byte(strings.Repeat(string(rune('a'+b)), 32))}
	}
	newManager := func(p auth.Pepper) *auth.Manager {
		m, err := auth.NewManager(s, noDirectory{}, &auth.Options{Peppers: []auth.Pepper{p}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	}
	user := &auth.User{ID: "u-pepper", Login: "pepper"}
	orig := newManager(pepper(0))
	if err := orig.Check(ctx); err != nil {
		t.Fatalf("Check of the first pepper: %v", err)
	}
	for i := range 3 {
		if _, _, err := orig.IssueAppPassword(ctx, user, auth.IssueRequest{Name: fmt.Sprint("device ", i)}); err != nil {
			t.Fatal(err)
		}
	}
	lost := newManager(pepper(1))
	err := lost.Check(ctx)
	var mismatch *auth.PepperMismatchError
	if !errors.As(err, &mismatch) || mismatch.KeyID != "main" || mismatch.Credentials != 3 {
		t.Fatalf("Check with another key under the same ID = %v; want a PepperMismatchError for \"main\" and 3 credentials", err)
	}
	if !strings.Contains(err.Error(), `"main"`) || !strings.Contains(err.Error(), "3 stored credentials") {
		t.Errorf("error %q does not name the key ID and the count", err)
	}
	if _, _, err := lost.IssueAppPassword(ctx, user, auth.IssueRequest{Name: "new"}); !errors.As(err, &mismatch) {
		t.Errorf("issue under a mismatched pepper: %v; want a PepperMismatchError", err)
	}
	if err := newManager(pepper(0)).Check(ctx); err != nil {
		t.Errorf("Check with the original key: %v", err)
	}
}

// noDirectory knows nobody; the pepper check needs no directory.
type noDirectory struct{}

func (noDirectory) LookupUser(context.Context, string) (*auth.User, error) {
	return nil, auth.ErrNotFound
}

// testClaimJob: of many concurrent claims of one job, exactly one wins; a
// claim before the interval has passed loses, one after it wins; another
// job is claimed on its own.
func testClaimJob(t *testing.T, s auth.Store) {
	c, ok := s.(auth.JobClaimer)
	if !ok {
		t.Log("store does not implement auth.JobClaimer")
		return
	}
	ctx := t.Context()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if n := concurrentWins(func(int) bool {
		won, err := c.ClaimJob(ctx, "purge", now, time.Hour)
		if err != nil {
			t.Error(err)
		}
		return won
	}); n != 1 {
		t.Fatalf("8 concurrent claims: %d won, want 1", n)
	}
	claim := func(name string, at time.Time, want bool) {
		t.Helper()
		if won, err := c.ClaimJob(ctx, name, at, time.Hour); err != nil || won != want {
			t.Errorf("ClaimJob(%q) at +%v: %v, %v; want %v", name, at.Sub(now), won, err, want)
		}
	}
	claim("purge", now.Add(59*time.Minute), false)
	claim("other", now.Add(59*time.Minute), true)
	claim("purge", now.Add(time.Hour), true)
	claim("purge", now.Add(time.Hour+time.Minute), false)
}

// testTransient: records are single use and short-lived: a put of a live
// key fails, an expired one is replaced; of concurrent swaps from one value
// and of concurrent takes one wins; expired records are absent and purged
// per kind with their values; kinds do not mix.
func testTransient(t *testing.T, s auth.Store) {
	ts, ok := s.(auth.TransientStore)
	if !ok {
		t.Log("store does not implement auth.TransientStore")
		return
	}
	ctx := t.Context()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	key := []byte("0123456789abcdef0123456789abcdef")
	later := now.Add(10 * time.Minute)
	if err := ts.PutTransient(ctx, "a", key, []byte("v1"), later, now); err != nil {
		t.Fatal(err)
	}
	if err := ts.PutTransient(ctx, "a", key, []byte("v2"), later, now); !errors.Is(err, auth.ErrAlreadyExists) {
		t.Fatalf("second put of a live key: %v, want ErrAlreadyExists", err)
	}
	if err := ts.PutTransient(ctx, "b", key, []byte("other kind"), later, now); err != nil {
		t.Fatalf("the same key in another kind: %v", err)
	}
	if v, err := ts.Transient(ctx, "a", key, now); err != nil || string(v) != "v1" {
		t.Fatalf("Transient = %q, %v; want v1", v, err)
	}
	if n := concurrentWins(func(i int) bool {
		err := ts.SwapTransient(ctx, "a", key, []byte("v1"), []byte(fmt.Sprint("swap-", i)), now)
		if err != nil && !errors.Is(err, auth.ErrNotFound) {
			t.Error(err)
		}
		return err == nil
	}); n != 1 {
		t.Fatalf("8 concurrent swaps from one value: %d won, want 1", n)
	}
	if n := concurrentWins(func(int) bool {
		v, err := ts.TakeTransient(ctx, "a", key, now)
		if err != nil && !errors.Is(err, auth.ErrNotFound) {
			t.Error(err)
		}
		return err == nil && strings.HasPrefix(string(v), "swap-")
	}); n != 1 {
		t.Fatalf("8 concurrent takes: %d got the value, want 1", n)
	}
	if _, err := ts.Transient(ctx, "a", key, now); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("after the take: %v, want ErrNotFound", err)
	}
	// Expiry: absent at its time, replaced by a put, purged with its value.
	if _, err := ts.Transient(ctx, "b", key, later); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("at its expiry: %v, want ErrNotFound", err)
	}
	if _, err := ts.TakeTransient(ctx, "b", key, later); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("take at its expiry: %v, want ErrNotFound", err)
	}
	if err := ts.SwapTransient(ctx, "b", key, []byte("other kind"), []byte("x"), later); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("swap at its expiry: %v, want ErrNotFound", err)
	}
	key2 := []byte("fedcba9876543210fedcba9876543210")
	if err := ts.PutTransient(ctx, "b", key2, []byte("live"), later.Add(time.Hour), now); err != nil {
		t.Fatal(err)
	}
	got, err := ts.DeleteExpiredTransients(ctx, "b", later)
	if err != nil || len(got) != 1 || string(got[0]) != "other kind" {
		t.Fatalf("DeleteExpiredTransients = %q, %v; want the one expired value", got, err)
	}
	if v, err := ts.Transient(ctx, "b", key2, later); err != nil || string(v) != "live" {
		t.Fatalf("the live record after the purge: %q, %v", v, err)
	}
	if err := ts.PutTransient(ctx, "b", key2, []byte("again"), later.Add(2*time.Hour), later.Add(time.Hour)); err != nil {
		t.Fatalf("put over an expired record: %v, want it replaced", err)
	}
}

// testFederatedSessions: the Federation of a session round-trips, and
// FederatedSessions (if the store has it) finds exactly the sessions of
// one provider's subject or session ID: never another issuer's with the
// same subject, never an app password, never a password sign-in.
func testFederatedSessions(t *testing.T, s auth.Store) {
	ctx := t.Context()
	const iss, other = "https://idp.example/realms/a", "https://idp.example/realms/b"
	mk := func(user string, kind auth.Kind, f auth.Federation) *auth.StoredCredential {
		c := newCredential(user, kind)
		c.Federation = f
		return c
	}
	a1 := mk("alice", auth.KindSession, auth.Federation{Issuer: iss, Subject: "sub-a", SID: "sid-1"})
	a2 := mk("alice", auth.KindSession, auth.Federation{Issuer: iss, Subject: "sub-a", SID: "sid-2"})
	aNoSID := mk("alice", auth.KindSession, auth.Federation{Issuer: iss, Subject: "sub-a"})
	otherIss := mk("alice", auth.KindSession, auth.Federation{Issuer: other, Subject: "sub-a", SID: "sid-1"})
	bob := mk("bob", auth.KindSession, auth.Federation{Issuer: iss, Subject: "sub-b", SID: "sid-3"})
	password := mk("alice", auth.KindSession, auth.Federation{})
	app := mk("alice", auth.KindAppPassword, auth.Federation{Issuer: iss, Subject: "sub-a", SID: "sid-1"})
	mustCreate(t, s, a1, a2, aNoSID, otherIss, bob, password, app)
	assertEqual(t, mustGet(t, s, "alice", a1.ID), a1)
	assertEqual(t, mustGet(t, s, "alice", password.ID), password)

	f, ok := s.(auth.FederatedSessionFinder)
	if !ok {
		t.Log("store does not implement auth.FederatedSessionFinder")
		return
	}
	sorted := func(cs ...*auth.StoredCredential) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.ID)
		}
		slices.Sort(out)
		return out
	}
	ids := func(q auth.Federation) []string {
		t.Helper()
		got, err := f.FederatedSessions(ctx, q)
		if err != nil {
			t.Fatalf("FederatedSessions(%+v): %v", q, err)
		}
		return sorted(got...)
	}
	for _, tt := range []struct {
		q    auth.Federation
		want []string
	}{
		{auth.Federation{Issuer: iss, Subject: "sub-a"}, sorted(a1, a2, aNoSID)},
		{auth.Federation{Issuer: iss, SID: "sid-1"}, sorted(a1)},
		{auth.Federation{Issuer: iss, Subject: "sub-a", SID: "sid-2"}, sorted(a2)},
		{auth.Federation{Issuer: iss, Subject: "sub-b", SID: "sid-1"}, nil},
		{auth.Federation{Issuer: other, Subject: "sub-a"}, sorted(otherIss)},
		{auth.Federation{Issuer: "https://idp.example", Subject: "sub-a"}, nil},
	} {
		if got := ids(tt.q); !slices.Equal(got, tt.want) {
			t.Errorf("FederatedSessions(%+v) = %v, want %v", tt.q, got, tt.want)
		}
	}
	for _, q := range []auth.Federation{{}, {Issuer: iss}, {Subject: "sub-a"}} {
		if _, err := f.FederatedSessions(ctx, q); !errors.Is(err, auth.ErrInvalidInput) {
			t.Errorf("FederatedSessions(%+v) = %v, want ErrInvalidInput (it would match every session)", q, err)
		}
	}
}

// concurrentWins runs try 8 times at once (with 0 to 7) and counts the
// tries that report a win.
func concurrentWins(try func(i int) bool) int32 {
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if try(i) {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	return wins.Load()
}
