package auth

// CachedCredentials returns how many verified credentials are cached.
func (m *Manager) CachedCredentials() int {
	n, _ := m.cache.sizes()
	return n
}
