package testenv

import (
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// Outages and the shared server.
//
// `go test ./...` runs the test binaries of several packages at once, all
// against one server, so a test that stops it would break tests elsewhere.
// The lock file in APPAUTH_TEST_POSTGRES_LOCK prevents that (flock(2), one
// lock per test, not per process):
//
//   - Postgres(t) holds the lock shared until the test ends. To get it, it
//     passes through a gate (PATH.gate), held shared only briefly, unless a
//     parent test in this process holds the lock already.
//   - StopPostgres(t) releases the shared locks of the test and of its parent
//     tests in this process (they wait for it anyway), takes the gate
//     exclusively, so no new user of the server gets in, then the lock
//     exclusively, which waits until every other user is done, and releases
//     the gate. StartPostgres(t) turns the lock back to shared and takes the
//     parents' locks again.

// heldLock is the lock of one test.
type heldLock struct {
	name     string      // the test's name, to find its parents
	f        *os.File    // the lock file, or nil without EnvPostgresLock
	outage   bool        // between StopPostgres and StartPostgres
	paused   int         // outages of subtests that released this lock
	released []*heldLock // parent tests' locks released for the outage
}

var (
	locksMu sync.Mutex
	locks   = map[testing.TB]*heldLock{} // by test
)

// acquireShared gives t a shared lock on the server until t ends.
func acquireShared(t testing.TB) {
	t.Helper()
	path := os.Getenv(EnvPostgresLock)
	if path == "" {
		return
	}
	locksMu.Lock()
	_, ok := locks[t]
	// A subtest of a test that holds the lock must not queue behind a
	// waiting outage: the outage waits for the parent, the parent for it.
	parentHolds := false
	for _, o := range locks {
		if o.f != nil && !o.outage && o.paused == 0 && strings.HasPrefix(t.Name(), o.name+"/") {
			parentHolds = true
		}
	}
	locksMu.Unlock()
	if ok {
		return
	}
	f := openLock(t, path)
	if parentHolds {
		waitLock(t, f, false, "another test has PostgreSQL stopped (StopPostgres)")
	} else {
		gate := openLock(t, path+".gate")
		waitLock(t, gate, false, "another test has PostgreSQL stopped (StopPostgres)")
		waitLock(t, f, false, "another test has PostgreSQL stopped (StopPostgres)")
		gate.Close()
	}
	track(t, &heldLock{f: f})
}

// track records h as the lock of test t, until the test ends.
func track(t testing.TB, h *heldLock) {
	h.name = t.Name()
	locksMu.Lock()
	locks[t] = h
	locksMu.Unlock()
	t.Cleanup(func() {
		locksMu.Lock()
		delete(locks, t)
		locksMu.Unlock()
		if h.f != nil {
			h.f.Close()
		}
	})
}

// beginOutage takes the exclusive lock for t before the server is stopped.
// It reports whether an outage began (false if t already had one).
func beginOutage(t testing.TB) bool {
	t.Helper()
	path := os.Getenv(EnvPostgresLock)
	name := t.Name()

	locksMu.Lock()
	h := locks[t]
	if h != nil && h.outage {
		locksMu.Unlock()
		return false
	}
	var parents []*heldLock
	for _, o := range locks {
		if o != h && o.f != nil && strings.HasPrefix(name, o.name+"/") {
			parents = append(parents, o)
			if o.paused++; o.paused == 1 && !o.outage {
				unlockFile(o.f)
			}
		}
	}
	locksMu.Unlock()

	if h == nil {
		h = &heldLock{}
		if path != "" {
			h.f = openLock(t, path)
		}
		track(t, h)
	}
	if path != "" {
		unlockFile(h.f)
		gate := openLock(t, path+".gate")
		waitLock(t, gate, true, "other tests are starting to use PostgreSQL")
		waitLock(t, h.f, true, "other tests are using PostgreSQL (a test that calls StopPostgres must not wait for them)")
		gate.Close()
	}

	locksMu.Lock()
	h.outage = true
	h.released = parents
	locksMu.Unlock()
	return true
}

// outageActive reports whether t stopped the server and has not started it.
func outageActive(t testing.TB) bool {
	locksMu.Lock()
	defer locksMu.Unlock()
	h := locks[t]
	return h != nil && h.outage
}

// endOutage turns t's exclusive lock back to shared after the server started.
func endOutage(t testing.TB) {
	t.Helper()
	locksMu.Lock()
	h := locks[t]
	if h == nil || !h.outage {
		locksMu.Unlock()
		return
	}
	h.outage = false
	parents := h.released
	h.released = nil
	locksMu.Unlock()
	if h.f != nil {
		waitLock(t, h.f, false, "another test has PostgreSQL stopped (StopPostgres)")
	}
	for _, p := range parents {
		relockParent(t, p)
	}
}

// relockParent takes a parent test's shared lock again once no subtest
// outage needs it released. The check and the lock happen under locksMu, so
// a sibling subtest starting an outage cannot miss it; waiting happens
// outside it.
func relockParent(t testing.TB, p *heldLock) {
	t.Helper()
	locksMu.Lock()
	p.paused--
	locksMu.Unlock()
	deadline := time.Now().Add(lockTimeout)
	for {
		locksMu.Lock()
		if p.paused > 0 || p.outage {
			locksMu.Unlock()
			return
		}
		ok, err := tryLock(p.f, false)
		locksMu.Unlock()
		if err != nil {
			t.Fatalf("testenv: lock %s: %v", p.f.Name(), err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: gave up after %v waiting for %s: another test has PostgreSQL stopped (StopPostgres)", lockTimeout, p.f.Name())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func openLock(t testing.TB, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		t.Fatalf("testenv: %s: %v", EnvPostgresLock, err)
	}
	return f
}

// waitLock takes a lock on f (exclusive or shared), polling until
// lockTimeout; why says what a wait means, for the failure message.
func waitLock(t testing.TB, f *os.File, exclusive bool, why string) {
	t.Helper()
	deadline := time.Now().Add(lockTimeout)
	logged := false
	for {
		ok, err := tryLock(f, exclusive)
		if err != nil {
			t.Fatalf("testenv: lock %s: %v", f.Name(), err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: gave up after %v waiting for %s: %s", lockTimeout, f.Name(), why)
		}
		if !logged && time.Until(deadline) < lockTimeout-10*time.Second {
			t.Logf("testenv: still waiting for %s: %s", f.Name(), why)
			logged = true
		}
		time.Sleep(20 * time.Millisecond)
	}
}
