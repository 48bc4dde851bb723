package radiusrest_test

import (
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/backends/radius"
	"github.com/appauth/appauth/internal/benchpair"
	"github.com/appauth/appauth/internal/testenv"
)

// BenchmarkFreeRADIUSAccept: a PAP Access-Accept through FreeRADIUS and
// appauth (rlm_rest, then a cached app-password verify), against its
// baseline in the same run: the same PAP request to a FreeRADIUS that
// checks a users file itself. Both are raw packets from the same Go client
// (backends/radius), one socket per request; "ratio" is the baseline's
// time over appauth's.
func BenchmarkFreeRADIUSAccept(b *testing.B) {
	f := newFixture(b)
	_, secret, err := f.m.IssueAppPassword(b.Context(), f.user, auth.IssueRequest{Name: "VPN", Scopes: []string{auth.ScopeNetwork}})
	if err != nil {
		b.Fatal(err)
	}
	usersFile := testenv.RADIUS(b, testenv.RADIUSConfig{Users: map[string]string{"alice": accountPassword}, RequireMessageAuthenticator: true})
	client := func(s *testenv.RADIUSServer) *radius.Verifier {
		v, err := radius.New(radius.Config{Servers: []string{s.Addr}, Secret: s.Secret, Timeout: 5 * time.Second, Tries: 1, AllowUnsignedReplies: true})
		if err != nil {
			b.Fatal(err)
		}
		return v
	}
	base, subj := client(usersFile), client(f.radius)
	b.SetParallelism(2) // 4 workers on 2 cores: FreeRADIUS and appauth get work while one waits
	b.ResetTimer()
	benchpair.Run(b, func() (benchpair.Pair, error) {
		return benchpair.Pair{
			Baseline: func() error { _, err := base.VerifyPassword(b.Context(), "alice", accountPassword); return err },
			Subject:  func() error { _, err := subj.VerifyPassword(b.Context(), "alice", secret); return err },
		}, nil
	})
}
