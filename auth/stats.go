package auth

// Stats is a snapshot of a Manager's caches and outage handling, for
// metrics. It holds counts only, never an identifier.
type Stats struct {
	// CachedCredentials is the number of verified credentials cached.
	CachedCredentials int
	// CachedUnknown is the number of hashes cached as unknown.
	CachedUnknown int
	// CachedOwners is the number of directory answers cached.
	CachedOwners int
	// GraceServed counts the requests served, since NewManager, from a
	// directory answer kept through an outage ([Options].OwnerGracePeriod).
	GraceServed uint64
}

// Stats returns the Manager's current [Stats]. It takes each cache shard's read
// lock briefly; call it at scrape time, not per request.
func (m *Manager) Stats() Stats {
	s := Stats{GraceServed: m.graceServed.Load()}
	s.CachedCredentials, s.CachedUnknown = m.cache.sizes()
	s.CachedOwners = m.users.len()
	return s
}
