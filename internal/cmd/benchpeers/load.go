package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// workload is one kind of request that every server answers.
type workload struct {
	name   string // "PROPFIND", "GET"
	method string
	want   int // status
}

var workloads = []workload{
	{name: "PROPFIND Depth 0", method: "PROPFIND", want: http.StatusMultiStatus},
	{name: "GET 1 KiB", method: http.MethodGet, want: http.StatusOK},
}

// target is where one server takes one workload: a URL and the credentials
// sent (to every server, with authentication on or off, so that the
// requests are the same).
type target struct {
	url, user, password string
	size                int // GET: expected body length, 0 for any
}

// result is one measured round of one workload on one server.
type result struct {
	requests int
	elapsed  time.Duration
	cpu      time.Duration // the server's process tree
	backend  time.Duration // its directory and database (slapd, PostgreSQL)
	// client is the load generator's own CPU time: near elapsed, it was
	// the bottleneck, and req/s says more about it than about the server.
	client time.Duration
}

// clientBusy is the load generator's share of its core.
func (r result) clientBusy() float64 { return r.client.Seconds() / r.elapsed.Seconds() }

// add sums two measurements of the same server and workload.
func (r result) add(o result) result {
	return result{requests: r.requests + o.requests, elapsed: r.elapsed + o.elapsed,
		cpu: r.cpu + o.cpu, backend: r.backend + o.backend, client: r.client + o.client}
}

func (r result) rps() float64 { return float64(r.requests) / r.elapsed.Seconds() }

// cpuPerRequest is in microseconds.
func (r result) cpuPerRequest() float64 {
	return float64(r.cpu.Microseconds()) / float64(r.requests)
}

// client is the load generator's side of one server: conns keep-alive
// connections at most, reused across rounds.
func client(conns int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			MaxConnsPerHost:     conns,
			IdleConnTimeout:     5 * time.Minute,
			DisableCompression:  true,
		},
		Timeout: 30 * time.Second,
	}
}

// errBadAnswer is a server that answered a request wrongly: it is not
// measured.
var errBadAnswer = errors.New("unexpected answer")

// drive sends requests of w to t from conns goroutines until deadline (or
// max requests), checking every answer, and returns how many completed and
// how long until the last one did. Any wrong answer is an error: a server
// that refuses is not measured.
func drive(c *http.Client, w workload, t target, conns int, d time.Duration, max int) (int, time.Duration, error) {
	var done atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for range conns {
		wg.Go(func() {
			for time.Now().Before(deadline) && (max <= 0 || done.Load() < int64(max)) {
				if err := do(c, w, t); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	return int(done.Load()), time.Since(start), firstErr
}

// do sends one request and checks its status (and a GET's length).
func do(c *http.Client, w workload, t target) error {
	req, err := http.NewRequest(w.method, t.url, nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth(t.user, t.password)
	if w.method == "PROPFIND" {
		req.Header.Set("Depth", "0")
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != w.want {
		return fmt.Errorf("%w: %s %s: %d, want %d", errBadAnswer, w.method, t.url, resp.StatusCode, w.want)
	}
	if w.method == http.MethodGet && t.size > 0 && n != int64(t.size) {
		return fmt.Errorf("%w: GET %s: %d bytes, want %d", errBadAnswer, t.url, n, t.size)
	}
	return nil
}

// clockTick is the unit of /proc/PID/stat's CPU times (USER_HZ, 100 on
// Linux for every architecture Go supports).
const clockTick = 10 * time.Millisecond

// procTimes parses /proc/PID/stat: the parent's PID and the CPU time of
// the process and of its reaped children (utime + stime + cutime + cstime).
func procTimes(stat []byte) (ppid int, cpu time.Duration, err error) {
	// pid (comm) state ppid ... ; comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, 0, errors.New("no ')' in stat")
	}
	f := strings.Fields(string(stat[i+1:]))
	// After comm: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
	if len(f) < 15 {
		return 0, 0, fmt.Errorf("stat has %d fields after comm", len(f))
	}
	if ppid, err = strconv.Atoi(f[1]); err != nil {
		return 0, 0, err
	}
	var ticks int64
	for _, s := range f[11:15] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, 0, err
		}
		ticks += n
	}
	return ppid, time.Duration(ticks) * clockTick, nil
}

// procTable is a snapshot of /proc: each process's parent and CPU time.
type procTable struct {
	children map[int][]int
	cpu      map[int]time.Duration
}

func readProcTable() procTable {
	t := procTable{children: map[int][]int{}, cpu: map[int]time.Duration{}}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		ppid, cpu, err := procTimes(b)
		if err != nil {
			continue
		}
		t.children[ppid] = append(t.children[ppid], pid)
		t.cpu[pid] = cpu
	}
	return t
}

// tree returns roots and every process below them.
func (t procTable) tree(roots ...int) []int {
	var out []int
	seen := map[int]bool{}
	for queue := append([]int(nil), roots...); len(queue) > 0; queue = queue[1:] {
		pid := queue[0]
		if pid <= 0 || seen[pid] {
			continue
		}
		seen[pid] = true
		out = append(out, pid)
		queue = append(queue, t.children[pid]...)
	}
	return out
}

// treeCPU returns the CPU time used so far by the processes roots and
// every process below them. A child's time moves to its parent's cutime
// when it is reaped, so the sum stays whole as workers come and go.
func treeCPU(roots ...int) time.Duration {
	t := readProcTable()
	var total time.Duration
	for _, pid := range t.tree(roots...) {
		total += t.cpu[pid]
	}
	return total
}

// treePIDs returns roots and every process below them.
func treePIDs(roots ...int) []int { return readProcTable().tree(roots...) }

// cpusAllowed is the Cpus_allowed_list of a process ("1", "0-1").
func cpusAllowed(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return ""
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
