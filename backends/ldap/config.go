package ldap

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
)

// Filters for [Config.UserFilter]. {login} is replaced by the login,
// escaped (RFC 4515).
const (
	// FilterOpenLDAP finds inetOrgPerson entries by uid: the default.
	FilterOpenLDAP = "(&(objectClass=inetOrgPerson)(uid={login}))"
	// FilterMail finds inetOrgPerson entries by email address.
	FilterMail = "(&(objectClass=inetOrgPerson)(mail={login}))"
	// FilterADSAMAccountName finds Active Directory users by their
	// pre-Windows 2000 logon name ("alice").
	FilterADSAMAccountName = "(&(objectCategory=person)(objectClass=user)(sAMAccountName={login}))"
	// FilterADUserPrincipalName finds Active Directory users by their UPN
	// ("alice@corp.example.com"). Set LoginAttribute to "userPrincipalName" too.
	FilterADUserPrincipalName = "(&(objectCategory=person)(objectClass=user)(userPrincipalName={login}))"
)

// Filters for [Config.GroupFilter]. {dn} is replaced by the member's DN and
// {login} by the login, both escaped (RFC 4515).
const (
	// GroupFilterMember finds groupOfNames groups listing the member by DN.
	GroupFilterMember = "(&(objectClass=groupOfNames)(member={dn}))"
	// GroupFilterUniqueMember finds groupOfUniqueNames groups (389 DS and
	// older OpenLDAP setups).
	GroupFilterUniqueMember = "(&(objectClass=groupOfUniqueNames)(uniqueMember={dn}))"
	// GroupFilterMemberUID finds posixGroup groups listing the login in
	// memberUid. Such groups do not nest.
	GroupFilterMemberUID = "(&(objectClass=posixGroup)(memberUid={login}))"
	// GroupFilterADNested finds every Active Directory group the member is
	// in, nested ones included, in one search (LDAP_MATCHING_RULE_IN_CHAIN).
	GroupFilterADNested = "(&(objectCategory=group)(member:1.2.840.113556.1.4.1941:={dn}))"
)

// Config describes the directory. URLs and BaseDN are required; every other
// zero field takes the default given on it. [OpenLDAP] and
// [ActiveDirectory] return filled-in starting points.
type Config struct {
	// URLs are the servers, ldap://host[:port] or ldaps://host[:port],
	// tried in order: a server that fails is skipped for DeadServerBackoff.
	URLs []string

	// StartTLS upgrades ldap:// connections with StartTLS before anything
	// else is sent; if the server refuses or the certificate does not
	// verify, the connection fails (no plaintext fallback). Not allowed
	// with ldaps:// URLs.
	StartTLS bool
	// CAFile is a PEM file of the CAs that sign the servers' certificates.
	// Default: RootCAs, else the system's roots.
	CAFile string
	// RootCAs is a pool of CAs used when CAFile is empty.
	RootCAs *x509.CertPool
	// ServerName is the name the certificate must hold. Default: the host
	// of each URL.
	ServerName string
	// InsecureSkipVerify accepts any certificate, for tests only: anyone on
	// the path can then read the passwords.
	InsecureSkipVerify bool

	// BindDN and BindPassword are the service account that searches for
	// users and groups. Empty BindDN: search anonymously.
	BindDN       string
	BindPassword string

	// BaseDN is where users are searched (whole subtree). Required.
	BaseDN string
	// UserFilter finds a user; {login} is replaced by the escaped login.
	// Default [FilterOpenLDAP].
	UserFilter string
	// IDAttribute holds the stable ID. Default "entryUUID"; "objectGUID"
	// (Active Directory, binary) is rendered as a GUID string.
	IDAttribute string
	// LoginAttribute holds the login as the directory spells it; it must
	// equal the presented login but for case. Default "uid".
	LoginAttribute string
	// DisplayNameAttribute default "displayName" (falling back to "cn").
	DisplayNameAttribute string
	// EmailAttribute default "mail".
	EmailAttribute string

	// GroupsAttribute, if set, lists a user's groups by DN in the user's
	// entry ("memberOf", from the OpenLDAP memberof overlay or Active
	// Directory). The group's name is the value of its DN's first RDN.
	GroupsAttribute string
	// GroupFilter, if set (and GroupsAttribute is not), finds a user's
	// groups by a search under GroupBaseDN (default BaseDN); see
	// [GroupFilterMember] and friends.
	GroupFilter string
	GroupBaseDN string
	// GroupNameAttribute names a group found by GroupFilter. Default "cn".
	GroupNameAttribute string
	// NestedGroups resolves groups of groups: with GroupsAttribute by
	// reading each group's own GroupsAttribute, with GroupFilter by
	// searching again with the group's DN as {dn}; at most MaxGroupDepth
	// levels (default 8) and 1000 groups. Not needed with
	// [GroupFilterADNested].
	NestedGroups  bool
	MaxGroupDepth int
	// GroupCacheTTL is how long the parents of a group (for NestedGroups)
	// are remembered. A user's own memberships are always read fresh.
	// Default 1m; negative: no cache.
	GroupCacheTTL time.Duration

	// Disabled says which accounts are disabled. Default: none.
	Disabled DisabledRule

	// DialTimeout bounds making a connection: TCP, TLS, StartTLS and the
	// service bind. Default 5s.
	DialTimeout time.Duration
	// RequestTimeout bounds one search. Default 10s.
	RequestTimeout time.Duration
	// BindTimeout bounds a user's bind. Default RequestTimeout.
	BindTimeout time.Duration
	// DeadServerBackoff is how long a server that failed is skipped (unless
	// all are). Default 30s.
	DeadServerBackoff time.Duration
	// PoolSize bounds the open connections of each kind (searching,
	// binding as users). Default 8.
	PoolSize int
}

