// Package benchpair measures an operation against its baseline in the same
// benchmark run, alternating the two in every worker so that both see the
// same machine, and reports their throughput ratio.
package benchpair

import (
	"sync/atomic"
	"testing"
	"time"
)

// Pair is one worker's baseline and subject; Close, if set, runs when the
// worker is done.
type Pair struct {
	Baseline, Subject func() error
	Close             func()
}

// Run calls newPair once in each parallel worker (b.RunParallel, so
// b.SetParallelism applies), then alternates the worker's baseline and
// subject until the benchmark ends. It reports the mean time of each
// ("baseline-ns", "subject-ns") and "ratio": baseline time / subject time,
// the subject's throughput as a share of the baseline's.
func Run(b *testing.B, newPair func() (Pair, error)) {
	var baseNs, subjNs, pairs atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		p, err := newPair()
		if err != nil {
			b.Error(err)
			return
		}
		if p.Close != nil {
			defer p.Close()
		}
		var base, subj time.Duration
		var n int64
		for pb.Next() {
			t0 := time.Now()
			if err := p.Baseline(); err != nil {
				b.Errorf("baseline: %v", err)
				return
			}
			t1 := time.Now()
			if err := p.Subject(); err != nil {
				b.Errorf("subject: %v", err)
				return
			}
			base, subj, n = base+t1.Sub(t0), subj+time.Since(t1), n+1
		}
		baseNs.Add(int64(base))
		subjNs.Add(int64(subj))
		pairs.Add(n)
	})
	if pairs.Load() == 0 || subjNs.Load() == 0 {
		return
	}
	b.ReportMetric(float64(baseNs.Load())/float64(pairs.Load()), "baseline-ns")
	b.ReportMetric(float64(subjNs.Load())/float64(pairs.Load()), "subject-ns")
	b.ReportMetric(float64(baseNs.Load())/float64(subjNs.Load()), "ratio")
}
