// Command benchpeers compares the example server (examples/davserver) with
// the servers people would pick instead, on the same WebDAV workload, and
// prints the table of BENCHMARKS.md. It is `make bench-peers`, not part of
// `make test`.
//
//	go run ./internal/cmd/benchpeers [-quick] [-rounds N] [-round D]
//
// It installs what is missing (Debian: apache2, apache2-utils, radicale,
// python3-passlib, python3-bcrypt; as root), builds davserver with
// -tags appauth_insecure_bench and hacdias/webdav from the Go module proxy
// at a pinned version, starts slapd and PostgreSQL through
// internal/testenv, and every server on loopback. Each gets a folder of 10
// files of 1 KiB and the same two workloads from 8 keep-alive connections:
// PROPFIND Depth 0 on the folder, GET of one file. The servers (and slapd
// and PostgreSQL) run on one core, this load generator on the other; rounds
// alternate between the servers in a rotating order. For each round it
// reads the CPU time of the server's whole process tree from /proc
// (utime+stime, with reaped children's) before and after, and reports the
// server CPU time per request beside the requests per second, as ratios
// against davserver with an app password on SQLite in the same round: on
// a shared machine the ratio of CPU per request holds where the absolute
// figures do not.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/net/webdav"

	"github.com/appauth/appauth/internal/benchpair"
	"github.com/appauth/appauth/internal/testenv"
)

// conns is the number of keep-alive connections to each server.
const conns = 8

// interleave is how many parts a server's time in a round is cut into,
// alternating with the reference's; 1 for a server that spends more than
// slowCPU µs per request.
const (
	interleave = 4
	slowCPU    = 1000
)

// The cores: servers on serverCPU, the load generator on loadCPU.
const (
	loadCPU   = 0
	serverCPU = 1
)

// cpuProfileDir is -cpuprofile: where davserver rows write CPU profiles.
var cpuProfileDir string

func main() {
	bare := flag.String("serve-bare", "", "internal: serve this folder with x/net/webdav alone on -addr")
	addr := flag.String("addr", "", "internal: the address of -serve-bare")
	quick := flag.Bool("quick", false, "a short run (2 rounds of 0.3 s): checks that everything works, figures are rough")
	rounds := flag.Int("rounds", 5, "rounds over all servers, each measured beside the reference")
	round := flag.Duration("round", time.Second, "time per server and workload in a round")
	only := flag.String("only", "", "comma-separated substrings: run only the servers whose name has one (the reference always runs)")
	noInstall := flag.Bool("no-install", false, "do not install missing Debian packages")
	flag.StringVar(&cpuProfileDir, "cpuprofile", "", "write each davserver row's CPU profile (both workloads, warm-up included) to this folder as <row>.pprof")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("benchpeers: ")
	if *bare != "" {
		log.Fatal(serveBare(*bare, *addr))
	}
	if *quick {
		*rounds, *round = 2, 300*time.Millisecond
	}
	if err := run(*rounds, *round, *only, !*noInstall, *quick); err != nil {
		log.Fatal(err)
	}
}

// serveBare is the ceiling: x/net/webdav on a folder, nothing else.
func serveBare(dir, addr string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	h := &webdav.Handler{FileSystem: webdav.Dir(dir), LockSystem: webdav.NewMemLS()}
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	return srv.ListenAndServe()
}

