package sqlstore_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/backends/sqlstore"
	"github.com/appauth/appauth/internal/testenv"
)

// BenchmarkScale loads 1,000,000 app passwords of 10,000 users into
// PostgreSQL with one INSERT ... SELECT FROM generate_series, adds 100 real
// ones for alice through the Manager, and reports the latency percentiles of
// an uncached verify and of listing alice's passwords.
func BenchmarkScale(b *testing.B) {
	const rows, users = 1_000_000, 10_000
	dsn := testenv.Postgres(b)
	store := mustOpen(b, sqlstore.OpenPostgres, dsn)
	db := rawDB(b, "postgres", dsn)
	start := time.Now()
	if _, err := db.ExecContext(b.Context(), fmt.Sprintf(`
		INSERT INTO appauth_credentials (id, kind, user_id, login, name, scopes, hash, key_id, hint, created_at)
		SELECT 'bulk-' || i, 'app_password', 'user-' || (i %% %d), 'login-' || (i %% %d), 'device ' || i, '',
		       decode(md5(i::text) || md5('x' || i::text), 'hex'), 'k1', 'abcd', now() - i * interval '1 second'
		FROM generate_series(1, %d) AS i`, users, users, rows)); err != nil {
		b.Fatal(err)
	}
	if _, err := db.ExecContext(b.Context(), "ANALYZE appauth_credentials"); err != nil {
		b.Fatal(err)
	}
	b.Logf("loaded %d rows in %v", rows, time.Since(start).Round(time.Millisecond))

	m := newManager(b, store, func(o *auth.Options) { o.CacheSize = -1 })
	var secrets []string
	for i := range 100 {
		_, s, err := m.IssueAppPassword(b.Context(), alice, auth.IssueRequest{Name: fmt.Sprint("device ", i)})
		if err != nil {
			b.Fatal(err)
		}
		secrets = append(secrets, s)
	}
	measure := func(b *testing.B, op func() error) {
		var lat []time.Duration
		for b.Loop() {
			t0 := time.Now()
			if err := op(); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		slices.Sort(lat)
		pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) }
		b.ReportMetric(pct(0.50), "p50-µs")
		b.ReportMetric(pct(0.99), "p99-µs")
	}
	b.Run("verify-uncached", func(b *testing.B) {
		measure(b, func() error {
			_, err := m.Authenticate(b.Context(), auth.Attempt{Username: "alice", Password: secrets[rand.IntN(len(secrets))]})
			return err
		})
	})
	b.Run("list-100-of-1M", func(b *testing.B) {
		measure(b, func() error {
			list, err := m.ListAppPasswords(b.Context(), alice.ID)
			if err == nil && len(list) != 100 {
				err = fmt.Errorf("listed %d, want 100", len(list))
			}
			return err
		})
	})
}
