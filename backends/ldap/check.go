package ldap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/appauth/appauth/auth"
)

// Check connects once (with TLS, StartTLS and the service account's bind
// as configured) and searches once under BaseDN with UserFilter for any
// login, to catch a misconfiguration at start rather than when users see
// "try again later" or "wrong password". It returns:
//
//   - nil when the directory answers and the search finds at least one user;
//   - an error matching [auth.ErrUnavailable] when no server can be reached
//     (start anyway: requests get 503 until it is back);
//   - otherwise an error naming the setting to fix: BindDN/BindPassword (the
//     service bind is refused, result 49), CAFile/ServerName (the server's
//     certificate does not verify), BaseDN (no such entry, result 32), or
//     UserFilter (it matches no user under BaseDN, so every sign-in would
//     fail as a wrong password).
//
// It is bounded by ctx and by DialTimeout and RequestTimeout.
func (d *Directory) Check(ctx context.Context) error {
	c, err := d.dial(ctx, true)
	if err != nil {
		return d.checkDialError(err)
	}
	defer c.Close()
	filter := strings.ReplaceAll(d.cfg.UserFilter, "{login}", "*")
	req := goldap.NewSearchRequest(d.cfg.BaseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 1, 0, false, filter, []string{"1.1"}, nil)
	var res *goldap.SearchResult
	err = d.withTimeout(ctx, c, d.cfg.RequestTimeout, func() (err error) {
		res, err = c.Search(req)
		return err
	})
	switch {
	case goldap.IsErrorWithCode(err, goldap.LDAPResultSizeLimitExceeded):
		return nil // more than the one asked for
	case goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject):
		return fmt.Errorf("ldap: BaseDN %q does not exist on %s (result 32, noSuchObject): set BaseDN to the entry above the users", d.cfg.BaseDN, d.servers[c.server].url)
	case err != nil && transient(err):
		return fmt.Errorf("ldap: check: search: %w: %w", auth.ErrUnavailable, err)
	case err != nil:
		return fmt.Errorf("ldap: UserFilter %q under BaseDN %q: the search is refused: %w; check UserFilter, BaseDN and the service account's rights", d.cfg.UserFilter, d.cfg.BaseDN, err)
	case len(res.Entries) == 0:
		return fmt.Errorf("ldap: UserFilter %q matches no entry under BaseDN %q (searched as %s): nobody could sign in; check UserFilter and BaseDN", d.cfg.UserFilter, d.cfg.BaseDN, d.boundAs())
	}
	return nil
}

func (d *Directory) boundAs() string {
	if d.cfg.BindDN == "" {
		return "anonymous"
	}
	return fmt.Sprintf("%q", d.cfg.BindDN)
}

// checkDialError turns a failed connection into an actionable error, or
// ErrUnavailable when the servers are only unreachable.
func (d *Directory) checkDialError(err error) error {
	if errors.Is(err, errServiceBind) {
		var le *goldap.Error
		if errors.As(err, &le) && le.ResultCode == goldap.LDAPResultInvalidCredentials {
			return fmt.Errorf("ldap: BindDN %q or BindPassword is wrong: the service account's bind is refused (result 49, invalidCredentials)", d.cfg.BindDN)
		}
		return fmt.Errorf("ldap: BindDN %q: the service account cannot bind: %s; check BindDN and BindPassword", d.cfg.BindDN, unwrapAll(err))
	}
	if certError(err) {
		ca := "the system's roots"
		if d.cfg.CAFile != "" {
			ca = fmt.Sprintf("%q", d.cfg.CAFile)
		} else if d.cfg.RootCAs != nil {
			ca = "RootCAs"
		}
		return fmt.Errorf("ldap: the server's TLS certificate does not verify against CAFile (%s) for the name in the URL or ServerName: %s; set CAFile to the CA that signed it", ca, unwrapAll(err))
	}
	return fmt.Errorf("ldap: check: %w", err)
}

// certError reports whether err is a failure to verify a certificate.
func certError(err error) bool {
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		verify   *tls.CertificateVerificationError
	)
	return errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid) || errors.As(err, &verify) ||
		strings.Contains(err.Error(), "x509: ")
}

// unwrapAll is err's message without the "unavailable" wording that a
// configuration error does not deserve.
func unwrapAll(err error) string {
	return strings.ReplaceAll(err.Error(), auth.ErrUnavailable.Error()+": ", "")
}
