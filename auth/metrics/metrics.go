// Package metrics exports an [auth.Manager]'s events and caches as
// Prometheus metrics.
//
// It is fed by the Manager's event hook, so an embedder opts in and package
// auth stays free of the Prometheus client:
//
//	m := metrics.New()
//	mgr, err := auth.NewManager(store, dir, &auth.Options{OnEvent: m.Observe, QuietHits: true, ...})
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
//     split by whether the credential cache answered (hit, miss, none). The
//     hit series is a sample: the Manager measures about one cache hit in
//     64 (a clock read costs a tenth of a hit; see [auth.Event].Duration),
//     so its buckets and _count are about 1/64 of the hits, and its
//     quantiles and mean (_sum/_count) are those of the hits. Misses and
//     uncached decisions are all measured.
//   - cache_lookups_total{kind,cache}: every verify decision by cache
//     outcome, exactly; the hit ratio is hit over hit and miss. Once
//     [Metrics.SetStats] has the Manager, its successes answered from the
//     cache are read from [auth.Stats].CachedSuccesses at scrape time, so
//     the Manager can skip the hook for them ([auth.Options].QuietHits).
//   - credentials_issued_total{kind}, credentials_revoked_total{kind}.
//   - throttled_total{kind}: attempts the Limiter refused.
//   - backend_errors_total{backend}: store, directory or limiter outages.
//   - backend_up{backend}: 1 or 0, from the last health check
//     ([Metrics.SetUp]) or outage; absent until either.
//   - cache_entries{cache} and grace_served_total: read from
//     [auth.Manager.Stats] at scrape time.
package metrics

import (
	"sync/atomic"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/prometheus/client_golang/prometheus"
)

// The fixed label values. Anything else becomes "other", the last.
var (
	kinds    = []string{string(auth.KindAppPassword), string(auth.KindSession), string(auth.KindAccountPassword), "other"}
	reasons  = []string{"malformed", "unknown", "wrong_user", "wrong_kind", "expired", "idle", "unused", "owner_invalid", "account_password", "wrong_password", "invalid_login", "other"}
	backends = []string{"store", "directory", "limiter", "other"}
	caches   = []string{"none", "hit", "miss"}
)

const (
	nKinds    = 4
	nReasons  = 12
	nBackends = 4
	nCaches   = 3
	// An outcome is success, throttled, a failure reason or an
	// unavailable backend.
	outSuccess     = 0
	outThrottled   = 1
	outFailure     = 2
	outUnavailable = outFailure + nReasons
	nOutcomes      = outUnavailable + nBackends
)

// durationBuckets are the upper bounds of the verify-duration histogram's
// buckets: from a cached verify (microseconds) to a store timeout.
var durationBuckets = [...]time.Duration{
	20 * time.Microsecond, 50 * time.Microsecond, 100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2500 * time.Millisecond, 5 * time.Second,
}

// StatsSource is what [Metrics.SetStats] reads: an [auth.Manager].
type StatsSource interface {
	Stats() auth.Stats
}

// histogram is one series of the verify-duration histogram: a count per
// bucket (the last is +Inf) and the sum, in nanoseconds.
type histogram struct {
	buckets [len(durationBuckets) + 1]atomic.Uint64
	sum     atomic.Int64
}

// Metrics is a [prometheus.Collector] of a Manager's metrics. Its
// [Metrics.Observe] is the Manager's [auth.Options].OnEvent. It is safe
// for concurrent use.
//
// It keeps plain atomic counters, indexed by label position, and builds the
// series only when scraped: Observe on the verify path hashes no labels,
// allocates nothing and takes no lock.
type Metrics struct {
	// authn counts decisions by kind, cache outcome and outcome: one add
	// per event, summed into authentications_total and
	// cache_lookups_total at scrape time.
	authn      [nKinds][nCaches][nOutcomes]atomic.Uint64
	duration   [nKinds][nCaches]histogram
	issued     [nKinds]atomic.Uint64
	revoked    [nKinds]atomic.Uint64
	throttled  [nKinds]atomic.Uint64
	backendErr [nBackends]atomic.Uint64
	up         [nBackends]atomic.Int32 // 0 unknown, 1 down, 2 up
	stats      atomic.Pointer[StatsSource]

	authnDesc, durationDesc, lookupsDesc, issuedDesc, revokedDesc, throttledDesc *prometheus.Desc
	backendErrDesc, upDesc, entriesDesc, graceDesc                               *prometheus.Desc
}

