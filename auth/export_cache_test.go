package auth

// CachedCredentials returns how many verified credentials are cached.
func (m *Manager) CachedCredentials() int {
	m.cache.mu.RLock()
	defer m.cache.mu.RUnlock()
	return len(m.cache.entries)
}
