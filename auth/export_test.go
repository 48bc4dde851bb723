package auth

import (
	"context"
	"time"
)

// Flush writes pending last-used updates now, for tests that count writes.
func (m *Manager) Flush(ctx context.Context) error { return m.usage.flush(ctx, m.store) }

// PurgeExpired runs the hourly purge now.
func (m *Manager) PurgeExpired(ctx context.Context) (int, error) { return m.purgeExpired(ctx) }

// FlushUses writes the coalesced "auth used" audit lines that are due
// (a LastUsedInterval old), or all of them with all, as the background
// loop and Close do.
func (m *Manager) FlushUses(ctx context.Context, all bool) { m.flushUses(ctx, m.now(), all) }

// MaxPendingUses is the bound on coalesced use records.
const MaxPendingUses = maxPendingUses

// CoarseClockRunning reports whether the coarse clock's ticker runs.
func (m *Manager) CoarseClockRunning() bool { return m.coarse.now.Load() != 0 }

// LagClock puts the anchor of the verify clocks d behind the wall clock,
// as a suspend of d (which the monotonic clock does not count) or a step
// of the wall clock by d leaves it until the next re-anchor.
func (m *Manager) LagClock(d time.Duration) {
	t := time.Now()
	m.anchor.Store(&clockAnchor{wall: t.UTC().Round(0).Add(-d), mono: t})
}

// CoarseClock is the coarse clock's reading, 0 while it is stopped.
func (m *Manager) CoarseClock() int64 { return m.coarse.now.Load() }

// HashSecret is the part of a cached verify before its cache probe: the
// copy of the secret's usual spelling and one HMAC
// (BenchmarkVerifyCached's second baseline).
func (m *Manager) HashSecret(secret string) byte {
	var buf tokenBuf
	canonical, _ := m.appCodec.AppendUsual(buf[:0], secret)
	var key hashKey
	m.macKeys[m.newest()].sum(&key, canonical)
	return key[0]
}
