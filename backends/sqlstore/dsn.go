package sqlstore

import (
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// DefaultConnectTimeout is the connect_timeout, in seconds, that
// [OpenPostgres] adds to a DSN without one, and to [Options.ListenDSN].
const DefaultConnectTimeout = 5

// withConnectTimeout adds connect_timeout to a URL or key=value DSN that
// has none.
func withConnectTimeout(dsn string) string {
	if strings.Contains(dsn, "connect_timeout") {
		return dsn
	}
	param := "connect_timeout=" + strconv.Itoa(DefaultConnectTimeout)
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		if i := strings.Index(dsn, "#"); i >= 0 {
			return dsn[:i] + sep + param + dsn[i:]
		}
		return dsn + sep + param
	}
	if strings.TrimSpace(dsn) == "" {
		return param
	}
	return dsn + " " + param
}

// redactedError is an error whose message has a password blanked out; it
// still unwraps to the original, so errors.Is keeps working.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// kvPassword finds the password of a key=value DSN, quoted or not.
var kvPassword = regexp.MustCompile(`(?:^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)`)

// redactDSN returns err with every form of dsn's password in its message
// replaced, so neither a driver's parse error (which may quote the DSN) nor
// any other message can leak it.
func redactDSN(err error, dsn string) error {
	if err == nil {
		return nil
	}
	var secrets []string
	if i := strings.Index(dsn, "://"); i >= 0 {
		authority := dsn[i+3:]
		if j := strings.IndexAny(authority, "/?#"); j >= 0 {
			authority = authority[:j]
		}
		if at := strings.LastIndex(authority, "@"); at >= 0 {
			if _, raw, ok := strings.Cut(authority[:at], ":"); ok && raw != "" {
				secrets = append(secrets, raw)
				if dec, err := url.PathUnescape(raw); err == nil {
					secrets = append(secrets, dec)
				}
			}
		}
	}
	for _, m := range kvPassword.FindAllStringSubmatch(dsn, -1) {
		p := m[1]
		secrets = append(secrets, p)
		if len(p) >= 2 && p[0] == '\'' {
			secrets = append(secrets, strings.ReplaceAll(p[1:len(p)-1], `\'`, `'`))
		}
	}
	msg := err.Error()
	redacted := msg
	for _, s := range secrets {
		if s != "" {
			redacted = strings.ReplaceAll(redacted, s, "xxxxx")
		}
	}
	if redacted == msg {
		return err
	}
	return &redactedError{msg: redacted, err: err}
}
