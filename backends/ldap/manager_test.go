package ldap_test

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/backends/ldap"
	"github.com/appauth/appauth/backends/memory"
	"github.com/appauth/appauth/internal/testenv"
	"github.com/appauth/appauth/internal/testkit"
)

const (
	ownerCheck = 5 * time.Minute
	grace      = time.Hour
)

// newManager returns a Manager on a memory store and dir, with a settable
// clock.
func newManager(t testing.TB, dir *ldap.Directory) (*auth.Manager, *testkit.Clock) {
	t.Helper()
	clk := testkit.NewClock(time.Now())
	m := testkit.NewManager(t, memory.NewStore(), dir, &auth.Options{
		Now:                clk.Now,
		OwnerCheckInterval: ownerCheck,
		OwnerGracePeriod:   grace,
	})
	return m, clk
}

// issue signs login in with the directory and issues an app password.
func issue(t *testing.T, m *auth.Manager, dir *ldap.Directory, login, password string) string {
	t.Helper()
	u, err := dir.VerifyPassword(t.Context(), login, password)
	if err != nil {
		t.Fatal(err)
	}
	_, secret, err := m.IssueAppPassword(t.Context(), u, auth.IssueRequest{Name: "phone"})
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

// TestManagerOwnerChanges: a user disabled (ppolicy lock) or deleted in
// slapd loses access once the owner re-check runs, and not before.
func TestManagerOwnerChanges(t *testing.T) {
	s := testenv.LDAP(t)
	dir := open(t, config(s))
	m, clk := newManager(t, dir)
	ctx := t.Context()
	for name, change := range map[string]func(dn string){
		"disabled": func(dn string) { lock(t, s, dn) },
		"deleted": func(dn string) {
			if err := admin(t, s).Del(goldap.NewDelRequest(dn, nil)); err != nil {
				t.Fatal(err)
			}
		},
	} {
		login, dn := addUser(t, s, "tmp-Secret-1")
		secret := issue(t, m, dir, login, "tmp-Secret-1")
		creds := auth.Attempt{Username: login, Password: secret}
		if _, err := m.Authenticate(ctx, creds); err != nil {
			t.Fatalf("%s: before the change: %v", name, err)
		}
		change(dn)
		if _, err := m.Authenticate(ctx, creds); err != nil {
			t.Fatalf("%s: refused before the re-check interval: %v", name, err)
		}
		clk.Add(ownerCheck)
		if _, err := m.Authenticate(ctx, creds); !errors.Is(err, auth.ErrInvalidCredentials) {
			t.Fatalf("%s: after the re-check: %v; want ErrInvalidCredentials", name, err)
		}
	}
}

// TestLockoutKeepsDevices: a lockout that anyone can cause, ppolicy's
// after too many failed binds (someone guessing the account password on
// the web sign-in), refuses the account password and leaves the user's
// app passwords working, through the owner re-check; only an
// administrator's lock disables the user (TestManagerOwnerChanges).
func TestLockoutKeepsDevices(t *testing.T) {
	s := testenv.LDAP(t)
	dir := open(t, config(s))
	m, clk := newManager(t, dir)
	ctx := t.Context()
	login, dn := addUser(t, s, "tmp-Secret-1")
	secret := issue(t, m, dir, login, "tmp-Secret-1")
	creds := auth.Attempt{Username: login, Password: secret}
	lockOut(t, s, dn)
	if _, err := dir.VerifyPassword(ctx, login, "tmp-Secret-1"); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Fatalf("account password of a locked-out user: %v; want ErrInvalidCredentials", err)
	}
	if u, err := dir.LookupUser(ctx, login); err != nil || u.Disabled {
		t.Fatalf("locked-out user: %+v, %v; want not disabled", u, err)
	}
	clk.Add(ownerCheck)
	if _, err := m.Authenticate(ctx, creds); err != nil {
		t.Fatalf("app password of a locked-out user, after the owner re-check: %v", err)
	}
}

// TestManagerOutage: with slapd down, an app password keeps working within
// the grace period, then fails with ErrUnavailable (never a 401); after
// slapd is back it works again, and nothing was revoked.
func TestManagerOutage(t *testing.T) {
	s := testenv.NewLDAP(t) // stopped below: a server of its own
	c := config(s)
	c.DialTimeout = 2 * time.Second
	dir := open(t, c)
	m, clk := newManager(t, dir)
	ctx := t.Context()
	secret := issue(t, m, dir, "bob", "bob-Secret-2")
	creds := auth.Attempt{Username: "bob", Password: secret}
	if _, err := m.Authenticate(ctx, creds); err != nil {
		t.Fatal(err)
	}
	s.Stop(t)
	clk.Add(ownerCheck) // the owner is due for a re-check, which fails
	if p, err := m.Authenticate(ctx, creds); err != nil || p.User.Login != "bob" {
		t.Fatalf("within the grace period: %+v, %v", p, err)
	}
	clk.Add(grace)
	if _, err := m.Authenticate(ctx, creds); !errors.Is(err, auth.ErrUnavailable) || errors.Is(err, auth.ErrInvalidCredentials) {
		t.Fatalf("after the grace period: %v; want ErrUnavailable", err)
	}
	s.Start(t)
	if _, err := m.Authenticate(ctx, creds); err != nil {
		t.Fatalf("after slapd is back: %v", err)
	}
}