// DisabledRule says which accounts are disabled. Set one kind.
type DisabledRule struct {
	// Attribute: disabled when the user entry has this attribute (with any
	// value, or with one of Values, compared case-insensitively), e.g.
	// "pwdAccountLockedTime" with Values ["000001010000Z"] (OpenLDAP
	// ppolicy's administrative lock) or "nsAccountLock" with Values
	// ["true"] (389 DS).
	Attribute string
	Values    []string
	// BitMask: Attribute holds an integer and the account is disabled
	// when it has any of these bits, e.g. Active Directory's
	// userAccountControl with 2 (ACCOUNTDISABLE).
	BitMask int64
	// Filter: disabled when the user entry matches this LDAP filter (one
	// more search per lookup), e.g. "(loginShell=/usr/sbin/nologin)".
	Filter string
}

// OpenLDAP returns a Config for an OpenLDAP directory: users by uid,
// entryUUID as ID, groups from memberOf (memberof overlay) with nesting,
// accounts an administrator locked (ppolicy's pwdAccountLockedTime
// 000001010000Z) disabled. A lockout after failed binds (a
// pwdAccountLockedTime of that time) is not: anyone who knows a login can
// cause one by guessing its password on the web sign-in, and it should
// stop the guesses, not the owner's devices. The directory still refuses
// the account password while it lasts.
func OpenLDAP(urls []string, baseDN string) Config {
	return Config{
		URLs:            urls,
		BaseDN:          baseDN,
		UserFilter:      FilterOpenLDAP,
		IDAttribute:     "entryUUID",
		LoginAttribute:  "uid",
		GroupsAttribute: "memberOf",
		NestedGroups:    true,
		Disabled:        DisabledRule{Attribute: "pwdAccountLockedTime", Values: []string{"000001010000Z"}},
	}
}

// ActiveDirectory returns a Config for Active Directory: users by
// sAMAccountName, objectGUID as ID, every group (nested included) in one
// search, accounts with userAccountControl's ACCOUNTDISABLE bit disabled.
// Use ldaps:// (port 636) or StartTLS: AD refuses simple binds in the
// clear when LDAP signing is required.
func ActiveDirectory(urls []string, baseDN string) Config {
	return Config{
		URLs:           urls,
		BaseDN:         baseDN,
		UserFilter:     FilterADSAMAccountName,
		IDAttribute:    "objectGUID",
		LoginAttribute: "sAMAccountName",
		GroupFilter:    GroupFilterADNested,
		Disabled:       DisabledRule{Attribute: "userAccountControl", BitMask: 2},
	}
}

// LogValue implements [slog.LogValuer]: the Config without BindPassword.
func (c Config) LogValue() slog.Value {
	pw := ""
	if c.BindPassword != "" {
		pw = "REDACTED"
	}
	return slog.GroupValue(
		slog.Any("urls", c.URLs), slog.Bool("start_tls", c.StartTLS), slog.String("bind_dn", c.BindDN),
		slog.String("bind_password", pw), slog.String("base_dn", c.BaseDN), slog.String("user_filter", c.UserFilter),
	)
}

// server is one URL, parsed.
type server struct {
	url  string
	addr string // host:port
	tls  bool   // ldaps://
	cfg  *tls.Config
}

