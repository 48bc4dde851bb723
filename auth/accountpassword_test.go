package auth_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/throttle"
	"github.com/appauth/appauth/internal/testkit"
)

// gatedVerifier blocks every check until released, counting checks and
// the most that ran at once.
type gatedVerifier struct {
	inner              auth.PasswordVerifier
	gate               chan struct{}
	entered            chan struct{}
	calls, now, maxNow atomic.Int64
}

func newGatedVerifier(inner auth.PasswordVerifier) *gatedVerifier {
	return &gatedVerifier{inner: inner, gate: make(chan struct{}), entered: make(chan struct{}, 1000)}
}

func (v *gatedVerifier) VerifyPassword(ctx context.Context, login, password string) (*auth.User, error) {
	v.calls.Add(1)
	n := v.now.Add(1)
	defer v.now.Add(-1)
	for {
		m := v.maxNow.Load()
		if n <= m || v.maxNow.CompareAndSwap(m, n) {
			break
		}
	}
	v.entered <- struct{}{}
	<-v.gate
	return v.inner.VerifyPassword(ctx, login, password)
}

// TestAccountPasswordBurst: 60 parallel wrong sign-ins from one fresh
// address, all in flight at once (the verifier holds them): at most the
// throttle's AddressLimit (10) reach the verifier.
func TestAccountPasswordBurst(t *testing.T) {
	th, err := throttle.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(o *auth.Options) { o.Limiter = th; o.MaxPasswordChecks = 100 })
	v := newGatedVerifier(e.dir)
	var refused atomic.Int64
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Go(func() {
			_, err := e.m.VerifyAccountPassword(t.Context(), v, auth.Attempt{Username: "alice", Password: fmt.Sprint("guess-", i), RemoteAddr: "192.0.2.50"})
			if errors.Is(err, auth.ErrThrottled) {
				refused.Add(1)
				v.entered <- struct{}{} // counted with those inside the verifier
			}
		})
	}
	// Wait until every attempt is either refused or inside the verifier.
	for range 60 {
		<-v.entered
	}
	close(v.gate)
	wg.Wait()
	if n := v.calls.Load(); n > 10 {
		t.Errorf("%d of 60 parallel wrong sign-ins evaluated, want at most 10", n)
	}
	t.Logf("%d evaluated, %d throttled", v.calls.Load(), refused.Load())
}

// TestAccountPasswordChecksBounded: at most MaxPasswordChecks run at
// once; a check that cannot get a slot before its context ends is
// ErrUnavailable (an overloaded server), not a wrong password.
func TestAccountPasswordChecksBounded(t *testing.T) {
	e := newEnv(t, func(o *auth.Options) { o.MaxPasswordChecks = 2 })
	v := newGatedVerifier(e.dir)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() {
			e.m.VerifyAccountPassword(t.Context(), v, auth.Attempt{Username: "alice", Password: fmt.Sprint("p", i), RemoteAddr: fmt.Sprint("192.0.2.", i)})
		})
	}
	<-v.entered
	<-v.entered
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := e.m.VerifyAccountPassword(ctx, v, auth.Attempt{Username: "bob", Password: "x", RemoteAddr: "192.0.2.9"})
	if !errors.Is(err, auth.ErrUnavailable) || errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("third check with both slots taken: %v, want ErrUnavailable", err)
	}
	close(v.gate)
	wg.Wait()
	if n := v.maxNow.Load(); n > 2 {
		t.Errorf("%d checks ran at once, want at most 2", n)
	}
	if _, err := e.m.VerifyAccountPassword(t.Context(), e.dir, auth.Attempt{Username: "bob", Password: "account-password-of-bob"}); err != nil {
		t.Errorf("after the burst: %v", err)
	}
}

