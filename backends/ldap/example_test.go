package ldap_test

import (
	"context"
	"errors"
	"log"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/backends/ldap"
)

// An OpenLDAP directory over StartTLS with a service account. New does not
// connect; the first lookup does. (Not run: it needs an LDAP server.)
func ExampleNew() {
	cfg := ldap.OpenLDAP([]string{"ldap://ldap1.example.com", "ldap://ldap2.example.com"}, "ou=people,dc=example,dc=com")
	cfg.StartTLS = true
	cfg.CAFile = "/etc/ssl/certs/example-ca.pem"
	cfg.BindDN = "cn=appauth,ou=services,dc=example,dc=com"
	cfg.BindPassword = "read from a secret file"

	dir, err := ldap.New(cfg, nil)
	if err != nil {
		log.Fatal(err) // a configuration error, with the field's name
	}
	defer dir.Close()

	u, err := dir.VerifyPassword(context.Background(), "alice", "alice's directory password")
	switch {
	case errors.Is(err, auth.ErrInvalidCredentials):
		log.Print("wrong password, unknown or disabled user")
	case errors.Is(err, auth.ErrUnavailable):
		log.Print("the directory cannot answer: try again later (HTTP 503)")
	case err == nil:
		log.Printf("signed in: %s (%s), groups %v", u.Login, u.ID, u.Groups)
	}
}

// Active Directory over LDAPS, users by sAMAccountName, nested groups in one
// search, disabled accounts from userAccountControl. (Not run: it needs a
// domain controller.)
func ExampleActiveDirectory() {
	cfg := ldap.ActiveDirectory([]string{"ldaps://dc1.corp.example.com"}, "dc=corp,dc=example,dc=com")
	cfg.BindDN = "CN=appauth,OU=Service Accounts,DC=corp,DC=example,DC=com"
	cfg.BindPassword = "read from a secret file"
	dir, err := ldap.New(cfg, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer dir.Close()
	// dir is an auth.Directory and an auth.PasswordVerifier: give it to
	// auth.NewManager and settings.New.
}
