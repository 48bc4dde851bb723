package benchpair

import (
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Pass sends the requests 0..n-1 once each, spread over the clients (one
// worker per client), and returns the wall time of the pass and each
// request's latency. A request whose status want refuses fails b.
func Pass(b *testing.B, clients []*http.Client, n int, request func(i int) (*http.Request, error), want func(status int) bool) (time.Duration, []time.Duration) {
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for _, client := range clients {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				req, err := request(i)
				if err != nil {
					b.Error(err)
					return
				}
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lat[i] = time.Since(t0)
				if !want(resp.StatusCode) {
					b.Errorf("%s %s: status %d", req.Method, req.URL.Path, resp.StatusCode)
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start), lat
}
