package ldap_test

import (
	"fmt"
	"runtime"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/internal/benchpair"
	"github.com/appauth/appauth/internal/testenv"
)

// workers sets b.RunParallel to 8 goroutines.
func workers(b *testing.B) {
	b.SetParallelism(max(1, 8/runtime.GOMAXPROCS(0)))
}

// BenchmarkVerifyPassword compares VerifyPassword through the pool with
// its baseline: raw go-ldap search + bind on connections opened before the
// timer (one search and one bind connection per worker), asking for the same
// attributes. Each of the 8 workers alternates the two (see benchpair), plain
// ldap:// to the test slapd.
func BenchmarkVerifyPassword(b *testing.B) {
	s := testenv.LDAP(b)
	const login, password = "alice", "alice-Secret-1"
	d := open(b, config(s))
	if _, err := d.VerifyPassword(b.Context(), login, password); err != nil {
		b.Fatal(err)
	}
	attrs := []string{"entryUUID", "uid", "displayName", "cn", "mail", "memberOf", "pwdAccountLockedTime"}
	filter := "(&(objectClass=inetOrgPerson)(uid=" + goldap.EscapeFilter(login) + "))"
	workers(b)
	benchpair.Run(b, func() (benchpair.Pair, error) {
		search, err := goldap.DialURL(s.URL)
		if err != nil {
			return benchpair.Pair{}, err
		}
		if err := search.Bind(s.BindDN, s.BindPassword); err != nil {
			search.Close()
			return benchpair.Pair{}, err
		}
		bind, err := goldap.DialURL(s.URL)
		if err != nil {
			search.Close()
			return benchpair.Pair{}, err
		}
		return benchpair.Pair{
			Baseline: func() error {
				res, err := search.Search(goldap.NewSearchRequest(s.BaseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 2, 0, false, filter, attrs, nil))
				if err != nil {
					return err
				}
				if len(res.Entries) != 1 {
					return fmt.Errorf("%d entries", len(res.Entries))
				}
				return bind.Bind(res.Entries[0].DN, password)
			},
			Subject: func() error { _, err := d.VerifyPassword(b.Context(), login, password); return err },
			Close:   func() { search.Close(); bind.Close() },
		}, nil
	})
}

// BenchmarkLookupUser: the directory lookup every app-password verify
// needs, uncached (LookupUser itself) and cached (Authenticate through a
// Manager, whose owner cache answers until OwnerCheckInterval).
func BenchmarkLookupUser(b *testing.B) {
	s := testenv.LDAP(b)
	d := open(b, config(s))
	b.Run("uncached", func(b *testing.B) {
		workers(b)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := d.LookupUser(b.Context(), "alice"); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("cached-manager", func(b *testing.B) {
		m, _ := newManager(b, d)
		u, err := d.LookupUser(b.Context(), "alice")
		if err != nil {
			b.Fatal(err)
		}
		_, secret, err := m.IssueAppPassword(b.Context(), u, auth.IssueRequest{Name: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		creds := auth.Attempt{Username: "alice", Password: secret}
		workers(b)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := m.Authenticate(b.Context(), creds); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
