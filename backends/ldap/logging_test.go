package ldap_test

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/appauth/appauth/backends/ldap"
	"github.com/appauth/appauth/internal/testenv"
	"github.com/appauth/appauth/internal/testkit"
)

// TestLogsHoldNoPassword: with debug logging, right and wrong sign-ins, an
// outage and the Config itself log the DN concerned but never a password,
// neither the user's nor the service account's.
func TestLogsHoldNoPassword(t *testing.T) {
	s := testenv.LDAP(t)
	logs := &testkit.Buffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := config(s)
	d, err := ldap.New(cfg, &ldap.Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	const right, wrong = "alice-Secret-1", "alice-Wrong-Guess-77"
	if _, err := d.VerifyPassword(t.Context(), "alice", right); err != nil {
		t.Fatal(err)
	}
	d.VerifyPassword(t.Context(), "alice", wrong)
	logger.Info("config", "ldap", cfg)

	down := config(s, "ldap://127.0.0.1:1") // refused: logged as a server failure
	d2, err := ldap.New(down, &ldap.Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	d2.VerifyPassword(t.Context(), "alice", right)

	out := logs.String()
	for _, secret := range []string{right, wrong, s.BindPassword} {
		if strings.Contains(out, secret) {
			t.Errorf("the log holds a password (%q):\n%s", secret, out)
		}
	}
	if !strings.Contains(out, "uid=alice") {
		t.Errorf("the refused bind is not logged with its DN:\n%s", out)
	}
}
