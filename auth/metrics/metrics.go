// Package metrics exports an [auth.Manager]'s events and caches as
// Prometheus metrics.
//
// It is fed by the Manager's event hook, so an embedder opts in and package
// auth stays free of the Prometheus client:
//
//	m := metrics.New()
//	mgr, err := auth.NewManager(store, dir, &auth.Options{OnEvent: m.Observe, ...})
//	m.SetStats(mgr)
//	registry.MustRegister(m)
//
// Every label value comes from a fixed set (an unknown one becomes
// "other"), so the number of series is bounded whatever the clients send.
// No user, login, address, user agent or credential ID is ever a label.
//
// Metrics (all prefixed appauth_):
//
//   - authentications_total{kind,result,reason}: verify decisions; result is
//     success, failure, throttled or unavailable; reason is why a failure
//     failed (see [auth.Event].Reason), what was unavailable (store,
//     directory, limiter), or "none".
//   - verify_duration_seconds{kind,cache}: how long those decisions took,
//     split by whether the credential cache answered (hit, miss, none).
//   - credentials_issued_total{kind}, credentials_revoked_total{kind}.
//   - throttled_total{kind}: attempts the Limiter refused.
//   - backend_errors_total{backend}: store, directory or limiter outages.
//   - backend_up{backend}: 1 or 0, from the last health check
//     ([Metrics.SetUp]) or outage.
//   - cache_lookups_total{result}: credential-cache hits and misses (the
//     hit ratio is hits over both).
//   - cache_entries{cache} and grace_served_total: read from
//     [auth.Manager.Stats] at scrape time.
package metrics

import (
	"sync/atomic"

	"github.com/appauth/appauth/auth"
	"github.com/prometheus/client_golang/prometheus"
)

// The fixed label values. Anything else becomes "other".
var (
	kinds    = []string{string(auth.KindAppPassword), string(auth.KindSession), string(auth.KindAccountPassword), "other"}
	reasons  = []string{"malformed", "unknown", "wrong_user", "wrong_kind", "expired", "idle", "owner_invalid", "account_password", "wrong_password", "invalid_login", "other"}
	backends = []string{"store", "directory", "limiter", "other"}
	caches   = []string{"none", "hit", "miss"}
)

const (
	resSuccess = iota
	resFailure
	resThrottled
	resUnavailable
)

// DurationBuckets are the verify-duration histogram's buckets, in seconds:
// from a cached verify (tens of microseconds) to a store timeout.
var DurationBuckets = []float64{.00002, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

// StatsSource is what [Metrics.SetStats] reads: an [auth.Manager].
type StatsSource interface {
	Stats() auth.Stats
}

// Metrics is a [prometheus.Collector] of a Manager's metrics. Its
// [Metrics.Observe] is the Manager's [auth.Options].OnEvent. It is safe
// for concurrent use.
type Metrics struct {
	// Series are made up front and indexed, so that Observe on the verify
	// path does no label hashing and no allocation.
	success     [4]prometheus.Counter     // by kind
	failure     [4][11]prometheus.Counter // by kind, reason
	throttledA  [4]prometheus.Counter     // by kind
	unavailable [4][4]prometheus.Counter  // by kind, backend
	duration    [4][3]prometheus.Observer // by kind, cache
	issued      [4]prometheus.Counter
	revoked     [4]prometheus.Counter
	throttled   [4]prometheus.Counter
	backendErr  [4]prometheus.Counter
	up          [4]prometheus.Gauge
	lookups     [3]prometheus.Counter // by cache outcome (none unused)

	vecs  []prometheus.Collector
	stats atomic.Pointer[StatsSource]

	entriesDesc, graceDesc *prometheus.Desc
}

var _ prometheus.Collector = (*Metrics)(nil)

// New returns Metrics with every series at zero.
func New() *Metrics {
	m := &Metrics{
		entriesDesc: prometheus.NewDesc("appauth_cache_entries", "Entries in the Manager's caches.", []string{"cache"}, nil),
		graceDesc:   prometheus.NewDesc("appauth_grace_served_total", "Requests served from a directory answer kept through an outage.", nil, nil),
	}
	authn := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "appauth_authentications_total",
		Help: "Verify decisions by kind of credential, result and reason."}, []string{"kind", "result", "reason"})
	dur := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "appauth_verify_duration_seconds",
		Help: "How long verify decisions took, by kind and credential-cache outcome.", Buckets: DurationBuckets}, []string{"kind", "cache"})
	issued := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "appauth_credentials_issued_total",
		Help: "Credentials issued."}, []string{"kind"})
	revoked := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "appauth_credentials_revoked_total",
		Help: "Credentials revoked."}, []string{"kind"})
	throttled := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "appauth_throttled_total",
		Help: "Attempts the Limiter refused."}, []string{"kind"})
	backendErr := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "appauth_backend_errors_total",
		Help: "Times a store, directory or limiter could not answer."}, []string{"backend"})
	up := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "appauth_backend_up",
		Help: "1 if the backend answered its last health check, 0 after an outage."}, []string{"backend"})
	lookups := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "appauth_cache_lookups_total",
		Help: "Credential-cache lookups by result (hit or miss)."}, []string{"result"})
	m.vecs = []prometheus.Collector{authn, dur, issued, revoked, throttled, backendErr, up, lookups}
	for k, kind := range kinds {
		m.success[k] = authn.WithLabelValues(kind, "success", "none")
		m.throttledA[k] = authn.WithLabelValues(kind, "throttled", "none")
		for r, reason := range reasons {
			m.failure[k][r] = authn.WithLabelValues(kind, "failure", reason)
		}
		for b, backend := range backends {
			m.unavailable[k][b] = authn.WithLabelValues(kind, "unavailable", backend)
		}
		for c, cache := range caches {
			m.duration[k][c] = dur.WithLabelValues(kind, cache)
		}
		m.issued[k] = issued.WithLabelValues(kind)
		m.revoked[k] = revoked.WithLabelValues(kind)
		m.throttled[k] = throttled.WithLabelValues(kind)
	}
	for b, backend := range backends {
		m.backendErr[b] = backendErr.WithLabelValues(backend)
		m.up[b] = up.WithLabelValues(backend)
	}
	for c, cache := range caches[1:] {
		m.lookups[c+1] = lookups.WithLabelValues(cache)
	}
	return m
}

