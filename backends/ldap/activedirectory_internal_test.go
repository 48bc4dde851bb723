package ldap

import (
	"strings"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"
)

// There is no Active Directory here to test against; these check the parts
// of the AD preset that do not need one.

// TestObjectGUID: AD's binary objectGUID is rendered in Windows' GUID text
// form, its first three fields little-endian.
func TestObjectGUID(t *testing.T) {
	d := &Directory{cfg: Config{IDAttribute: "objectGUID"}}
	raw := []byte{0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}
	e := &goldap.Entry{Attributes: []*goldap.EntryAttribute{{Name: "objectGUID", ByteValues: [][]byte{raw}, Values: []string{string(raw)}}}}
	if got, want := d.entryID(e), "00112233-4455-6677-8899-aabbccddeeff"; got != want {
		t.Errorf("objectGUID = %q, want %q", got, want)
	}
	short := &goldap.Entry{Attributes: []*goldap.EntryAttribute{{Name: "objectGUID", ByteValues: [][]byte{raw[:15]}}}}
	if got := d.entryID(short); got != "" {
		t.Errorf("a 15-byte objectGUID gave ID %q, want none (the user is then refused)", got)
	}
}

// TestActiveDirectoryPreset: the preset validates, searches by
// sAMAccountName, resolves nested groups in one LDAP_MATCHING_RULE_IN_CHAIN
// search, and disables on userAccountControl bit 2.
func TestActiveDirectoryPreset(t *testing.T) {
	cfg := ActiveDirectory([]string{"ldaps://dc1.example.org", "ldaps://dc2.example.org"}, "dc=example,dc=org")
	cfg.BindDN, cfg.BindPassword = "cn=svc,dc=example,dc=org", "x"
	d, err := New(cfg, nil)
	if err != nil {
		t.Fatalf("New(ActiveDirectory preset): %v", err)
	}
	defer d.Close()
	if !strings.Contains(cfg.UserFilter, "sAMAccountName={login}") {
		t.Errorf("user filter %q does not match sAMAccountName", cfg.UserFilter)
	}
	if !strings.Contains(cfg.GroupFilter, "1.2.840.113556.1.4.1941") {
		t.Errorf("group filter %q does not use LDAP_MATCHING_RULE_IN_CHAIN", cfg.GroupFilter)
	}
	if cfg.Disabled.Attribute != "userAccountControl" || cfg.Disabled.BitMask != 2 {
		t.Errorf("disabled rule %+v", cfg.Disabled)
	}
}

// TestUserAccountControl: bit 2 (ACCOUNTDISABLE) disables; an unreadable
// value fails closed.
func TestUserAccountControl(t *testing.T) {
	cfg := ActiveDirectory([]string{"ldaps://dc.example.org"}, "dc=example,dc=org")
	d := &Directory{cfg: cfg}
	for value, want := range map[string]bool{"512": false, "514": true, "66048": false, "66050": true, "garbage": true} {
		e := &goldap.Entry{Attributes: []*goldap.EntryAttribute{{Name: "userAccountControl", Values: []string{value}}}}
		got, err := d.disabled(t.Context(), nil, e)
		if err != nil || got != want {
			t.Errorf("userAccountControl %s: disabled = %v, %v; want %v", value, got, err, want)
		}
	}
}
