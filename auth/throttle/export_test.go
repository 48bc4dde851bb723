package throttle

// Size returns the number of entries in the throttle's address, login and
// pair tables, for tests that check memory stays bounded.
func (t *Throttle) Size() (addresses, logins, pairs int) { return t.size() }
