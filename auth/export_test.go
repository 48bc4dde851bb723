package auth

import "context"

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