func (c *Config) withDefaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.UserFilter, FilterOpenLDAP)
	def(&c.IDAttribute, "entryUUID")
	def(&c.LoginAttribute, "uid")
	def(&c.DisplayNameAttribute, "displayName")
	def(&c.EmailAttribute, "mail")
	def(&c.GroupNameAttribute, "cn")
	def(&c.GroupBaseDN, c.BaseDN)
	dur := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	dur(&c.DialTimeout, 5*time.Second)
	dur(&c.RequestTimeout, 10*time.Second)
	dur(&c.BindTimeout, c.RequestTimeout)
	dur(&c.DeadServerBackoff, 30*time.Second)
	dur(&c.GroupCacheTTL, time.Minute)
	if c.MaxGroupDepth == 0 {
		c.MaxGroupDepth = 8
	}
	if c.PoolSize == 0 {
		c.PoolSize = 8
	}
}

// validate checks c (after withDefaults) and returns the servers.
func (c *Config) validate() ([]server, error) {
	if len(c.URLs) == 0 {
		return nil, errors.New(`ldap: missing required field "URLs"`)
	}
	if c.BaseDN == "" {
		return nil, errors.New(`ldap: missing required field "BaseDN"`)
	}
	if !strings.Contains(c.UserFilter, "{login}") {
		return nil, fmt.Errorf("ldap: UserFilter %q has no {login}", c.UserFilter)
	}
	if c.GroupFilter != "" && !strings.Contains(c.GroupFilter, "{dn}") && !strings.Contains(c.GroupFilter, "{login}") {
		return nil, fmt.Errorf("ldap: GroupFilter %q has neither {dn} nor {login}", c.GroupFilter)
	}
	// A filter that does not compile fails every search, which would look
	// like an outage (503) rather than the setting to fix.
	fill := strings.NewReplacer("{login}", "x", "{dn}", "x")
	for _, f := range []struct{ name, filter string }{{"UserFilter", c.UserFilter}, {"GroupFilter", c.GroupFilter}, {"Disabled.Filter", c.Disabled.Filter}} {
		if f.filter == "" {
			continue
		}
		if _, err := goldap.CompileFilter(fill.Replace(f.filter)); err != nil {
			return nil, fmt.Errorf("ldap: %s %q: %w", f.name, f.filter, err)
		}
	}
	if c.BindDN == "" && c.BindPassword != "" {
		return nil, errors.New("ldap: BindPassword set without BindDN")
	}
	if c.BindDN != "" && c.BindPassword == "" {
		return nil, errors.New("ldap: BindDN set without BindPassword (an empty password is an anonymous bind)")
	}
	if c.PoolSize < 0 || c.MaxGroupDepth < 0 || c.DialTimeout < 0 || c.RequestTimeout < 0 || c.BindTimeout < 0 || c.DeadServerBackoff < 0 {
		return nil, errors.New("ldap: PoolSize, MaxGroupDepth and timeouts must not be negative")
	}
	if c.Disabled.BitMask != 0 && c.Disabled.Attribute == "" {
		return nil, errors.New("ldap: Disabled.BitMask needs Disabled.Attribute")
	}
	base := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.InsecureSkipVerify, RootCAs: c.RootCAs}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ldap: CAFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ldap: CAFile %s holds no PEM certificate", c.CAFile)
		}
		base.RootCAs = pool
	}
	var servers []server
	for i, raw := range c.URLs {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("ldap: URLs[%d]: %w", i, err)
		}
		s := server{url: raw}
		switch u.Scheme {
		case "ldap":
			s.addr = hostPort(u, "389")
		case "ldaps":
			if c.StartTLS {
				return nil, fmt.Errorf("ldap: URLs[%d] %s: StartTLS is for ldap:// URLs", i, raw)
			}
			s.addr, s.tls = hostPort(u, "636"), true
		default:
			return nil, fmt.Errorf("ldap: URLs[%d] %s: scheme must be ldap or ldaps", i, raw)
		}
		if u.Hostname() == "" {
			return nil, fmt.Errorf("ldap: URLs[%d] %s: no host", i, raw)
		}
		s.cfg = base.Clone()
		s.cfg.ServerName = c.ServerName
		if s.cfg.ServerName == "" {
			s.cfg.ServerName = u.Hostname()
		}
		servers = append(servers, s)
	}
	return servers, nil
}

func hostPort(u *url.URL, def string) string {
	port := u.Port()
	if port == "" {
		port = def
	}
	return net.JoinHostPort(u.Hostname(), port)
}