// SetStats makes Collect report s's cache sizes and grace-served count
// (pass the Manager once it exists: it needs Observe as its hook first).
func (m *Metrics) SetStats(s StatsSource) { m.stats.Store(&s) }

// SetUp records a health check of backend ("store" or "directory"): up
// reports that it answered.
func (m *Metrics) SetUp(backend string, up bool) {
	v := 0.0
	if up {
		v = 1
	}
	m.up[index(backends, backend)].Set(v)
}

// Observe counts e. It is the Manager's [auth.Options].OnEvent: cheap, no
// allocation, never blocking.
func (m *Metrics) Observe(e auth.Event) {
	k := kindIndex(e.Kind)
	verify := true
	switch e.Type {
	case auth.EventAuthenticated:
		m.success[k].Inc()
	case auth.EventFailed:
		m.failure[k][index(reasons, e.Reason)].Inc()
	case auth.EventThrottled:
		m.throttledA[k].Inc()
		m.throttled[k].Inc()
	case auth.EventUnavailable:
		b := index(backends, e.Reason)
		m.unavailable[k][b].Inc()
		m.backendErr[b].Inc()
		m.up[b].Set(0)
	case auth.EventIssued:
		m.issued[k].Inc()
		verify = false
	case auth.EventRevoked:
		m.revoked[k].Add(float64(max(e.Count, 0)))
		verify = false
	default:
		verify = false
	}
	if !verify {
		return
	}
	c := int(e.Cache)
	if c >= len(caches) {
		c = 0
	}
	if c != 0 {
		m.lookups[c].Inc()
	}
	if e.Duration > 0 {
		m.duration[k][c].Observe(e.Duration.Seconds())
	}
}

func kindIndex(k auth.Kind) int {
	switch k {
	case auth.KindAppPassword:
		return 0
	case auth.KindSession:
		return 1
	case auth.KindAccountPassword:
		return 2
	}
	return 3
}

// index is v's position in set, or that of "other", the last.
func index(set []string, v string) int {
	for i, s := range set {
		if s == v {
			return i
		}
	}
	return len(set) - 1
}

// Describe implements [prometheus.Collector].
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, v := range m.vecs {
		v.Describe(ch)
	}
	ch <- m.entriesDesc
	ch <- m.graceDesc
}

// Collect implements [prometheus.Collector].
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, v := range m.vecs {
		v.Collect(ch)
	}
	p := m.stats.Load()
	if p == nil {
		return
	}
	s := (*p).Stats()
	ch <- prometheus.MustNewConstMetric(m.entriesDesc, prometheus.GaugeValue, float64(s.CachedCredentials), "credentials")
	ch <- prometheus.MustNewConstMetric(m.entriesDesc, prometheus.GaugeValue, float64(s.CachedUnknown), "unknown")
	ch <- prometheus.MustNewConstMetric(m.entriesDesc, prometheus.GaugeValue, float64(s.CachedOwners), "owners")
	ch <- prometheus.MustNewConstMetric(m.graceDesc, prometheus.CounterValue, float64(s.GraceServed))
}
