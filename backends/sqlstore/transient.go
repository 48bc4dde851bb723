package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/appauth/appauth/auth"
)

var _ auth.TransientStore = (*Store)(nil)

// The edges call these methods on their request's goroutine, not through
// the Manager, so each one ends once its context is done also on a Store
// that does not honor its context (see waitBounded).

// PutTransient implements [auth.TransientStore]: one statement that
// inserts, or replaces a record that has expired.
func (s *Store) PutTransient(ctx context.Context, kind string, key, value []byte, expires, now time.Time) error {
	t := s.prefix + "transient"
	res, err := waitBounded(s, ctx, func(ctx context.Context) (sql.Result, error) {
		return s.db.ExecContext(ctx, s.rebind("INSERT INTO "+t+" (kind, key, value, expires_at) VALUES (?, ?, ?, ?) "+
			"ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at WHERE "+t+".expires_at <= ?"),
			kind, key, value, s.dialect.timeArg(expires), s.dialect.timeArg(now))
	})
	if err := oneRow("put transient", res, err); err != nil {
		if errors.Is(err, auth.ErrNotFound) {
			return fmt.Errorf("sqlstore: put transient: %w", auth.ErrAlreadyExists)
		}
		return err
	}
	return nil
}

// Transient implements [auth.TransientStore].
func (s *Store) Transient(ctx context.Context, kind string, key []byte, now time.Time) ([]byte, error) {
	v, err := waitBounded(s, ctx, func(ctx context.Context) ([]byte, error) {
		var v []byte
		err := s.db.QueryRowContext(ctx, s.rebind("SELECT value FROM "+s.prefix+"transient WHERE kind = ? AND key = ? AND expires_at > ?"),
			kind, key, s.dialect.timeArg(now)).Scan(&v)
		return v, err
	})
	return v, translate("transient", err)
}

// SwapTransient implements [auth.TransientStore]: the old value is
// compared in the UPDATE itself, so of two swaps one changes the row.
func (s *Store) SwapTransient(ctx context.Context, kind string, key, old, value []byte, now time.Time) error {
	res, err := waitBounded(s, ctx, func(ctx context.Context) (sql.Result, error) {
		return s.db.ExecContext(ctx, s.rebind("UPDATE "+s.prefix+"transient SET value = ? WHERE kind = ? AND key = ? AND value = ? AND expires_at > ?"),
			value, kind, key, old, s.dialect.timeArg(now))
	})
	return oneRow("swap transient", res, err)
}

// TakeTransient implements [auth.TransientStore] with DELETE ... RETURNING:
// of two takes, one deletes the row.
func (s *Store) TakeTransient(ctx context.Context, kind string, key []byte, now time.Time) ([]byte, error) {
	v, err := waitBounded(s, ctx, func(ctx context.Context) ([]byte, error) {
		var v []byte
		err := s.db.QueryRowContext(ctx, s.rebind("DELETE FROM "+s.prefix+"transient WHERE kind = ? AND key = ? AND expires_at > ? RETURNING value"),
			kind, key, s.dialect.timeArg(now)).Scan(&v)
		return v, err
	})
	return v, translate("take transient", err)
}

// DeleteExpiredTransients implements [auth.TransientStore].
func (s *Store) DeleteExpiredTransients(ctx context.Context, kind string, now time.Time) ([][]byte, error) {
	type result struct {
		values [][]byte
		err    error
	}
	r, err := waitBounded(s, ctx, func(ctx context.Context) (result, error) {
		out, err := s.deleteExpiredTransients(ctx, kind, now)
		return result{out, err}, nil
	})
	if err != nil {
		return nil, translate("delete expired transients", err)
	}
	return r.values, r.err
}

func (s *Store) deleteExpiredTransients(ctx context.Context, kind string, now time.Time) ([][]byte, error) {
	rows, err := s.db.QueryContext(ctx, s.rebind("DELETE FROM "+s.prefix+"transient WHERE kind = ? AND expires_at <= ? RETURNING value"),
		kind, s.dialect.timeArg(now))
	if err != nil {
		return nil, translate("delete expired transients", err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var v []byte
		if err := rows.Scan(&v); err != nil {
			return out, translate("delete expired transients", err) // those read are gone
		}
		out = append(out, v)
	}
	return out, translate("delete expired transients", rows.Err())
}
