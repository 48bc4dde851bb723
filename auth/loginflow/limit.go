package loginflow

import (
	"net/netip"
	"sync"
	"time"
)

// limiter allows n requests per client address per window of length
// every, in fixed windows. Its memory is bounded: when it remembers max
// addresses, new ones are refused (fail closed) until old windows end.
type limiter struct {
	mu    sync.Mutex
	name  string // what it counts, also in a SharedStore's records
	n     int
	every time.Duration
	max   int
	seen  map[netip.Prefix]*window
}

type window struct {
	start time.Time
	n     int
}

func newLimiter(name string, n int, every time.Duration, max int) *limiter {
	return &limiter{name: name, n: n, every: every, max: max, seen: map[netip.Prefix]*window{}}
}

// key is the address's /32 (IPv4) or /64 (IPv6); a peer that is not an IP
// address shares one key.
func key(addr string) netip.Prefix {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return netip.Prefix{}
	}
	a = a.Unmap()
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(64)
	return p
}

// allow counts a request from addr at now; when refused it says how long
// to wait.
func (l *limiter) allow(addr string, now time.Time) (time.Duration, bool) {
	k := key(addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.seen[k]
	if w != nil && now.Sub(w.start) >= l.every {
		w.start, w.n = now, 0
	}
	if w == nil {
		if len(l.seen) >= l.max {
			l.sweepLocked(now)
		}
		if len(l.seen) >= l.max {
			return l.every, false
		}
		w = &window{start: now}
		l.seen[k] = w
	}
	if w.n >= l.n {
		return w.start.Add(l.every).Sub(now), false
	}
	w.n++
	return 0, true
}

func (l *limiter) sweep(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweepLocked(now)
}

func (l *limiter) sweepLocked(now time.Time) {
	for k, w := range l.seen {
		if now.Sub(w.start) >= l.every {
			delete(l.seen, k)
		}
	}
}
