package main

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestProcTimes(t *testing.T) {
	// comm with a space and a parenthesis; utime 7, stime 5, cutime 3, cstime 1.
	stat := []byte("4242 (a b) c) S 17 4242 4242 0 -1 4194560 100 0 0 0 7 5 3 1 20 0 4 0 123 456 789")
	ppid, cpu, err := procTimes(stat)
	if err != nil {
		t.Fatal(err)
	}
	if ppid != 17 || cpu != 16*clockTick {
		t.Errorf("ppid %d, cpu %v; want 17, %v", ppid, cpu, 16*clockTick)
	}
	if _, _, err := procTimes([]byte("4242 (x) S 1 2")); err == nil {
		t.Error("a short stat line parsed")
	}
}

// TestProcessTree: a child started by this test is in its tree, and the
// tree's CPU time grows with the work this process does.
func TestProcessTree(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if pids := treePIDs(os.Getpid()); !slices.Contains(pids, cmd.Process.Pid) || pids[0] != os.Getpid() {
		t.Fatalf("tree of %d: %v, want it and the child %d", os.Getpid(), pids, cmd.Process.Pid)
	}
	before := treeCPU(os.Getpid())
	deadline := time.Now().Add(20 * time.Second)
	x := 0
	for treeCPU(os.Getpid()) < before+3*clockTick {
		if time.Now().After(deadline) {
			t.Fatalf("the tree's CPU time stayed at %v while this process worked", before)
		}
		for i := range 1_000_000 {
			x += i
		}
	}
	_ = x
}

// TestDrive: every request that counts was answered right, and a wrong
// status or length stops the round with an error.
func TestDrive(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, _ := r.BasicAuth()
		switch {
		case u != "alice" || p != "pw":
			http.Error(w, "no", http.StatusUnauthorized)
		case r.Method == "PROPFIND" && r.Header.Get("Depth") == "0":
			served.Add(1)
			w.WriteHeader(http.StatusMultiStatus)
		case r.Method == http.MethodGet && r.URL.Path == "/short":
			w.Write([]byte("abc"))
		case r.Method == http.MethodGet:
			w.Write(make([]byte, fileSize))
		default:
			http.Error(w, "bad", http.StatusBadRequest)
		}
	}))
	defer srv.Close()
	c := client(conns)
	n, _, err := drive(c, workloads[0], target{url: srv.URL + "/f/", user: "alice", password: "pw"}, conns, time.Minute, 200)
	if err != nil || n < 200 || int64(n) != served.Load() {
		t.Errorf("drive: %d requests, %v; server answered %d; want at least 200, all counted", n, err, served.Load())
	}
	if _, _, err := drive(c, workloads[1], target{url: srv.URL + "/f", user: "alice", password: "pw", size: fileSize}, conns, time.Minute, 20); err != nil {
		t.Errorf("GET of %d bytes: %v", fileSize, err)
	}
	for _, tc := range []struct {
		w  workload
		tg target
	}{
		{workloads[0], target{url: srv.URL + "/f/", user: "alice", password: "wrong"}},
		{workloads[1], target{url: srv.URL + "/short", user: "alice", password: "pw", size: fileSize}},
	} {
		if _, _, err := drive(c, tc.w, tc.tg, conns, time.Minute, 20); !errors.Is(err, errBadAnswer) {
			t.Errorf("%s %s: %v, want errBadAnswer", tc.w.method, tc.tg.url, err)
		}
	}
}

// TestReport: ratios are per round against the first server, and the
// targets name the rows they compare.
func TestReport(t *testing.T) {
	mk := func(cpuUS ...int) [2][]result {
		var rs []result
		for _, c := range cpuUS {
			rs = append(rs, result{requests: 1000, elapsed: time.Second, cpu: time.Duration(c) * time.Millisecond, client: time.Second / 2})
		}
		return [2][]result{rs, rs}
	}
	var b strings.Builder
	// The machine slows down in the second pair of each server: the
	// ratios, taken within each pair, hold.
	report(&b, reportInput{
		command: "make bench-peers",
		names:   []string{"davserver, app password, SQLite", "davserver, authentication off", "Apache mod_dav + mod_authnz_ldap, LDAP cache off"},
		results: [][2][]result{mk(100, 200, 110, 220), mk(80, 176), mk(330, 660)},
		refs:    [][2][]result{{}, mk(100, 220), mk(110, 220)},
		rounds:  2, round: time.Second,
	})
	out := b.String()
	for _, want := range []string{
		"| davserver, authentication off | 128 | 0.80 (0.80–0.80) |",
		"| Apache mod_dav + mod_authnz_ldap, LDAP cache off | 495 | 3.00 (3.00–3.00) |",
		"app password ÷ authentication off, PROPFIND Depth 0: 1.25 (1.25–1.25) (target at most 1.03)",
		"LDAP cache off ÷ davserver, PROPFIND Depth 0: 3.00 (3.00–3.00)",
		"| davserver, app password, SQLite | 155 | 1.00 (1.00–1.00) |",
		"| 50% |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func TestEvent(t *testing.T) {
	e := event(3)
	if n := len(e); n < fileSize-100 || n > fileSize+100 {
		t.Errorf("event of %d bytes, want about %d", n, fileSize)
	}
	for line := range strings.SplitSeq(string(e), "\r\n") {
		if len(line) > 75 {
			t.Errorf("line of %d octets (RFC 5545 folds at 75): %q", len(line), line)
		}
	}
}

func TestSelected(t *testing.T) {
	if !selected("Apache mod_dav, bcrypt htpasswd", "radicale, apache") || selected("Radicale", "hacdias") || !selected("x", "") {
		t.Error("selected does not match names by their substrings")
	}
}

// TestPairOrder: every slice of a pair measures both servers once, and
// which goes first alternates (a single slice measures both, too).
func TestPairOrder(t *testing.T) {
	for parity := range 4 {
		o := pairOrder(3, parity)
		if !slices.Contains(o[:], 0) || !slices.Contains(o[:], 3) {
			t.Errorf("parity %d: %v, want the reference (0) and the server (3) once each", parity, o)
		}
		if first := o[0]; (first == 0) != (parity%2 == 0) {
			t.Errorf("parity %d: %v goes first", parity, first)
		}
	}
}