func run(rounds int, round time.Duration, only string, doInstall, quick bool) error {
	if runtime.NumCPU() < 2 {
		return fmt.Errorf("needs 2 cores (one for the servers, one for the load), has %d", runtime.NumCPU())
	}
	if doInstall {
		if err := install(); err != nil {
			return err
		}
	}
	// This program (and what it starts without taskset: slapd and
	// PostgreSQL, moved below) on one core.
	if err := pinTree(loadCPU, os.Getpid()); err != nil {
		return err
	}
	runtime.GOMAXPROCS(1)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	work, err := os.MkdirTemp("", "benchpeers-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	// Apache's workers (www-data) reach their folders through it.
	if err := os.Chmod(work, 0o755); err != nil {
		return err
	}
	e := &env{dir: work, serverCPU: serverCPU}
	if e.self, err = os.Executable(); err != nil {
		return err
	}
	log.Printf("building davserver (-tags appauth_insecure_bench) and hacdias/webdav %s", hacdiasVersion)
	if e.davserver, err = buildDavserver(work); err != nil {
		return err
	}
	if e.hacdias, err = buildHacdias(work); err != nil {
		return err
	}
	log.Print("starting slapd and PostgreSQL (internal/testenv)")
	if e.ldap, err = testenv.StartLDAP(); err != nil {
		return err
	}
	defer e.ldap.Close()
	if e.pg, err = testenv.StartPostgres(); err != nil {
		return err
	}
	defer e.pg.Close()
	backends := []int{e.ldap.PID(), e.pg.PID()}
	if err := pinTree(serverCPU, backends...); err != nil {
		return err
	}

	const ref = "davserver, app password, SQLite"
	rows := []struct {
		name  string
		start func(name string) (*server, error)
	}{
		{ref, func(n string) (*server, error) { return e.davserverRow(n, false, false) }},
		{"davserver, app password, PostgreSQL", func(n string) (*server, error) { return e.davserverRow(n, true, false) }},
		{"davserver, authentication off", func(n string) (*server, error) { return e.davserverRow(n, false, true) }},
		{"x/net/webdav alone, no authentication", e.bareRow},
		{"Apache mod_dav + mod_authnz_ldap, LDAP cache on", func(n string) (*server, error) { return e.apacheRow(n, apacheLDAPCache) }},
		{"Apache mod_dav + mod_authnz_ldap, LDAP cache off", func(n string) (*server, error) { return e.apacheRow(n, apacheLDAPNoCache) }},
		{"Apache mod_dav, bcrypt htpasswd", func(n string) (*server, error) { return e.apacheRow(n, apacheBcrypt) }},
		{"Radicale, bcrypt htpasswd", e.radicaleRow},
		{"hacdias/webdav, plaintext password", func(n string) (*server, error) { return e.hacdiasRow(n, false) }},
		{"hacdias/webdav, bcrypt password", func(n string) (*server, error) { return e.hacdiasRow(n, true) }},
	}
	var servers []*server
	defer func() {
		for _, s := range servers {
			s.stop()
		}
	}()
	for _, r := range rows {
		if r.name != ref && !selected(r.name, only) {
			continue
		}
		log.Printf("starting %s", r.name)
		s, err := r.start(r.name)
		if err != nil {
			return err
		}
		servers = append(servers, s)
	}

	// Every server process on its core, the load generator on the other.
	if err := checkPinned(servers, backends); err != nil {
		return err
	}
	// results[server][workload] holds one result per round.
	results := make([][2][]result, len(servers))
	measure := func(i, w int, d time.Duration) (result, error) {
		s := servers[i]
		cpu0, back0, self0 := treeCPU(s.pids()...), treeCPU(backends...), benchpair.ProcessCPU()
		n, elapsed, err := drive(s.client, workloads[w], s.targets[w], conns, d, 0)
		cpu1, back1, self1 := treeCPU(s.pids()...), treeCPU(backends...), benchpair.ProcessCPU()
		if err != nil {
			return result{}, fmt.Errorf("%s: %w", s.name, err)
		}
		if n == 0 {
			return result{}, fmt.Errorf("%s: no request completed in %v", s.name, d)
		}
		return result{requests: n, elapsed: elapsed, cpu: cpu1 - cpu0, backend: back1 - back0, client: self1 - self0}, nil
	}
	warm := min(round, 500*time.Millisecond)
	log.Printf("warming up (%v per server and workload)", warm)
	// A server that spends more than slowCPU per request (a bcrypt) is not
	// cut into slices: each slice would end waiting for 8 slow requests
	// in flight, and its ratio is in the hundreds anyway.
	parts := make([]int, len(servers))
	for i := range servers {
		parts[i] = interleave
		for w := range workloads {
			res, err := measure(i, w, warm)
			if err != nil {
				return err
			}
			if res.cpuPerRequest() > slowCPU {
				parts[i] = 1
			}
		}
	}
	// Each round measures every server in turn, interleaved with the
	// reference, so that each ratio compares two measurements taken over
	// the same seconds of a machine whose load moves.
	if len(servers) < 2 {
		return fmt.Errorf("-only %q leaves no server to compare with %q", only, ref)
	}
	refs := make([][2][]result, len(servers))
	start := time.Now()
	load0 := loadAverage()
	for r := range rounds {
		log.Printf("round %d of %d", r+1, rounds)
		for k := range len(servers) - 1 {
			i := 1 + (k+r)%(len(servers)-1) // a rotating order
			for j := range workloads {
				w := (j + r) % len(workloads)
				// The pair's time in slices, alternately: both sides see
				// the same moments of the machine's load.
				var refRes, res result
				for n := range parts[i] {
					for _, x := range pairOrder(i, k+r+j+n) {
						if ctx.Err() != nil {
							return ctx.Err()
						}
						got, err := measure(x, w, round/time.Duration(parts[i]))
						if err != nil {
							return err
						}
						if x == 0 {
							refRes = refRes.add(got)
						} else {
							res = res.add(got)
						}
					}
				}
				refs[i][w] = append(refs[i][w], refRes)
				results[i][w] = append(results[i][w], res)
				results[0][w] = append(results[0][w], refRes)
			}
		}
	}
	for i, s := range servers {
		for w := range workloads {
			if len(results[i][w]) < rounds {
				return fmt.Errorf("%s, %s: %d measurements in %d rounds", s.name, workloads[w].name, len(results[i][w]), rounds)
			}
		}
	}
	cmdline := "make bench-peers"
	if quick {
		cmdline += " BENCHPEERSFLAGS=-quick"
	} else if rounds != 5 || round != time.Second {
		cmdline += fmt.Sprintf(" BENCHPEERSFLAGS='-rounds %d -round %v'", rounds, round)
	}
	names := make([]string, len(servers))
	for i, s := range servers {
		names[i] = s.name
	}
	report(os.Stdout, reportInput{
		command: cmdline, names: names, results: results, refs: refs, rounds: rounds, round: round,
		took: time.Since(start), load: [2]string{load0, loadAverage()},
	})
	return nil
}

// pairOrder is the order of the reference (0) and server i in one slice
// of their pair: each once, the reference first when parity is even, so
// that neither always goes first.
func pairOrder(i, parity int) [2]int {
	if parity%2 == 1 {
		return [2]int{i, 0}
	}
	return [2]int{0, i}
}

// checkPinned fails unless every process of the servers, slapd and
// PostgreSQL may run on serverCPU only, and this program on loadCPU only.
func checkPinned(servers []*server, backends []int) error {
	roots := slices.Clone(backends)
	for _, s := range servers {
		roots = append(roots, s.pids()...)
	}
	want := strconv.Itoa(serverCPU)
	for _, pid := range treePIDs(roots...) {
		if got := cpusAllowed(pid); got != want && got != "" {
			return fmt.Errorf("process %d may run on CPUs %s, want only %s", pid, got, want)
		}
	}
	if got := cpusAllowed(os.Getpid()); got != strconv.Itoa(loadCPU) {
		return fmt.Errorf("the load generator may run on CPUs %s, want only %d", got, loadCPU)
	}
	return nil
}

// selected says whether name has one of the comma-separated substrings of
// only (all when only is empty).
func selected(name, only string) bool {
	if only == "" {
		return true
	}
	for s := range strings.SplitSeq(only, ",") {
		if s = strings.TrimSpace(s); s != "" && strings.Contains(strings.ToLower(name), strings.ToLower(s)) {
			return true
		}
	}
	return false
}

func loadAverage() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