var _ prometheus.Collector = (*Metrics)(nil)

// New returns Metrics with every series at zero.
func New() *Metrics {
	m := &Metrics{
		authnDesc: prometheus.NewDesc("appauth_authentications_total",
			"Verify decisions by kind of credential, result and reason.", []string{"kind", "result", "reason"}, nil),
		durationDesc: prometheus.NewDesc("appauth_verify_duration_seconds",
			"How long verify decisions took, by kind and credential-cache outcome.", []string{"kind", "cache"}, nil),
		lookupsDesc: prometheus.NewDesc("appauth_cache_lookups_total",
			"Verify decisions by kind and credential-cache outcome (every one; the duration histogram samples hits).", []string{"kind", "cache"}, nil),
		issuedDesc:     prometheus.NewDesc("appauth_credentials_issued_total", "Credentials issued.", []string{"kind"}, nil),
		revokedDesc:    prometheus.NewDesc("appauth_credentials_revoked_total", "Credentials revoked.", []string{"kind"}, nil),
		throttledDesc:  prometheus.NewDesc("appauth_throttled_total", "Attempts the Limiter refused.", []string{"kind"}, nil),
		backendErrDesc: prometheus.NewDesc("appauth_backend_errors_total", "Times a store, directory or limiter could not answer.", []string{"backend"}, nil),
		upDesc:         prometheus.NewDesc("appauth_backend_up", "1 if the backend answered its last health check, 0 after an outage.", []string{"backend"}, nil),
		entriesDesc:    prometheus.NewDesc("appauth_cache_entries", "Entries in the Manager's caches.", []string{"cache"}, nil),
		graceDesc:      prometheus.NewDesc("appauth_grace_served_total", "Requests served from a directory answer kept through an outage.", nil, nil),
	}
	return m
}

// SetStats makes Collect report s's cache sizes and grace-served count
// (pass the Manager once it exists: it needs Observe as its hook first).
// From then on, successes of app passwords answered from the cache are
// counted from [auth.Stats].CachedSuccesses (every one since the Manager
// was made) at scrape time, not from events, so the Manager may be built
// with [auth.Options].QuietHits: the hook is then called for about one
// cache hit in 64.
func (m *Metrics) SetStats(s StatsSource) { m.stats.Store(&s) }

// SetUp records a health check of backend ("store" or "directory"): up
// reports that it answered.
func (m *Metrics) SetUp(backend string, up bool) {
	v := int32(1)
	if up {
		v = 2
	}
	m.up[index(backends, backend)].Store(v)
}

// Observe counts e. It is the Manager's [auth.Options].OnEvent: cheap, no
// allocation, never blocking.
//
// A cached success, the common case, is one uncontended atomic add (and
// the histogram's two for the hits the Manager measured).
func (m *Metrics) Observe(e auth.Event) {
	c := int(e.Cache)
	if c >= nCaches {
		c = 0
	}
	if e.Type == auth.EventAuthenticated && e.Kind == auth.KindAppPassword {
		switch {
		case e.Cache == auth.CacheHit && m.stats.Load() != nil:
			// Counted from Stats.CachedSuccesses at scrape time; only a
			// measured one adds to the histogram.
			if e.Duration > 0 {
				m.observe(&m.duration[0][c], e.Duration)
			}
			return
		case e.Duration <= 0:
			m.authn[0][c][outSuccess].Add(1) // an unmeasured cached success
			return
		}
	}
	k := kindIndex(e.Kind)
	switch e.Type {
	case auth.EventAuthenticated:
		m.authn[k][c][outSuccess].Add(1)
	case auth.EventFailed:
		m.authn[k][c][outFailure+index(reasons, e.Reason)].Add(1)
	case auth.EventThrottled:
		m.authn[k][c][outThrottled].Add(1)
		m.throttled[k].Add(1)
	case auth.EventUnavailable:
		b := index(backends, e.Reason)
		m.authn[k][c][outUnavailable+b].Add(1)
		m.backendErr[b].Add(1)
		m.up[b].Store(1)
	case auth.EventIssued:
		m.issued[k].Add(1)
		return
	case auth.EventRevoked:
		m.revoked[k].Add(uint64(max(e.Count, 0)))
		return
	default:
		return
	}
	if e.Duration > 0 { // else a hit the Manager did not measure
		m.observe(&m.duration[k][c], e.Duration)
	}
}

