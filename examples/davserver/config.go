package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// config is the command line (and its APPAUTH_* environment variables).
type config struct {
	addr string
	// metricsAddr is where /metrics, /healthz and /readyz are served
	// (empty: not at all); see ops.go.
	metricsAddr string
	data        string
	users       string
	pepperFile  string
	postgres    string

	ldapURL            string
	ldapBindDN         string
	ldapBindPassFile   string
	ldapBaseDN         string
	ldapFilter         string
	ldapStartTLS       bool
	ldapCAFile         string
	ldapInsecureVerify bool

	allowAccountPassword bool
	tlsCert, tlsKey      string
	trustedProxies       string
	forwardedHeader      string
	logFormat            string
	logLevel             string
	title                string
	// cacheSize is auth.Options.CacheSize; 0: sized from the store at
	// start (see cacheSize).
	cacheSize int
	// expireUnusedDays is auth.Options.ExpireUnusedAfter in days; 0: off.
	expireUnusedDays int

	maxFileSize  byteSize
	readTimeout  time.Duration
	writeTimeout time.Duration

	addUser    string
	removeUser string
	// insecureNoAuth is -insecure-no-auth-as, in bench builds only (see
	// noauth.go): the user every DAV request is served as, unchecked.
	insecureNoAuth string

	notify notifyConfig
	radius radiusConfig
	oidc   oidcConfig

	// set records which flags were given (on the command line or in the
	// environment), to tell a default from an explicit choice.
	set map[string]bool
	// proxies is trustedProxies parsed.
	proxies []netip.Prefix
}

// envName is the environment variable of a flag: "ldap-url" -> APPAUTH_LDAP_URL.
func envName(flagName string) string {
	return "APPAUTH_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseConfig reads flags, with every flag's APPAUTH_* environment variable
// as its default, and validates them. getenv is os.Getenv outside tests.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (*config, error) {
	return parseConfigWith(args, getenv, stderr, nil)
}

// parseConfigWith is parseConfig with more flags: extra defines them (an
// admin subcommand's own) after the environment is read, so that no
// APPAUTH_* variable can set them: a revocation is asked for on the command
// line only.
func parseConfigWith(args []string, getenv func(string) string, stderr io.Writer, extra func(*flag.FlagSet)) (*config, error) {
	c := &config{set: map[string]bool{}}
	fs := newFlagSet(c, stderr)

	// Removing a user destroys access: only on the command line, never
	// from a variable left in an environment.
	if getenv(envName("remove-user")) != "" {
		return nil, fmt.Errorf("%s: -remove-user is a one-off command; give it on the command line", envName("remove-user"))
	}
	// Nor can a variable turn authentication off (bench builds only).
	if getenv(envName("insecure-no-auth-as")) != "" {
		return nil, fmt.Errorf("%s: -insecure-no-auth-as is for benchmarks; give it on the command line", envName("insecure-no-auth-as"))
	}
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if v := getenv(envName(f.Name)); v != "" && envErr == nil {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("%s=%q: %v", envName(f.Name), v, err)
			}
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	if extra != nil {
		extra(fs)
	} else if noAuth := insecureNoAuthFlags(c); noAuth != nil {
		noAuth(fs)
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (flags start with -; see -help)", fs.Arg(0))
	}
	fs.Visit(func(f *flag.Flag) { c.set[f.Name] = true })
	fs.VisitAll(func(f *flag.Flag) {
		if getenv(envName(f.Name)) != "" {
			c.set[f.Name] = true
		}
	})
	return c, c.validate()
}

