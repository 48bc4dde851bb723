package metrics_test

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/metrics"
	"github.com/appauth/appauth/backends/memory"
	"github.com/appauth/appauth/internal/testkit"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

type env struct {
	m       *auth.Manager
	metrics *metrics.Metrics
	reg     *prometheus.Registry
	store   *testkit.Store
	limiter *testkit.Limiter
	alice   *auth.User
	bob     *auth.User
}

func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{
		metrics: metrics.New(),
		reg:     prometheus.NewRegistry(),
		store:   testkit.NewStore(memory.NewStore()),
		limiter: &testkit.Limiter{},
		alice:   &auth.User{ID: "u-alice", Login: "alice"},
		bob:     &auth.User{ID: "u-bob", Login: "bob"},
	}
	dir := memory.NewDirectory()
	for _, u := range []*auth.User{e.alice, e.bob} {
		if err := dir.AddUser(*u, "pw-"+u.Login); err != nil {
			t.Fatal(err)
		}
	}
	e.m = testkit.NewManager(t, e.store, dir, &auth.Options{OnEvent: e.metrics.Observe, Limiter: e.limiter})
	e.metrics.SetStats(e.m)
	e.reg.MustRegister(e.metrics)
	return e
}

// scrape gathers every series as "name{label=value,...}" -> value (the
// sample count for a histogram).
func scrape(t testing.TB, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(labels)
			key := mf.GetName() + "{" + strings.Join(labels, ",") + "}"
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[key] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[key] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

func (e *env) issue(t *testing.T, u *auth.User) (*auth.AppPassword, string) {
	t.Helper()
	ap, secret, err := e.m.IssueAppPassword(t.Context(), u, auth.IssueRequest{Name: "device"})
	if err != nil {
		t.Fatal(err)
	}
	return ap, secret
}

func (e *env) auth(t *testing.T, login, secret string) error {
	t.Helper()
	_, err := e.m.Authenticate(t.Context(), auth.Attempt{Username: login, Password: secret, RemoteAddr: "192.0.2.1", UserAgent: "test"})
	return err
}

// TestScriptedSession: issues, uses (cached and not), failures, a throttled
// attempt and a store outage show up as the expected counts.
func TestScriptedSession(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	_, p1 := e.issue(t, e.alice)
	_, p2 := e.issue(t, e.alice)
	_, p3 := e.issue(t, e.alice)
	gone, revoked := e.issue(t, e.bob)
	if err := e.m.RevokeAppPassword(ctx, e.bob.ID, gone.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.m.CreateSession(ctx, e.alice, "192.0.2.1", "browser"); err != nil {
		t.Fatal(err)
	}
	mustErr := func(err, want error) {
		t.Helper()
		if !errorsIs(err, want) {
			t.Fatalf("err = %v, want %v", err, want)
		}
	}
	mustErr(e.auth(t, "alice", p1), nil)                               // miss
	mustErr(e.auth(t, "alice", p1), nil)                               // hit
	mustErr(e.auth(t, "alice", p2), nil)                               // miss
	mustErr(e.auth(t, "bob", p1), auth.ErrInvalidCredentials)          // hit, wrong_user
	mustErr(e.auth(t, "alice", "hunter2"), auth.ErrInvalidCredentials) // account_password, no cache
	mustErr(e.auth(t, "bob", revoked), auth.ErrInvalidCredentials)     // miss, unknown
	mustErr(e.auth(t, "bob", revoked), auth.ErrInvalidCredentials)     // hit (negative), unknown
	e.limiter.Refuse(&auth.ThrottleError{RetryAfter: time.Minute})
	mustErr(e.auth(t, "bob", revoked), auth.ErrThrottled) // hit, throttled
	e.limiter.Refuse(nil)
	e.store.Fail(auth.ErrUnavailable)
	mustErr(e.auth(t, "alice", p3), auth.ErrUnavailable) // miss, store down

	got := scrape(t, e.reg)
	want := map[string]float64{
		`appauth_authentications_total{kind=app_password,reason=none,result=success}`:             3,
		`appauth_authentications_total{kind=app_password,reason=wrong_user,result=failure}`:       1,
		`appauth_authentications_total{kind=app_password,reason=account_password,result=failure}`: 1,
		`appauth_authentications_total{kind=app_password,reason=unknown,result=failure}`:          2,
		`appauth_authentications_total{kind=app_password,reason=none,result=throttled}`:           1,
		`appauth_authentications_total{kind=app_password,reason=store,result=unavailable}`:        1,
		`appauth_authentications_total{kind=app_password,reason=malformed,result=failure}`:        0,
		`appauth_credentials_issued_total{kind=app_password}`:                                     4,
		`appauth_credentials_issued_total{kind=session}`:                                          1,
		`appauth_credentials_revoked_total{kind=app_password}`:                                    1,
		`appauth_throttled_total{kind=app_password}`:                                              1,
		`appauth_backend_errors_total{backend=store}`:                                             1,
		`appauth_backend_errors_total{backend=directory}`:                                         0,
		`appauth_backend_up{backend=store}`:                                                       0,
		`appauth_cache_lookups_total{cache=hit,kind=app_password}`:                                4, // exact; the hit histogram is a sample
		`appauth_cache_lookups_total{cache=miss,kind=app_password}`:                               4,
		`appauth_cache_lookups_total{cache=none,kind=app_password}`:                               1,
		`appauth_verify_duration_seconds{cache=miss,kind=app_password}`:                           4,
		`appauth_verify_duration_seconds{cache=none,kind=app_password}`:                           1,
		`appauth_cache_entries{cache=credentials}`:                                                2,
		`appauth_cache_entries{cache=unknown}`:                                                    1,
		`appauth_cache_entries{cache=owners}`:                                                     1,
		`appauth_grace_served_total{}`:                                                            0,
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("%s missing", k)
		} else if g != w {
			t.Errorf("%s = %v, want %v", k, g, w)
		}
	}
	if t.Failed() {
		t.Logf("scraped: %v", got)
	}
}

// TestCardinalityBounded: 10,000 distinct logins, addresses and clients
// failing add no series, and no label value is one of them.
func TestCardinalityBounded(t *testing.T) {
	e := newEnv(t)
	before := scrape(t, e.reg)
	_, secret := e.issue(t, e.alice)
	for i := range 10_000 {
		login := fmt.Sprintf("intruder-%05d", i)
		_, err := e.m.Authenticate(t.Context(), auth.Attempt{Username: login, Password: secret,
			RemoteAddr: fmt.Sprintf("198.51.%d.%d", i/256, i%256), UserAgent: "ua-" + login})
		if !errorsIs(err, auth.ErrInvalidCredentials) {
			t.Fatalf("%s: err = %v", login, err)
		}
	}
	after := scrape(t, e.reg)
	if len(after) != len(before) {
		t.Errorf("series: %d before, %d after 10,000 logins", len(before), len(after))
	}
	if n := after[`appauth_authentications_total{kind=app_password,reason=wrong_user,result=failure}`]; n != 10_000 {
		t.Errorf("wrong_user failures = %v, want 10000", n)
	}
	for k := range after {
		for _, bad := range []string{"intruder", "198.51.", "ua-", "alice", "u-alice"} {
			if strings.Contains(k, bad) {
				t.Errorf("series %s has an identifier (%q) in a label", k, bad)
			}
		}
	}
}

// TestUnknownValuesBecomeOther: a reason, kind or backend outside the fixed
// set is counted as "other", not as a new series.
func TestUnknownValuesBecomeOther(t *testing.T) {
	m := metrics.New()
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	before := 0
	for i := range 100 {
		m.Observe(auth.Event{Type: auth.EventFailed, Kind: auth.Kind(fmt.Sprint("k", i)), Reason: fmt.Sprint("r", i)})
		m.Observe(auth.Event{Type: auth.EventUnavailable, Kind: auth.KindSession, Reason: fmt.Sprint("b", i),
			Cache: auth.CacheOutcome(200), Duration: time.Millisecond})
		m.SetUp(fmt.Sprint("b", i), true)
		if i == 0 {
			before = len(scrape(t, reg)) // backend_up{backend="other"} now exists
		}
	}
	got := scrape(t, reg)
	if len(got) != before {
		t.Errorf("series: %d after one unknown value, %d after 100", before, len(got))
	}
	for k := range got {
		if strings.Contains(k, "=k1") || strings.Contains(k, "=r1") || strings.Contains(k, "=b1") {
			t.Errorf("series %s has a value from outside the fixed set", k)
		}
	}
	if n := got[`appauth_authentications_total{kind=other,reason=other,result=failure}`]; n != 100 {
		t.Errorf("other failures = %v, want 100", n)
	}
	if n := got[`appauth_backend_errors_total{backend=other}`]; n != 100 {
		t.Errorf("other backend errors = %v, want 100", n)
	}
}

// TestQuietHitsCountedFromStats: with auth.Options.QuietHits the hook is
// not called for most cached successes; the metrics count every one from
// Manager.Stats at scrape time, exactly once, and the hit histogram holds
// only the measured sample.
func TestQuietHitsCountedFromStats(t *testing.T) {
	for _, quiet := range []bool{false, true} {
		mt := metrics.New()
		reg := prometheus.NewRegistry()
		dir := memory.NewDirectory()
		alice := auth.User{ID: "u-alice", Login: "alice"}
		if err := dir.AddUser(alice, "pw"); err != nil {
			t.Fatal(err)
		}
		m := testkit.NewManager(t, memory.NewStore(), dir, &auth.Options{OnEvent: mt.Observe, QuietHits: quiet})
		// A success before SetStats is counted from its event, once.
		_, secret, err := m.IssueAppPassword(t.Context(), &alice, auth.IssueRequest{Name: "phone"})
		if err != nil {
			t.Fatal(err)
		}
		c := auth.Attempt{Username: "alice", Password: secret, RemoteAddr: "192.0.2.1"}
		for range 2 { // a miss, a hit
			if _, err := m.Authenticate(t.Context(), c); err != nil {
				t.Fatal(err)
			}
		}
		mt.SetStats(m)
		reg.MustRegister(mt)
		const n = 300
		for range n {
			if _, err := m.Authenticate(t.Context(), c); err != nil {
				t.Fatal(err)
			}
		}
		got := scrape(t, reg)
		success := got[`appauth_authentications_total{kind=app_password,reason=none,result=success}`]
		hits := got[`appauth_cache_lookups_total{cache=hit,kind=app_password}`]
		sampled := got[`appauth_verify_duration_seconds{cache=hit,kind=app_password}`]
		if success != n+2 || hits != n+1 {
			t.Errorf("quiet=%v: successes %v (want %d), cache hits %v (want %d)", quiet, success, n+2, hits, n+1)
		}
		if sampled > n/8 {
			t.Errorf("quiet=%v: hit histogram holds %v of %d hits, want a sample of about 1 in 64", quiet, sampled, n+1)
		}
	}
}

// TestUnusedHasItsReason: an app password refused for having gone unused
// (auth.Options.ExpireUnusedAfter) is counted under its own reason, as the
// Manager's audit line names it, not as "other".
func TestUnusedHasItsReason(t *testing.T) {
	mt := metrics.New()
	reg := prometheus.NewRegistry()
	reg.MustRegister(mt)
	clock := testkit.NewClock(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC))
	dir := memory.NewDirectory()
	alice := auth.User{ID: "u-alice", Login: "alice"}
	if err := dir.AddUser(alice, "pw"); err != nil {
		t.Fatal(err)
	}
	m := testkit.NewManager(t, memory.NewStore(), dir, &auth.Options{OnEvent: mt.Observe, Now: clock.Now, ExpireUnusedAfter: 24 * time.Hour})
	_, secret, err := m.IssueAppPassword(t.Context(), &alice, auth.IssueRequest{Name: "old phone"})
	if err != nil {
		t.Fatal(err)
	}
	clock.Add(25 * time.Hour)
	if _, err := m.Authenticate(t.Context(), auth.Attempt{Username: "alice", Password: secret}); !errorsIs(err, auth.ErrInvalidCredentials) {
		t.Fatalf("err = %v, want ErrInvalidCredentials", err)
	}
	got := scrape(t, reg)
	if n := got[`appauth_authentications_total{kind=app_password,reason=unused,result=failure}`]; n != 1 {
		t.Errorf("unused failures = %v, want 1 (other: %v)", n, got[`appauth_authentications_total{kind=app_password,reason=other,result=failure}`])
	}
}
