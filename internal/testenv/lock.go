package testenv

import (
	"fmt"
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
// The lock file in APPAUTH_TEST_POSTGRES_LOCK (APPAUTH_TEST_LDAP_LOCK for slapd,
// with StopLDAP and StartLDAP) prevents that (flock(2), one
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

// lockSet is the locking of one shared service (PostgreSQL, slapd). Each
// service has its own, so a test may hold both.
type lockSet struct {
	name    string // "PostgreSQL", for messages
	stop    string // the function that stops it, for messages
	env     string // the environment variable naming the lock file
	locksMu sync.Mutex
	locks   map[testing.TB]*heldLock // by test
}

func newLockSet(name, stop, env string) *lockSet {
	return &lockSet{name: name, stop: stop, env: env, locks: map[testing.TB]*heldLock{}}
}

var postgresLocks = newLockSet("PostgreSQL", "StopPostgres", EnvPostgresLock)

// stoppedMsg says why a wait for the shared lock lasts.
func (s *lockSet) stoppedMsg() string {
	return fmt.Sprintf("another test has %s stopped (%s)", s.name, s.stop)
}

// acquireShared gives t a shared lock on the server until t ends.
func (s *lockSet) acquireShared(t testing.TB) {
	t.Helper()
	path := os.Getenv(s.env)
	if path == "" {
		return
	}
	s.locksMu.Lock()
	_, ok := s.locks[t]
	// A subtest of a test that holds the lock must not queue behind a
	// waiting outage: the outage waits for the parent, the parent for it.
	parentHolds := false
	for _, o := range s.locks {
		if o.f != nil && !o.outage && o.paused == 0 && strings.HasPrefix(t.Name(), o.name+"/") {
			parentHolds = true
		}
	}
	s.locksMu.Unlock()
	if ok {
		return
	}
	f := s.openLock(t, path)
	if parentHolds {
		waitLock(t, f, false, s.stoppedMsg())
	} else {
		gate := s.openLock(t, path+".gate")
		waitLock(t, gate, false, s.stoppedMsg())
		waitLock(t, f, false, s.stoppedMsg())
		gate.Close()
	}
	s.track(t, &heldLock{f: f})
}

// track records h as the lock of test t, until the test ends.
func (s *lockSet) track(t testing.TB, h *heldLock) {
	h.name = t.Name()
	s.locksMu.Lock()
	s.locks[t] = h
	s.locksMu.Unlock()
	t.Cleanup(func() {
		s.locksMu.Lock()
		delete(s.locks, t)
		s.locksMu.Unlock()
		if h.f != nil {
			h.f.Close()
		}
	})
}

// beginOutage takes the exclusive lock for t before the server is stopped.
// It reports whether an outage began (false if t already had one).
func (s *lockSet) beginOutage(t testing.TB) bool {
	t.Helper()
	path := os.Getenv(s.env)
	name := t.Name()

	s.locksMu.Lock()
	h := s.locks[t]
	if h != nil && h.outage {
		s.locksMu.Unlock()
		return false
	}
	var parents []*heldLock
	for _, o := range s.locks {
		if o != h && o.f != nil && strings.HasPrefix(name, o.name+"/") {
			parents = append(parents, o)
			if o.paused++; o.paused == 1 && !o.outage {
				unlockFile(o.f)
			}
		}
	}
	s.locksMu.Unlock()

	if h == nil {
		h = &heldLock{}
		if path != "" {
			h.f = s.openLock(t, path)
		}
		s.track(t, h)
	}
	if path != "" {
		unlockFile(h.f)
		gate := s.openLock(t, path+".gate")
		waitLock(t, gate, true, "other tests are starting to use "+s.name)
		waitLock(t, h.f, true, fmt.Sprintf("other tests are using %s (a test that calls %s must not wait for them)", s.name, s.stop))
		gate.Close()
	}

	s.locksMu.Lock()
	h.outage = true
	h.released = parents
	s.locksMu.Unlock()
	return true
}

// outageActive reports whether t stopped the server and has not started it.
func (s *lockSet) outageActive(t testing.TB) bool {
	s.locksMu.Lock()
	defer s.locksMu.Unlock()
	h := s.locks[t]
	return h != nil && h.outage
}

// endOutage turns t's exclusive lock back to shared after the server started.
func (s *lockSet) endOutage(t testing.TB) {
	t.Helper()
	s.locksMu.Lock()
	h := s.locks[t]
	if h == nil || !h.outage {
		s.locksMu.Unlock()
		return
	}
	h.outage = false
	parents := h.released
	h.released = nil
	s.locksMu.Unlock()
	if h.f != nil {
		waitLock(t, h.f, false, s.stoppedMsg())
	}
	for _, p := range parents {
		s.relockParent(t, p)
	}
}

// relockParent takes a parent test's shared lock again once no subtest
// outage needs it released. The check and the lock happen under locksMu, so
// a sibling subtest starting an outage cannot miss it; waiting happens
// outside it.
func (s *lockSet) relockParent(t testing.TB, p *heldLock) {
	t.Helper()
	s.locksMu.Lock()
	p.paused--
	s.locksMu.Unlock()
	deadline := time.Now().Add(lockTimeout)
	for {
		s.locksMu.Lock()
		if p.paused > 0 || p.outage {
			s.locksMu.Unlock()
			return
		}
		ok, err := tryLock(p.f, false)
		s.locksMu.Unlock()
		if err != nil {
			t.Fatalf("testenv: lock %s: %v", p.f.Name(), err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: gave up after %v waiting for %s: %s", lockTimeout, p.f.Name(), s.stoppedMsg())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *lockSet) openLock(t testing.TB, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		t.Fatalf("testenv: %s: %v", s.env, err)
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
