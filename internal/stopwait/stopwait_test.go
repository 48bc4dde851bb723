package stopwait

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestDo: a call that returns in time gives its results; one that outlives
// its context is left running, counted until it returns, and its caller
// gets done false at the context's end.
func TestDo(t *testing.T) {
	var a Abandoned
	errBoom := errors.New("boom")
	v, err, done := Do(t.Context(), &a, func(context.Context) (int, error) { return 7, errBoom })
	if v != 7 || err != errBoom || !done {
		t.Fatalf("a call in time: %d, %v, %v; want 7, boom, true", v, err, done)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	release := make(chan struct{})
	start := time.Now()
	v, err, done = Do(ctx, &a, func(context.Context) (int, error) { <-release; return 1, nil })
	if v != 0 || err != nil || done || time.Since(start) > 5*time.Second {
		t.Fatalf("a hung call: %d, %v, %v after %v; want 0, nil, false at the deadline", v, err, done, time.Since(start))
	}
	if n := a.Running(); n != 1 {
		t.Fatalf("Running() = %d while the hung call runs, want 1", n)
	}
	close(release)
	for deadline := time.Now().Add(5 * time.Second); a.Running() != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("Running() = %d after the call returned, want 0", a.Running())
		}
	}
}
