package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/backends/ldap"
)

// openLDAP opens the LDAP directory described by the -ldap-* flags: the
// OpenLDAP preset of backends/ldap (uid logins, entryUUID, memberOf groups,
// ppolicy's administrative lock) with the filter, TLS and service account
// from the flags.
// It checks the settings with one connection and one search
// ([ldap.Directory.Check]): a wrong bind DN or password, base DN, filter or
// CA stops the start with the flag to fix, while a directory that is only
// unreachable is logged and the server starts, answering 503 until it is
// back.
func openLDAP(ctx context.Context, cfg *config, logger *slog.Logger) (directory, func() error, error) {
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
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	switch err := d.Check(ctx); {
	case errors.Is(err, auth.ErrUnavailable):
		logger.Warn("ldap: the directory is unreachable; starting anyway, requests get 503 until it is back", "url", cfg.ldapURL, "error", err)
	case err != nil:
		d.Close()
		return nil, nil, fmt.Errorf("%s: %w", ldapFlags(err.Error()), err)
	}
	return d, d.Close, nil
}

// ldapFlags names the flags of the ldap.Config settings that msg names.
func ldapFlags(msg string) string {
	var flags []string
	for _, f := range []struct{ setting, flag string }{
		{"BindDN", "-ldap-bind-dn"}, {"BindPassword", "-ldap-bind-password-file"}, {"BaseDN", "-ldap-base-dn"},
		{"UserFilter", "-ldap-filter"}, {"CAFile", "-ldap-ca-file"},
	} {
		if strings.Contains(msg, f.setting) {
			flags = append(flags, f.flag)
		}
	}
	if len(flags) == 0 {
		return "-ldap-*"
	}
	return strings.Join(flags, ", ")
}