// TestAccountPasswordEvents: every account-password decision is an audit
// line naming the login and address, like app passwords'.
func TestAccountPasswordEvents(t *testing.T) {
	th, err := throttle.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	var events []auth.Event
	e := newEnv(t, func(o *auth.Options) {
		o.Limiter = th
		o.OnEvent = func(ev auth.Event) { events = append(events, ev) }
	})
	try := func(login, password, addr string) error {
		_, err := e.m.VerifyAccountPassword(t.Context(), e.dir, auth.Attempt{Username: login, Password: password, RemoteAddr: addr, UserAgent: "Firefox"})
		return err
	}
	if err := try("ALICE", "account-password-of-alice", "192.0.2.1"); err != nil {
		t.Fatalf("right password (login in capitals): %v", err)
	}
	for i := range 10 {
		if err := try("alice", fmt.Sprint("wrong-", i), "198.51.100.7"); !errors.Is(err, auth.ErrInvalidCredentials) {
			t.Fatalf("wrong password %d: %v", i, err)
		}
	}
	if err := try("alice", "account-password-of-alice", "198.51.100.7"); !errors.Is(err, auth.ErrThrottled) {
		t.Fatalf("after 10 failures: %v, want ErrThrottled", err)
	}
	count := map[auth.EventType]int{}
	for _, ev := range events {
		if ev.Kind != auth.KindAccountPassword {
			t.Errorf("event %+v: kind %q", ev, ev.Kind)
		}
		count[ev.Type]++
		if ev.Type != auth.EventAuthenticated && (ev.Login != "alice" || ev.RemoteAddr != "198.51.100.7" || ev.UserAgent != "Firefox") {
			t.Errorf("event %+v does not name the login, address and client", ev)
		}
		if ev.Type == auth.EventFailed && ev.Reason != "wrong_password" {
			t.Errorf("failed event reason %q", ev.Reason)
		}
	}
	if count[auth.EventAuthenticated] != 1 || count[auth.EventFailed] != 10 || count[auth.EventThrottled] != 1 {
		t.Errorf("events %v, want 1 authenticated, 10 failed, 1 throttled", count)
	}
	logs := e.logs.String()
	for _, want := range []string{`"msg":"auth failed","event":"failed","kind":"account_password","login":"alice"`, `"msg":"auth throttled"`, `"remote_addr":"198.51.100.7"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("audit log lacks %s:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, "wrong-3") || strings.Contains(logs, "account-password-of-alice") {
		t.Error("a password reached the log")
	}
}

// TestLoginVariantsOneAccount: case and width variants of a login name
// the same account for app passwords and account passwords; a variant
// with a compatibility character ("ſ", U+017F) names none.
func TestLoginVariantsOneAccount(t *testing.T) {
	e := newEnv(t, nil)
	sam := &auth.User{ID: "u-sam", Login: "sam"}
	if err := e.dir.AddUser(*sam, "account-password-of-sam"); err != nil {
		t.Fatal(err)
	}
	_, secret := e.issue(t, sam, "phone")
	for _, login := range []string{"sam", "SAM", "Sam", "ｓａｍ", "ＳＡＭ"} {
		if p, err := e.auth(t, login, secret); err != nil || p.User.ID != "u-sam" {
			t.Errorf("app password as %q: %+v, %v", login, p, err)
		}
		if p, err := e.m.VerifyAccountPassword(t.Context(), e.dir, auth.Attempt{Username: login, Password: "account-password-of-sam"}); err != nil || p.User.ID != "u-sam" {
			t.Errorf("account password as %q: %+v, %v", login, p, err)
		}
	}
	for _, login := range []string{"ſam", "SAM\u200b", "s\u0007am"} {
		if _, err := e.auth(t, login, secret); !errors.Is(err, auth.ErrInvalidCredentials) {
			t.Errorf("app password as %q: %v, want ErrInvalidCredentials", login, err)
		}
		if _, err := e.m.VerifyAccountPassword(t.Context(), e.dir, auth.Attempt{Username: login, Password: "account-password-of-sam"}); !errors.Is(err, auth.ErrInvalidCredentials) {
			t.Errorf("account password as %q: %v, want ErrInvalidCredentials", login, err)
		}
	}
}

// TestAccountPasswordOverDAVLoggedAsSuch: an account password sent where
// an app password is expected is refused and logged as that, not as
// "malformed".
func TestAccountPasswordOverDAVLoggedAsSuch(t *testing.T) {
	var reasons []string
	e := newEnv(t, func(o *auth.Options) { o.OnEvent = func(ev auth.Event) { reasons = append(reasons, ev.Reason) } })
	if _, err := e.auth(t, "alice", "account-password-of-alice"); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Fatalf("account password as an app password: %v", err)
	}
	if len(reasons) != 1 || reasons[0] != "account_password" {
		t.Errorf("reasons %q, want [account_password]", reasons)
	}
}

// TestOnlyAllowedAttemptsReported: the Limiter hears of an attempt's
// outcome only if it allowed it. An attempt refused before the Limiter is
// asked (malformed) must not settle another attempt in flight, or a flood
// of free malformed requests would let a burst past the limit.
func TestOnlyAllowedAttemptsReported(t *testing.T) {
	l := &testkit.Limiter{}
	e := newEnv(t, func(o *auth.Options) { o.Limiter = l })
	_, secret := e.issue(t, e.alice, "phone")
	e.auth(t, "alice", "aap-not-even-close")
	e.auth(t, "al\x00ice", secret)
	e.m.VerifyAccountPassword(t.Context(), e.dir, auth.Attempt{Username: "alice", Password: ""})
	if a, r := l.Allowed(), l.Results(); len(a) != 0 || len(r) != 0 {
		t.Errorf("malformed attempts: Allow saw %d, Done saw %d; want none", len(a), len(r))
	}
	l.Refuse(&auth.ThrottleError{RetryAfter: time.Second})
	e.auth(t, "alice", secret)
	e.m.VerifyAccountPassword(t.Context(), e.dir, auth.Attempt{Username: "alice", Password: "account-password-of-alice"})
	if r := l.Results(); len(r) != 0 {
		t.Errorf("refused attempts reported to Done: %+v", r)
	}
}
