package ldap

import (
	"errors"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"
)

// TestTransient: the server's own failures are outages (ErrUnavailable, a
// retry, failover), never a refused password; refusals are answers.
func TestTransient(t *testing.T) {
	for code, want := range map[uint16]bool{
		goldap.LDAPResultOther:                    true, // slapd: "internal error" (a backend failure)
		goldap.LDAPResultOperationsError:          true,
		goldap.LDAPResultBusy:                     true,
		goldap.LDAPResultUnavailable:              true,
		goldap.ErrorNetwork:                       true,
		goldap.LDAPResultInvalidCredentials:       false,
		goldap.LDAPResultInsufficientAccessRights: false,
		goldap.LDAPResultUnwillingToPerform:       false,
		goldap.LDAPResultNoSuchObject:             false,
	} {
		if got := transient(goldap.NewError(code, errors.New("x"))); got != want {
			t.Errorf("transient(%d %s) = %v, want %v", code, goldap.LDAPResultCodeMap[code], got, want)
		}
	}
}
