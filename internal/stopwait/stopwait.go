// Package stopwait runs a call that may not end when its context does (a
// driver waiting on a hung server whatever its context says) so that its
// caller stops waiting at the context's end, and counts the calls left
// running, so that their number can be bounded.
package stopwait

import (
	"context"
	"sync/atomic"
)

// Abandoned counts the calls still running after their caller stopped
// waiting. The zero value is ready.
type Abandoned struct{ n atomic.Int64 }

// Running returns how many calls are still running after their caller
// stopped waiting.
func (a *Abandoned) Running() int64 { return a.n.Load() }

// Do runs f(ctx) on a goroutine of its own and returns its results, or
// done false once ctx is done first; f then runs on, counted in a until it
// returns. A call that finishes as ctx ends returns its results.
func Do[T any](ctx context.Context, a *Abandoned, f func(context.Context) (T, error)) (v T, err error, done bool) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := f(ctx)
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err, true
	case <-ctx.Done():
		select {
		case r := <-ch: // finished at the same moment
			return r.v, r.err, true
		default:
		}
		a.n.Add(1)
		go func() { <-ch; a.n.Add(-1) }()
		var zero T
		return zero, nil, false
	}
}
