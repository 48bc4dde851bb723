package auth

import (
	"context"
	"sync"
	"time"
)

// Deadlines of store calls without a timer each.
//
// context.WithTimeout per store call costs the cold verify a context, a
// runtime timer set and stopped, a child registered in (and removed from)
// the caller's context and a map of the store's own children in the new
// one: on SQLite, where the whole call is CPU in this process, about half
// of what a cold verify adds to its SELECT (BENCHMARKS.md, "Cold verify").
// A callCtx instead carries its deadline (exact, for drivers that put it
// on their socket, see sqlstore's pgconn) and its caller's values, and one
// watchdog per bounded store, ticking only while calls are in flight,
// closes its Done channel once the deadline has passed or the caller's
// context has ended: at most one tick late (maxTick), never early.

// callCtx is the context of one bounded store call. Its Value is its
// caller's, for every key: context.Cause of a callCtx is its caller's
// cause, so ask its Err for why it ended.
type callCtx struct {
	parent   context.Context
	deadline time.Time
	done     chan struct{}
	idx      int // in watchdog.calls, under watchdog.mu; -1: not there

	mu    sync.Mutex
	err   error
	after []afterFunc // AfterFunc's, until done
	next  uint64
	first [1]afterFunc // after's first room
}

type afterFunc struct {
	id uint64
	f  func()
}

var _ context.Context = (*callCtx)(nil)

func (c *callCtx) Deadline() (time.Time, bool) { return c.deadline, true }
func (c *callCtx) Done() <-chan struct{}       { return c.done }
func (c *callCtx) Value(key any) any           { return c.parent.Value(key) }

func (c *callCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// AfterFunc lets a context derived from c (database/sql derives one per
// query) follow it without a goroutine of its own: the context package
// uses it when a parent has it, as context.AfterFunc's contract says.
func (c *callCtx) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	c.next++
	id := c.next
	c.after = append(c.after, afterFunc{id, f})
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, a := range c.after {
			if a.id == id {
				c.after = append(c.after[:i], c.after[i+1:]...)
				return true
			}
		}
		return false
	}
}

// cancel ends c with err (the first time).
func (c *callCtx) cancel(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	close(c.done)
	after := c.after
	c.after = nil
	c.mu.Unlock()
	for _, a := range after {
		go a.f()
	}
}

// watchdog ends the callCtxs of one bounded store.
type watchdog struct {
	timeout, tick time.Duration

	mu       sync.Mutex
	calls    []*callCtx
	watching bool // a watch goroutine runs
}

// maxTick bounds how late a call ends after its deadline or its caller's
// cancellation; a shorter timeout has a tick of a sixteenth of it.
const maxTick = 10 * time.Millisecond

func newWatchdog(timeout time.Duration) *watchdog {
	return &watchdog{timeout: timeout, tick: min(maxTick, max(timeout/16, 100*time.Microsecond))}
}

// start returns the context of a call by a caller whose context is
// parent, ending at the timeout from now: end it with stop.
func (w *watchdog) start(parent context.Context) *callCtx {
	c := &callCtx{parent: parent, deadline: time.Now().Add(w.timeout), done: make(chan struct{})}
	c.after = c.first[:0]
	w.mu.Lock()
	c.idx = len(w.calls)
	w.calls = append(w.calls, c)
	spawn := !w.watching
	w.watching = true
	w.mu.Unlock()
	if spawn {
		go w.watch()
	}
	return c
}

// stop forgets c and ends it, as a context.WithTimeout's cancel would:
// its call has returned (or its caller gave up), and whatever the store
// left waiting on c.Done() must not wait forever.
func (w *watchdog) stop(c *callCtx) {
	w.mu.Lock()
	if c.idx >= 0 {
		w.remove(c.idx)
	}
	w.mu.Unlock()
	c.cancel(context.Canceled)
}

// remove takes calls[i] out, under w.mu.
func (w *watchdog) remove(i int) {
	last := len(w.calls) - 1
	w.calls[i].idx = -1
	if i != last {
		w.calls[i] = w.calls[last]
		w.calls[i].idx = i
	}
	w.calls[last] = nil
	w.calls = w.calls[:last]
}

// watch ends the calls whose deadline has passed or whose caller's context
// has ended, every tick, until a tick finds no call in flight.
func (w *watchdog) watch() {
	t := time.NewTicker(w.tick)
	defer t.Stop()
	type ending struct {
		c   *callCtx
		err error
	}
	var ends []ending
	for now := range t.C {
		w.mu.Lock()
		if len(w.calls) == 0 {
			w.watching = false
			w.mu.Unlock()
			return
		}
		for i := 0; i < len(w.calls); {
			c := w.calls[i]
			var err error
			if !now.Before(c.deadline) {
				err = context.DeadlineExceeded
			} else {
				err = c.parent.Err()
			}
			if err == nil {
				i++
				continue
			}
			w.remove(i)
			ends = append(ends, ending{c, err})
		}
		w.mu.Unlock()
		for i, e := range ends {
			e.c.cancel(e.err)
			ends[i] = ending{}
		}
		ends = ends[:0]
	}
}
