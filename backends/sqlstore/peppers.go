package sqlstore

import (
	"context"
	"time"

	"github.com/appauth/appauth/auth"
)

var _ auth.PepperRegistry = (*Store)(nil)

// RegisterPepper implements [auth.PepperRegistry] with the peppers table.
func (s *Store) RegisterPepper(ctx context.Context, keyID string, check []byte, replace bool) ([]byte, error) {
	table := s.prefix + "peppers"
	conflict := " ON CONFLICT (key_id) DO NOTHING"
	if replace {
		conflict = " ON CONFLICT (key_id) DO UPDATE SET check_value = excluded.check_value, created_at = excluded.created_at"
	}
	if _, err := s.db.ExecContext(ctx, s.rebind("INSERT INTO "+table+" (key_id, check_value, created_at) VALUES (?, ?, ?)"+conflict),
		keyID, check, s.dialect.timeArg(time.Now())); err != nil {
		return nil, translate("register pepper", err)
	}
	var recorded []byte
	if err := s.db.QueryRowContext(ctx, s.rebind("SELECT check_value FROM "+table+" WHERE key_id = ?"), keyID).Scan(&recorded); err != nil {
		return nil, translate("register pepper", err)
	}
	return recorded, nil
}

// CredentialsByKey implements [auth.PepperRegistry].
func (s *Store) CredentialsByKey(ctx context.Context) (map[string]int, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT key_id, COUNT(*) FROM "+s.prefix+"credentials GROUP BY key_id")
	if err != nil {
		return nil, translate("count credentials by key", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, translate("count credentials by key", err)
		}
		out[id] = n
	}
	return out, translate("count credentials by key", rows.Err())
}
