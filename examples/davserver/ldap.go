package main

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/appauth/appauth/backends/ldap"
)

// openLDAP opens the LDAP directory described by the -ldap-* flags: the
// OpenLDAP preset of backends/ldap (uid logins, entryUUID, memberOf groups,
// ppolicy lockouts) with the filter, TLS and service account from the flags.
// It does not connect yet: an LDAP server that is down at start is a 503 on
// use, not a failed start.
func openLDAP(cfg *config, logger *slog.Logger) (directory, func() error, error) {
	var urls []string
	for u := range strings.SplitSeq(cfg.ldapURL, ",") {
		if u = strings.TrimSpace(u); u != "" {
			urls = append(urls, u)
		}
	}
	c := ldap.OpenLDAP(urls, cfg.ldapBaseDN)
	if cfg.ldapFilter != "" {
		c.UserFilter = cfg.ldapFilter
	}
	c.StartTLS = cfg.ldapStartTLS
	c.CAFile = cfg.ldapCAFile
	c.InsecureSkipVerify = cfg.ldapInsecureVerify
	if cfg.ldapBindDN != "" {
		pw, err := readSecretFile(cfg.ldapBindPassFile, "-ldap-bind-password-file")
		if err != nil {
			return nil, nil, err
		}
		c.BindDN, c.BindPassword = cfg.ldapBindDN, pw
	}
	d, err := ldap.New(c, &ldap.Options{Logger: logger.With("component", "ldap")})
	if err != nil {
		return nil, nil, fmt.Errorf("-ldap-*: %w", err)
	}
	return d, d.Close, nil
}
