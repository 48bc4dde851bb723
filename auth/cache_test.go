package auth

import (
	"math"
	"testing"
	"time"
)

// TestQuickUntil checks the one comparison a cache hit makes for kind and
// expiry, including expiries UnixNano cannot represent.
func TestQuickUntil(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name string
		cred StoredCredential
		want int64
	}{
		{"session", StoredCredential{Kind: KindSession}, math.MinInt64},
		{"never expires", StoredCredential{Kind: KindAppPassword}, math.MaxInt64},
		{"expires", StoredCredential{Kind: KindAppPassword, ExpiresAt: at}, at.Add(-exactMargin).UnixNano()},
		{"year 9999", StoredCredential{Kind: KindAppPassword, ExpiresAt: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)}, math.MaxInt64},
		{"year 1", StoredCredential{Kind: KindAppPassword, ExpiresAt: time.Date(1, 1, 2, 0, 0, 0, 0, time.UTC)}, math.MinInt64},
	} {
		if got := quickUntil(&tc.cred); got != tc.want {
			t.Errorf("%s: quickUntil = %d, want %d", tc.name, got, tc.want)
		}
	}
}
