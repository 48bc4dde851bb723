package ldap_test

import (
	"crypto/rand"
	"encoding/hex"
	"slices"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/appauth/appauth/backends/ldap"
	"github.com/appauth/appauth/internal/testenv"
)

// TestGroupFilterPlaceholdersInValues: GroupFilter's {dn} and {login} are
// each replaced by the member's own value, and text in those values that
// looks like a placeholder stays as it is. A user whose DN held "{login}"
// had it replaced by their login, so the group search asked for another
// member's DN, and they were given that member's groups.
func TestGroupFilterPlaceholdersInValues(t *testing.T) {
	s := testenv.LDAP(t)
	b := make([]byte, 8)
	rand.Read(b)
	p := "x" + hex.EncodeToString(b)
	alice, bob := p+"{login}", p+p+"{login}" // bob's DN is alice's with {login} replaced by alice's login
	admin := admin(t, s)
	dnOf := func(login string) string { return "uid=" + goldap.EscapeDN(login) + ",ou=people," + s.BaseDN }
	for _, login := range []string{alice, bob} {
		req := goldap.NewAddRequest(dnOf(login), nil)
		req.Attribute("objectClass", []string{"inetOrgPerson"})
		req.Attribute("uid", []string{login})
		req.Attribute("cn", []string{login})
		req.Attribute("sn", []string{"Temporary"})
		req.Attribute("userPassword", []string{"tmp-Secret-1"})
		if err := admin.Add(req); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { admin.Del(goldap.NewDelRequest(dnOf(login), nil)) })
	}
	group := "cn=" + p + "-bobs,ou=groups," + s.BaseDN
	req := goldap.NewAddRequest(group, nil)
	req.Attribute("objectClass", []string{"groupOfNames"})
	req.Attribute("cn", []string{p + "-bobs"})
	req.Attribute("member", []string{dnOf(bob)})
	if err := admin.Add(req); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Del(goldap.NewDelRequest(group, nil)) })

	for _, filter := range []string{ldap.GroupFilterMember, "(&(objectClass=groupOfNames)(|(member={dn})(cn={login})))"} {
		c := config(s)
		c.GroupsAttribute, c.GroupFilter, c.NestedGroups = "", filter, false
		d := open(t, c)
		u, err := d.LookupUser(t.Context(), alice)
		if err != nil {
			t.Fatal(err)
		}
		if len(u.Groups) != 0 {
			t.Errorf("GroupFilter %s: %s has the groups %q of another member", filter, alice, u.Groups)
		}
		u, err = d.LookupUser(t.Context(), bob)
		if err != nil || !slices.Contains(u.Groups, p+"-bobs") {
			t.Errorf("GroupFilter %s: %s: %+v, %v; want the group %s-bobs", filter, bob, u, err, p)
		}
	}
}
