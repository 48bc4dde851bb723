// Package benchpair measures an operation against its baseline in the same
// benchmark run, alternating the two in every worker so that both see the
// same machine, and reports their throughput ratio.
package benchpair

import (
	"sync"
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

// RunBlocks measures throughput with workers concurrent workers rather than
// latency: every worker runs block calls of the baseline, all at once, then
// block calls of the subject, all at once, alternating (the side that goes
// first alternates too) until b.N calls of each are done. A side's time is
// the wall-clock time of its blocks, from the first call's start to the
// last worker's end, so it includes what concurrency costs that side (lock
// waits, a shared query, a writer in the background), which an
// alternation within each worker would spread over both sides. Blocks are
// small, so load from elsewhere on the machine hits both sides alike.
// Each worker is one goroutine for the whole run, as a server's connection
// goroutine serves request after request: a goroutine per block would grow
// its stack again every block, which costs the side with the deeper calls
// more.
//
// newPair is called once per worker, before the timer starts again. It
// reports "baseline-ns" and "subject-ns" (wall time per call with workers
// at once) and "ratio": baseline time / subject time.
func RunBlocks(b *testing.B, workers, block int, newPair func() (Pair, error)) {
	b.StopTimer()
	pairs := make([]Pair, workers)
	for i := range pairs {
		p, err := newPair()
		if err != nil {
			b.Fatal(err)
		}
		pairs[i] = p
		if p.Close != nil {
			defer p.Close()
		}
	}
	jobs := make([]chan func(), workers)
	for i := range jobs {
		jobs[i] = make(chan func())
		go func() {
			for job := range jobs[i] {
				job()
			}
		}()
		defer close(jobs[i])
	}
	var failed atomic.Bool
	// phase runs n calls of side in each worker at once and returns its
	// wall-clock time.
	phase := func(n int, side func(Pair) func() error, name string) time.Duration {
		var wg sync.WaitGroup
		wg.Add(len(pairs))
		t0 := time.Now()
		for i, p := range pairs {
			f := side(p)
			jobs[i] <- func() {
				defer wg.Done()
				for range n {
					if err := f(); err != nil {
						if !failed.Swap(true) {
							b.Errorf("%s: %v", name, err)
						}
						return
					}
				}
			}
		}
		wg.Wait()
		return time.Since(t0)
	}
	base := func(p Pair) func() error { return p.Baseline }
	subj := func(p Pair) func() error { return p.Subject }
	var baseT, subjT time.Duration
	calls := 0
	b.StartTimer()
	for round := 0; calls < b.N && !failed.Load(); round++ {
		n := min(block, (b.N-calls+workers-1)/workers)
		if round%2 == 0 {
			baseT += phase(n, base, "baseline")
			subjT += phase(n, subj, "subject")
		} else {
			subjT += phase(n, subj, "subject")
			baseT += phase(n, base, "baseline")
		}
		calls += n * workers
	}
	b.StopTimer()
	if calls == 0 || subjT == 0 {
		return
	}
	b.ReportMetric(float64(baseT)/float64(calls), "baseline-ns")
	b.ReportMetric(float64(subjT)/float64(calls), "subject-ns")
	b.ReportMetric(float64(baseT)/float64(subjT), "ratio")
}
