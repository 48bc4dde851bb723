package ldap_test

import (
	"errors"
	"testing"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/backends/ldap"
	"github.com/appauth/appauth/internal/benchpair"
	"github.com/appauth/appauth/internal/testenv"
)

// TestUnknownLoginCostsABind: an unknown login and a known login with a
// wrong password send the same requests (one search, one bind as someone
// other than the service account), read off the wire, so their timing
// cannot tell which logins exist. The decoy bind's DN is no user's.
func TestUnknownLoginCostsABind(t *testing.T) {
	s := testenv.LDAP(t)
	p := newProxy(t, hostOf(t, s.URL), false)
	d := open(t, config(s, p.URL()))
	ctx := t.Context()
	// Warm the pools so that connection setup is not counted.
	if _, err := d.VerifyPassword(ctx, "alice", "alice-Secret-1"); err != nil {
		t.Fatal(err)
	}
	kb, ks := wrongPasswordCost(t, p, d, s.BindDN, "alice")
	ub, us := wrongPasswordCost(t, p, d, s.BindDN, "nobody-by-this-name")
	if kb != 1 || ub != kb || us != ks {
		t.Errorf("known login with a wrong password: %d binds, %d searches; unknown login: %d binds, %d searches; want the same, one bind each", kb, ks, ub, us)
	}
	p.mu.Lock()
	decoy := p.binds[len(p.binds)-1]
	p.mu.Unlock()
	if u, err := d.LookupUser(ctx, "alice"); err != nil || decoy == "" || decoy == s.BindDN {
		t.Fatalf("decoy bind DN %q (alice: %+v, %v)", decoy, u, err)
	}
}

// wrongPasswordCost counts the user binds (not as serviceDN) and searches
// that one wrong-password VerifyPassword for login sends through p: the
// enumeration tests compare a known login's cost with an unknown one's.
func wrongPasswordCost(t *testing.T, p *proxy, d *ldap.Directory, serviceDN, login string) (binds, searches int) {
	t.Helper()
	b0 := p.userBinds(serviceDN)
	_, _, f0 := p.counts()
	if _, err := d.VerifyPassword(t.Context(), login, "wrong-Password-1"); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Fatalf("VerifyPassword(%q, wrong) = %v; want ErrInvalidCredentials", login, err)
	}
	_, _, f1 := p.counts()
	return p.userBinds(serviceDN) - b0, len(f1) - len(f0)
}

// BenchmarkVerifyPasswordUnknownLogin compares a wrong password for a
// known login (the baseline) with any password for an unknown login: the
// ratio should be about 1 (promise 4: no timing difference).
func BenchmarkVerifyPasswordUnknownLogin(b *testing.B) {
	s := testenv.LDAP(b)
	d := open(b, config(s))
	workers(b)
	benchpair.Run(b, func() (benchpair.Pair, error) {
		wrong := func(login string) func() error {
			return func() error {
				if _, err := d.VerifyPassword(b.Context(), login, "wrong-Password-1"); !errors.Is(err, auth.ErrInvalidCredentials) {
					return err
				}
				return nil
			}
		}
		return benchpair.Pair{Baseline: wrong("alice"), Subject: wrong("nobody-by-this-name"), Close: func() {}}, nil
	})
}

// TestUnknownLoginCostsTheSameSearches: with settings under which a found
// entry costs more searches than the user search (a Disabled filter, groups
// by GroupFilter as the Active Directory preset has), an unknown login
// sends those searches too, so its requests and timing still match a known
// login's with a wrong password.
func TestUnknownLoginCostsTheSameSearches(t *testing.T) {
	s := testenv.LDAP(t)
	p := newProxy(t, hostOf(t, s.URL), false)
	c := config(s, p.URL())
	c.GroupsAttribute, c.GroupFilter, c.NestedGroups = "", ldap.GroupFilterMember, false
	c.Disabled = ldap.DisabledRule{Filter: "(loginShell=/usr/sbin/nologin)"}
	d := open(t, c)
	ctx := t.Context()
	if _, err := d.VerifyPassword(ctx, "alice", "alice-Secret-1"); err != nil {
		t.Fatal(err)
	}
	kb, ks := wrongPasswordCost(t, p, d, s.BindDN, "alice")
	ub, us := wrongPasswordCost(t, p, d, s.BindDN, "nobody-by-this-name")
	if ks < 3 || ub != kb || us != ks {
		t.Errorf("known login with a wrong password: %d binds, %d searches; unknown login: %d binds, %d searches; want the same (and 3 searches: user, Disabled filter, groups)", kb, ks, ub, us)
	}
}