// TestManagerWrongAppPasswordNoBind: wrong app passwords never reach the
// directory (no lockout of the real account from an old phone password).
func TestManagerWrongAppPasswordNoBind(t *testing.T) {
	s := testenv.LDAP(t)
	p := newProxy(t, hostOf(t, s.URL), false)
	dir := open(t, config(s, p.URL()))
	m, clk := newManager(t, dir)
	ctx := t.Context()
	secret := issue(t, m, dir, "alice", "alice-Secret-1")
	if _, err := m.Authenticate(ctx, auth.Attempt{Username: "alice", Password: secret}); err != nil {
		t.Fatal(err)
	}
	_, binds, filters := p.counts()
	userBinds := p.userBinds(s.BindDN)
	if userBinds != 1 {
		t.Fatalf("%d user binds for one sign-in", userBinds)
	}
	wrong := []string{"alice-Secret-1", testkit.Typo(secret), "aap-0000-0000", ""}
	for i := range 50 {
		clk.Add(ownerCheck) // would trigger any directory call there is
		pw := wrong[i%len(wrong)]
		if _, err := m.Authenticate(ctx, auth.Attempt{Username: "alice", Password: pw}); !errors.Is(err, auth.ErrInvalidCredentials) {
			t.Fatalf("wrong app password %q: %v", pw, err)
		}
	}
	if _, b, f := p.counts(); b != binds || len(f) != len(filters) {
		t.Errorf("wrong app passwords caused %d binds and %d searches", b-binds, len(f)-len(filters))
	}
	if n := p.userBinds(s.BindDN); n != userBinds {
		t.Errorf("wrong app passwords caused %d user binds", n-userBinds)
	}
}

// countingDir counts the directory lookups the Manager makes.
type countingDir struct {
	*ldap.Directory
	calls, inflight atomic.Int64
}

func (d *countingDir) LookupUser(ctx context.Context, login string) (*auth.User, error) {
	d.calls.Add(1)
	d.inflight.Add(1)
	defer d.inflight.Add(-1)
	return d.Directory.LookupUser(ctx, login)
}

// TestManagerGraceDoesNotWaitOnHungDirectory pauses slapd (SIGSTOP: it
// accepts connections and never answers). The first owner re-check finds
// it down; after that, requests within the grace period are served from
// the last good answer without asking the directory again until the retry
// is due, and then only one background lookup runs. After the grace period
// the answer is ErrUnavailable; after slapd is resumed, the owner is
// re-checked and access continues.
func TestManagerGraceDoesNotWaitOnHungDirectory(t *testing.T) {
	s := testenv.NewLDAP(t) // paused below: a server of its own
	c := config(s)
	c.DialTimeout, c.RequestTimeout = time.Second, time.Second
	ld := open(t, c)
	dir := &countingDir{Directory: ld}
	clk := testkit.NewClock(time.Now())
	m := testkit.NewManager(t, memory.NewStore(), dir, &auth.Options{
		Now: clk.Now, OwnerCheckInterval: ownerCheck, OwnerGracePeriod: grace, StoreTimeout: 5 * time.Second,
	})
	ctx := t.Context()
	secret := issue(t, m, ld, "bob", "bob-Secret-2")
	creds := auth.Attempt{Username: "bob", Password: secret}
	if _, err := m.Authenticate(ctx, creds); err != nil {
		t.Fatal(err)
	}
	s.Pause(t)
	clk.Add(ownerCheck) // due: this re-check waits on the hung directory, once
	start := time.Now()
	if _, err := m.Authenticate(ctx, creds); err != nil {
		t.Fatalf("within the grace period: %v", err)
	}
	t.Logf("hung slapd: first re-check served from grace after %s", time.Since(start).Round(time.Millisecond))
	before := dir.calls.Load()
	for range 20 {
		clk.Add(time.Second) // within the retry backoff
		if _, err := m.Authenticate(ctx, creds); err != nil {
			t.Fatalf("within the grace period: %v", err)
		}
	}
	if n := dir.calls.Load() - before; n != 0 {
		t.Fatalf("%d directory lookups within the retry backoff after a failed re-check; want 0", n)
	}
	clk.Add(time.Minute) // the retry is due: one lookup, in the background
	for range 20 {
		if _, err := m.Authenticate(ctx, creds); err != nil {
			t.Fatalf("within the grace period, retry due: %v", err)
		}
	}
	// The background re-check starts, and ends by the directory's timeouts.
	for safety := time.Now().Add(time.Minute); dir.calls.Load() == before || dir.inflight.Load() != 0; {
		if time.Now().After(safety) {
			t.Fatal("the background re-check did not run or did not end")
		}
		runtime.Gosched()
	}
	if n := dir.calls.Load() - before; n != 1 {
		t.Fatalf("%d directory lookups for 20 requests once the retry was due; want 1 (in the background)", n)
	}
	clk.Add(grace)
	start = time.Now()
	if _, err := m.Authenticate(ctx, creds); !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("after the grace period: %v; want ErrUnavailable", err)
	}
	t.Logf("hung slapd: ErrUnavailable after the grace period in %s", time.Since(start).Round(time.Millisecond))
	s.Resume(t)
	clk.Add(time.Minute)
	if _, err := m.Authenticate(ctx, creds); err != nil {
		t.Fatalf("after slapd is back: %v", err)
	}
}
