package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/appauth/appauth/internal/benchpair"
)

// loadEnv, set in the environment of the test binary, makes it a load
// generator instead of running tests (see runLoad): the benchmarks below
// measure the server's CPU time in their own process while the requests
// come from another one.
const loadEnv = "APPAUTH_BENCH_LOAD"

// runLoad sends APPAUTH_BENCH_N requests (method APPAUTH_BENCH_METHOD,
// header Depth: 0, Basic credentials when APPAUTH_BENCH_SECRET is set) to
// the URL in loadEnv from 8 keep-alive connections, and exits non-zero on
// any answer but APPAUTH_BENCH_STATUS.
func runLoad() int {
	url, method := os.Getenv(loadEnv), os.Getenv("APPAUTH_BENCH_METHOD")
	user, secret := os.Getenv("APPAUTH_BENCH_USER"), os.Getenv("APPAUTH_BENCH_SECRET")
	n, _ := strconv.Atoi(os.Getenv("APPAUTH_BENCH_N"))
	want, _ := strconv.Atoi(os.Getenv("APPAUTH_BENCH_STATUS"))
	const conns = 8
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}}
	var wg sync.WaitGroup
	var failed sync.Once
	code := 0
	for w := range conns {
		wg.Go(func() {
			for i := w; i < n; i += conns {
				req, _ := http.NewRequest(method, url, nil)
				req.Header.Set("Depth", "0")
				if secret != "" {
					req.SetBasicAuth(user, secret)
				}
				resp, err := client.Do(req)
				if err != nil {
					failed.Do(func() { fmt.Fprintln(os.Stderr, err); code = 1 })
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != want {
					failed.Do(func() { fmt.Fprintln(os.Stderr, method, url, resp.Status); code = 1 })
					return
				}
			}
		})
	}
	wg.Wait()
	return code
}

// BenchmarkAuthCPU measures the example server's CPU time per request with
// a cached app password against the same server with authentication off
// (benchServers: the full handler, request log, SQLite store, htpasswd
// directory, Throttle, audit log), on PROPFIND Depth 0 of a folder and GET
// of a 1 KiB file. The requests come from a second process (this test
// binary as a load generator, 8 keep-alive connections), so the CPU time
// read from this process is the servers' alone; each of the b.N rounds
// sends 2,000 requests to each server, alternating which goes first.
// cpu-ratio is auth on / auth off (target at most 1.03).
//
//	go test -run '^$' -bench AuthCPU -benchtime 10x -count 3 ./examples/davserver
func BenchmarkAuthCPU(b *testing.B) {
	withAuth, noAuth, _, _, user, secret := benchServers(b)
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	file := "/dav/files/" + user + "/bench-1k.bin"
	req, _ := http.NewRequest("PUT", withAuth+file, bytes.NewReader(bytes.Repeat([]byte("x"), 1024)))
	req.SetBasicAuth(user, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusNoContent {
		b.Fatalf("PUT: %s", resp.Status)
	}
	const round = 2000
	load := func(b *testing.B, method, url, secret string, status, n int) time.Duration {
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), loadEnv+"="+url, "APPAUTH_BENCH_METHOD="+method, "APPAUTH_BENCH_USER="+user,
			"APPAUTH_BENCH_SECRET="+secret, "APPAUTH_BENCH_N="+strconv.Itoa(n), "APPAUTH_BENCH_STATUS="+strconv.Itoa(status))
		// The child's start-up is not this process's CPU; its requests are
		// all of what this process does meanwhile.
		before := benchpair.ProcessCPU()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("load generator: %v\n%s", err, out)
		}
		return benchpair.ProcessCPU() - before
	}
	for _, bc := range []struct {
		name, method, path string
		status             int
	}{
		{"propfind-depth0", "PROPFIND", "/dav/files/" + user + "/", http.StatusMultiStatus},
		{"get-1KiB", "GET", file, http.StatusOK},
	} {
		b.Run(bc.name, func(b *testing.B) {
			load(b, bc.method, withAuth+bc.path, secret, bc.status, 200) // warm: connections, cache
			load(b, bc.method, noAuth+bc.path, "", bc.status, 200)
			var on, off time.Duration
			for i := range b.N {
				if i%2 == 0 {
					off += load(b, bc.method, noAuth+bc.path, "", bc.status, round)
					on += load(b, bc.method, withAuth+bc.path, secret, bc.status, round)
				} else {
					on += load(b, bc.method, withAuth+bc.path, secret, bc.status, round)
					off += load(b, bc.method, noAuth+bc.path, "", bc.status, round)
				}
			}
			reqs := float64(b.N * round)
			b.ReportMetric(float64(on.Microseconds())/reqs, "cpu-µs/req-auth")
			b.ReportMetric(float64(off.Microseconds())/reqs, "cpu-µs/req-noauth")
			b.ReportMetric(float64(on)/float64(off), "cpu-ratio")
			b.ReportMetric(0, "ns/op")
		})
	}
}
