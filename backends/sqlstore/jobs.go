package sqlstore

import (
	"context"
	"time"

	"github.com/appauth/appauth/auth"
)

var _ auth.JobClaimer = (*Store)(nil)

// ClaimJob implements [auth.JobClaimer] with one statement: the job's row
// is inserted, or its last run moved to now only if every has passed, and
// the caller runs the job when a row was written. Concurrent claims are
// serialized by the row, so one server wins each interval.
func (s *Store) ClaimJob(ctx context.Context, name string, now time.Time, every time.Duration) (bool, error) {
	t := s.prefix + "jobs"
	res, err := s.db.ExecContext(ctx, s.rebind("INSERT INTO "+t+" (name, last_run) VALUES (?, ?) "+
		"ON CONFLICT (name) DO UPDATE SET last_run = excluded.last_run WHERE "+t+".last_run <= ?"),
		name, s.dialect.timeArg(now), s.dialect.timeArg(now.Add(-every)))
	if err != nil {
		return false, translate("claim job", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, translate("claim job", err)
	}
	return n == 1, nil
}
