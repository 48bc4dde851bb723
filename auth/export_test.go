package auth

import "context"

// Flush writes pending last-used updates now, for tests that count writes.
func (m *Manager) Flush(ctx context.Context) error { return m.usage.flush(ctx, m.store) }

// PurgeExpired runs the hourly purge now.
func (m *Manager) PurgeExpired(ctx context.Context) (int, error) { return m.purgeExpired(ctx) }