// newFlagSet defines every flag of c on a new flag set.
func newFlagSet(c *config, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("davserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "address to listen on (port 0 picks a free port)")
	fs.StringVar(&c.metricsAddr, "metrics-addr", "", "address for /metrics, /healthz and /readyz, apart from -addr (empty: not served; keep it on loopback or a private network)")
	fs.StringVar(&c.data, "data", "data", "folder for the database, the pepper, the users file and the DAV data")
	fs.StringVar(&c.users, "users", "", "htpasswd users file (default DATA/users.htpasswd, created with a demo user on first run)")
	fs.StringVar(&c.pepperFile, "pepper-file", "", "file with the secret HMAC key(s) for app passwords (default DATA/pepper, generated on first run)")
	fs.StringVar(&c.postgres, "postgres", "", "PostgreSQL DSN for app passwords and sessions instead of SQLite in DATA (prefer the APPAUTH_POSTGRES variable: a password on the command line is visible to other local users)")
	fs.StringVar(&c.ldapURL, "ldap-url", "", "LDAP server URL(s), comma-separated, tried in order (ldap:// or ldaps://); users come from LDAP instead of the users file")
	fs.StringVar(&c.ldapBindDN, "ldap-bind-dn", "", "DN of the LDAP service account that searches for users (empty: anonymous search)")
	fs.StringVar(&c.ldapBindPassFile, "ldap-bind-password-file", "", "file holding the service account's password")
	fs.StringVar(&c.ldapBaseDN, "ldap-base-dn", "", "LDAP base DN of the user search")
	fs.StringVar(&c.ldapFilter, "ldap-filter", "", "LDAP user filter with {login} (default: the LDAP backend's OpenLDAP filter)")
	fs.BoolVar(&c.ldapStartTLS, "ldap-starttls", false, "upgrade ldap:// connections with StartTLS (a failure stops the login)")
	fs.StringVar(&c.ldapCAFile, "ldap-ca-file", "", "PEM file of the CA(s) that sign the LDAP server's certificate (default: the system's)")
	fs.BoolVar(&c.ldapInsecureVerify, "ldap-insecure-skip-verify", false, "do not verify the LDAP server's certificate (testing only)")
	fs.BoolVar(&c.allowAccountPassword, "allow-account-password", false, "let DAV clients use the account password too (for migrations; off: app passwords only)")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "PEM certificate chain: serve HTTPS (with -tls-key)")
	fs.StringVar(&c.tlsKey, "tls-key", "", "PEM private key for -tls-cert")
	fs.StringVar(&c.trustedProxies, "trusted-proxies", "", "comma-separated addresses or CIDR prefixes of reverse proxies whose -forwarded-header is believed")
	fs.StringVar(&c.forwardedHeader, "forwarded-header", "X-Forwarded-For", "the header in which -trusted-proxies name the client: X-Forwarded-For or Forwarded (only that one is read)")
	fs.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.IntVar(&c.cacheSize, "cache-size", 0, "credentials kept verified in memory, about 0.5 KB each (default: the number in the store plus a quarter, at least 10000 and at most 250000)")
	fs.IntVar(&c.expireUnusedDays, "expire-unused-days", 0, "app passwords unused for this many days stop working and are deleted, as Nextcloud does with 365 (0: never)")
	fs.StringVar(&c.title, "title", "appauth DAV server", "name shown on the web pages")
	c.maxFileSize = byteSize(defaultBodyLimits.File)
	fs.Var(&c.maxFileSize, "max-file-size", "largest WebDAV file upload, in bytes or with K, M or G (0: no limit)")
	fs.DurationVar(&c.readTimeout, "read-timeout", time.Minute, "disconnect a client that sends no part of its request body for this long")
	fs.DurationVar(&c.writeTimeout, "write-timeout", time.Minute, "disconnect a client that takes no part of the response for this long")
	c.notify.flags(fs)
	c.radius.flags(fs)
	c.oidc.flags(fs)
	fs.StringVar(&c.addUser, "add-user", "", "add NAME to the users file (or change its password), asking for the password, then exit")
	fs.StringVar(&c.removeUser, "remove-user", "", "remove NAME from the users file for good: revoke their app passwords and sessions, archive their data, then exit")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: davserver [flags]\n       davserver app-passwords|sessions|users|pepper COMMAND [flags]   (administration; davserver users -help)\n\nA WebDAV, CalDAV and CardDAV server with app passwords. Every flag can also be set\nwith an environment variable: -ldap-url is APPAUTH_LDAP_URL, and so on.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	return fs
}

