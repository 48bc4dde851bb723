package testkit

import (
	"context"
	"slices"
	"sync"

	"github.com/appauth/appauth/auth"
)

// Limiter is an [auth.Limiter] that allows every attempt until told to
// refuse, and records the attempts and outcomes it is given. The zero value
// is ready to use; it is safe for concurrent use.
type Limiter struct {
	mu      sync.Mutex
	refuse  error
	allowed []auth.Attempt
	results []Result
}

// Result is one outcome reported to a [Limiter] with Done.
type Result struct {
	Attempt auth.Attempt
	Success bool
}

// Refuse makes Allow return err from now on (an [auth.ThrottleError] to
// throttle, any other error for a limiter that cannot decide); Refuse(nil)
// allows again.
func (l *Limiter) Refuse(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refuse = err
}

// Allow implements [auth.Limiter]: it records a and returns the error set
// with Refuse.
func (l *Limiter) Allow(_ context.Context, a auth.Attempt) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.allowed = append(l.allowed, a)
	return l.refuse
}

// Done implements [auth.Limiter] and records the outcome.
func (l *Limiter) Done(a auth.Attempt, success bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.results = append(l.results, Result{Attempt: a, Success: success})
}

// Allowed returns the attempts passed to Allow, oldest first, refused ones
// included.
func (l *Limiter) Allowed() []auth.Attempt {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.allowed)
}

// Results returns the outcomes passed to Done, oldest first.
func (l *Limiter) Results() []Result {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.results)
}

// Counts returns how many failures and successes were passed to Done.
func (l *Limiter) Counts() (failures, successes int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.results {
		if r.Success {
			successes++
		} else {
			failures++
		}
	}
	return failures, successes
}
