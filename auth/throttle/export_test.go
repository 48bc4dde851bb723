package throttle

// Size returns the number of entries in the throttle's address and login
// tables, for tests that check memory stays bounded.
func (t *Throttle) Size() (addresses, logins int) { return t.size() }
