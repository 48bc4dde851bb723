package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
)

// pepperCheckLabel is what a pepper's check value is the HMAC of. It can
// never be a canonical token, so the value says nothing about any hash.
const pepperCheckLabel = "appauth pepper check v1"

func pepperCheck(key []byte) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(pepperCheckLabel))
	return mac.Sum(nil)
}

// PepperMismatchError is returned by [Manager.Check] when a [Pepper] is not
// the key that made the stored credentials with its ID.
type PepperMismatchError struct {
	KeyID       string // the Pepper's ID
	Credentials int    // how many stored credentials would stop working
	// Shared is set when the store is shared ([Options].SharedPeppers):
	// another server registered the key, which this one must use too.
	Shared bool
}

// Error names the key ID, the damage and the remedy.
func (e *PepperMismatchError) Error() string {
	if e.Shared {
		return fmt.Sprintf("auth: pepper %q is not the key registered for that ID by the servers sharing this store (%d stored credentials use it): "+
			"give every server the same pepper file; this one must not start with its own", e.KeyID, e.Credentials)
	}
	return fmt.Sprintf("auth: pepper %q is not the key that made the %d stored credentials with that ID: with it, every one of them "+
		"would be refused. Restore the original key (the pepper file from its backup); a new key needs a new ID", e.KeyID, e.Credentials)
}

// Check makes sure that every pepper is the key that made the stored
// credentials of its ID, if the store can tell (it implements
// [PepperRegistry]): the first Manager to use a key ID records a check
// value for it (an HMAC of a fixed label, which reveals nothing), and a
// Manager whose key does not match it gets a [*PepperMismatchError] naming
// the ID and how many credentials it would orphan. (A mismatch with no
// credentials of that ID is recorded anew and logged, unless
// [Options].SharedPeppers says other servers use the recorded key.) Run Check at start,
// before serving; an error matching [ErrUnavailable] means the store could
// not answer. NewManager does no I/O, so it cannot; the Manager also runs
// Check itself before it issues its first credential, so that none is ever
// made under a wrong key.
func (m *Manager) Check(ctx context.Context) error {
	r, ok := m.store.s.(PepperRegistry)
	if !ok {
		m.peppersChecked.Store(true)
		return nil
	}
	var counts map[string]int
	for _, p := range m.opts.Peppers {
		check := pepperCheck(p.Key)
		recorded, err := bounded(ctx, m.store, "register pepper", func(ctx context.Context) ([]byte, error) {
			return r.RegisterPepper(ctx, p.ID, check, false)
		})
		if err != nil {
			return fmt.Errorf("auth: check peppers: %w", err)
		}
		if hmac.Equal(recorded, check) {
			continue
		}
		if counts == nil {
			if counts, err = bounded(ctx, m.store, "count credentials by key", r.CredentialsByKey); err != nil {
				return fmt.Errorf("auth: check peppers: %w", err)
			}
		}
		if n := counts[p.ID]; n > 0 || m.opts.SharedPeppers {
			return &PepperMismatchError{KeyID: p.ID, Credentials: n, Shared: m.opts.SharedPeppers}
		}
		if _, err := bounded(ctx, m.store, "register pepper", func(ctx context.Context) ([]byte, error) {
			return r.RegisterPepper(ctx, p.ID, check, true)
		}); err != nil {
			return fmt.Errorf("auth: check peppers: %w", err)
		}
		m.log.WarnContext(ctx, "auth: pepper replaced; no stored credential used the old key", "key_id", p.ID)
	}
	m.peppersChecked.Store(true)
	return nil
}