// observe adds one duration to h.
func (m *Metrics) observe(h *histogram, dur time.Duration) {
	d := int64(dur)
	i := 0
	for i < len(durationBuckets) && d > int64(durationBuckets[i]) {
		i++
	}
	h.buckets[i].Add(1)
	h.sum.Add(d)
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
	for _, d := range []*prometheus.Desc{m.authnDesc, m.durationDesc, m.lookupsDesc, m.issuedDesc, m.revokedDesc, m.throttledDesc,
		m.backendErrDesc, m.upDesc, m.entriesDesc, m.graceDesc} {
		ch <- d
	}
}

// Collect implements [prometheus.Collector].
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	p := m.stats.Load()
	var s auth.Stats
	if p != nil {
		s = (*p).Stats()
	}
	for k, kind := range kinds {
		var out [nOutcomes]uint64
		for c, cache := range caches {
			var n uint64
			for o := range out {
				v := m.authn[k][c][o].Load()
				if p != nil && k == 0 && c == int(auth.CacheHit) && o == outSuccess {
					v = s.CachedSuccesses // the events counted before SetStats are in it
				}
				out[o] += v
				n += v
			}
			counter(m.lookupsDesc, n, kind, cache)
		}
		counter(m.authnDesc, out[outSuccess], kind, "success", "none")
		counter(m.authnDesc, out[outThrottled], kind, "throttled", "none")
		for r, reason := range reasons {
			counter(m.authnDesc, out[outFailure+r], kind, "failure", reason)
		}
		for b, backend := range backends {
			counter(m.authnDesc, out[outUnavailable+b], kind, "unavailable", backend)
		}
		for c, cache := range caches {
			ch <- m.histogram(&m.duration[k][c], kind, cache)
		}
		counter(m.issuedDesc, m.issued[k].Load(), kind)
		counter(m.revokedDesc, m.revoked[k].Load(), kind)
		counter(m.throttledDesc, m.throttled[k].Load(), kind)
	}
	for b, backend := range backends {
		counter(m.backendErrDesc, m.backendErr[b].Load(), backend)
		if v := m.up[b].Load(); v != 0 {
			ch <- prometheus.MustNewConstMetric(m.upDesc, prometheus.GaugeValue, float64(v-1), backend)
		}
	}
	if p == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(m.entriesDesc, prometheus.GaugeValue, float64(s.CachedCredentials), "credentials")
	ch <- prometheus.MustNewConstMetric(m.entriesDesc, prometheus.GaugeValue, float64(s.CachedUnknown), "unknown")
	ch <- prometheus.MustNewConstMetric(m.entriesDesc, prometheus.GaugeValue, float64(s.CachedOwners), "owners")
	ch <- prometheus.MustNewConstMetric(m.graceDesc, prometheus.CounterValue, float64(s.GraceServed))
}

// histogram reads h as a Prometheus histogram (cumulative buckets).
func (m *Metrics) histogram(h *histogram, labels ...string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(durationBuckets))
	var n uint64
	for i, b := range durationBuckets {
		n += h.buckets[i].Load()
		buckets[b.Seconds()] = n
	}
	n += h.buckets[len(durationBuckets)].Load()
	return prometheus.MustNewConstHistogram(m.durationDesc, n, time.Duration(h.sum.Load()).Seconds(), buckets, labels...)
}
