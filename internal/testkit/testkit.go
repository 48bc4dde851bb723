// Package testkit holds the small test doubles and helpers shared by the
// project's tests: a settable clock, a log buffer safe for concurrent
// writers, wrappers of a store and a password verifier that count calls and
// fail on demand, a recording limiter, a fixed pepper, a Manager
// constructor, a typo of a secret and the live heap for memory benchmarks.
package testkit

import (
	"bytes"
	"runtime"
	"sync"
	"time"
)

// LiveHeap returns the bytes of live heap objects after a full collection.
func LiveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// Clock is a settable clock; its Now fits auth.Options.Now and the other
// Now options. It is safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock set to t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Add moves the clock forward by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Buffer is a bytes.Buffer that several goroutines may write, for capturing
// log output.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
