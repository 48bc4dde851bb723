package main

import (
	"errors"
	"log/slog"
)

// openLDAP opens the LDAP directory described by the -ldap-* flags.
func openLDAP(cfg *config, logger *slog.Logger) (directory, func() error, error) {
	return nil, nil, errors.New("-ldap-url: LDAP support is not built in yet (backends/ldap)")
}
