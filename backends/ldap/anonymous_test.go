package ldap_test

import (
	"testing"

	"github.com/appauth/appauth/internal/testenv"
)

// TestAnonymousSearch: with no service account the directory searches
// anonymously (where the server allows it, as the test slapd does), and
// sign-in still binds as the user.
func TestAnonymousSearch(t *testing.T) {
	s := testenv.LDAP(t)
	cfg := config(s)
	cfg.BindDN, cfg.BindPassword = "", ""
	d := open(t, cfg)
	u, err := d.LookupUser(t.Context(), "alice")
	if err != nil || u.Login != "alice" || u.ID == "" {
		t.Fatalf("anonymous LookupUser = %+v, %v", u, err)
	}
	if _, err := d.VerifyPassword(t.Context(), "alice", "alice-Secret-1"); err != nil {
		t.Errorf("VerifyPassword with anonymous search: %v", err)
	}
	if _, err := d.VerifyPassword(t.Context(), "alice", "wrong"); err == nil {
		t.Error("a wrong password was accepted with anonymous search")
	}
}