// checkEnvNames refuses an APPAUTH_* variable in environ ("NAME=value"
// entries) that names no flag, such as APPAUTH_LDAP_URI: ignored, it would
// leave the server running with a setting the operator believes is on. The
// closest known name is suggested. APPAUTH_TEST_* belong to the tests.
func checkEnvNames(environ []string) error {
	known := []string{}
	newFlagSet(&config{}, io.Discard).VisitAll(func(f *flag.Flag) { known = append(known, envName(f.Name)) })
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "APPAUTH_") || strings.HasPrefix(name, "APPAUTH_TEST_") || slices.Contains(known, name) {
			continue
		}
		best, bestDist := "", -1
		for _, k := range known {
			if d := editDistance(name, k); bestDist < 0 || d < bestDist {
				best, bestDist = k, d
			}
		}
		return fmt.Errorf("unknown environment variable %s (did you mean %s? see -help)", name, best)
	}
	return nil
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func (c *config) validate() error {
	if c.data == "" {
		return errors.New("-data must not be empty")
	}
	if c.addUser != "" && c.removeUser != "" {
		return errors.New("-add-user and -remove-user exclude each other")
	}
	if c.users == "" {
		c.users = filepath.Join(c.data, "users.htpasswd")
	}
	if c.pepperFile == "" {
		c.pepperFile = filepath.Join(c.data, "pepper")
	}
	if c.cacheSize < 0 {
		return fmt.Errorf("-cache-size %d: want a positive number of credentials (or 0: sized from the store)", c.cacheSize)
	}
	if c.expireUnusedDays < 0 || c.expireUnusedDays > 100*365 {
		return fmt.Errorf("-expire-unused-days %d: want a number of days (0: never)", c.expireUnusedDays)
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return errors.New("-tls-cert and -tls-key go together: give both or neither")
	}
	switch c.logFormat {
	case "text", "json":
	default:
		return fmt.Errorf("-log-format %q: want text or json", c.logFormat)
	}
	switch c.logLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("-log-level %q: want debug, info, warn or error", c.logLevel)
	}
	if c.ldapURL != "" {
		if c.set["users"] {
			return errors.New("-users and -ldap-url exclude each other: users come from one directory")
		}
		if c.ldapBaseDN == "" {
			return errors.New("-ldap-url needs -ldap-base-dn")
		}
		if c.addUser != "" {
			return errors.New("-add-user adds to the htpasswd users file; with -ldap-url, add users in LDAP")
		}
		if c.removeUser != "" {
			return errors.New("-remove-user removes from the htpasswd users file; with -ldap-url, remove users in LDAP (their data stays with their ID)")
		}
	} else {
		for _, name := range []string{"ldap-bind-dn", "ldap-bind-password-file", "ldap-base-dn", "ldap-filter", "ldap-starttls", "ldap-ca-file", "ldap-insecure-skip-verify"} {
			if c.set[name] {
				return fmt.Errorf("-%s needs -ldap-url", name)
			}
		}
	}
	if err := c.notify.check(); err != nil {
		return err
	}
	if err := c.radius.check(); err != nil {
		return err
	}
	if err := c.oidc.check(c.set); err != nil {
		return err
	}
	if err := checkInsecureNoAuth(c); err != nil {
		return err
	}
	if (c.ldapBindDN == "") != (c.ldapBindPassFile == "") {
		return errors.New("-ldap-bind-dn and -ldap-bind-password-file go together")
	}
	for s := range strings.SplitSeq(c.trustedProxies, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return fmt.Errorf("-trusted-proxies: %q is neither an address nor a CIDR prefix", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		c.proxies = append(c.proxies, p.Masked())
	}
	switch http.CanonicalHeaderKey(c.forwardedHeader) {
	case "X-Forwarded-For", "Forwarded":
	default:
		return fmt.Errorf("-forwarded-header: %q: want X-Forwarded-For or Forwarded", c.forwardedHeader)
	}
	return nil
}

// readSecretFile reads a one-line secret (a password file), refusing a file
// that other users may read.
func readSecretFile(name, what string) (string, error) {
	if err := checkPrivate(name, what); err != nil {
		return "", err
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s %s is empty", what, name)
	}
	return s, nil
}

// checkPrivate refuses a secret file that anyone but its owner may read.
func checkPrivate(name, what string) error {
	st, err := os.Stat(name)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%s %s is readable by other users (mode %04o); run: chmod 600 %s", what, name, st.Mode().Perm(), name)
	}
	return nil
}

// Bounds of the credential cache's automatic size. The lower one is the
// library's default. The upper one keeps the automatic size to about
// 125 MB (about 500 B per cached credential, see BENCHMARKS.md); a larger
// cache is a choice to make with -cache-size.
const (
	minAutoCacheSize = 10_000
	maxAutoCacheSize = 250_000
)

// cacheSize returns the credential cache's size: flag when it is set (not
// 0), else the store's count of credentials plus a quarter for devices
// added while the server runs, within [minAutoCacheSize,
// maxAutoCacheSize]. A cache smaller than the active credentials turns a
// second pass over them into misses; each miss is a store query.
func cacheSize(flag, count int) int {
	if flag > 0 {
		return flag
	}
	return min(max(count+count/4, minAutoCacheSize), maxAutoCacheSize)
}
