package main

// The administration commands: davserver app-passwords|sessions|users|pepper
// VERB [flags], against the same store, users file and pepper file as the
// server (the same flags and APPAUTH_* variables). Revocations go through an
// auth.Manager, so they are audited (on standard error) like the settings
// page's. Nothing here prints a secret, a hash or a pepper key.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/backends/htpasswd"
	"github.com/appauth/appauth/backends/sqlstore"
	"github.com/appauth/appauth/internal/safetext"
)

// adminEnv is what an admin command runs with; tests give a fixed clock.
type adminEnv struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	now            func() time.Time
}

// usageError is a wrong command line: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// adminVerbs are the admin commands' nouns and their verbs.
var adminVerbs = map[string][]string{
	"app-passwords": {"list", "revoke", "purge"},
	"sessions":      {"list", "revoke", "purge"},
	"users":         {"list"},
	"pepper":        {"list", "rotate", "retire"},
}

// isAdminCommand reports whether arg names an admin command rather than
// being the server's first flag.
func isAdminCommand(arg string) bool {
	_, ok := adminVerbs[arg]
	return ok
}

const adminUsage = `Usage:
  davserver app-passwords list [-user NAME] [-unused-for 90d] [-json]
  davserver app-passwords revoke -user NAME (-id ID | -all) [-json]
  davserver app-passwords purge -unused-for 365d [-dry-run] [-json]
  davserver sessions list|revoke|purge   (the same flags)
  davserver users list [-json]
  davserver pepper list [-json]
  davserver pepper rotate [-json]
  davserver pepper retire ID [-force] [-json]

The server's flags and APPAUTH_* variables (-data, -postgres, -users,
-pepper-file, ...) say which store and files to use. Durations are Go
durations (36h) or days (90d). A credential is unused for D when its last
use, or its creation if it was never used, is at least D ago.
`

// adminFlags are the admin commands' own flags.
type adminFlags struct {
	user      string
	id        string
	all       bool
	unusedFor duration
	dryRun    bool
	force     bool
	json      bool
}

// duration is a flag value: a Go duration or a number of days ("90d").
type duration time.Duration

func (d *duration) String() string { return time.Duration(*d).String() }

func (d *duration) Set(s string) error {
	v, err := parseDays(s)
	if err != nil {
		return err
	}
	*d = duration(v)
	return nil
}

// parseDays parses a positive Go duration or a whole number of days.
func parseDays(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days <= 0 || days > 100*365 {
			return 0, fmt.Errorf("%q: want a number of days from 1 to 36500 (90d) or a Go duration (36h)", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("%q: want a positive duration: days (90d) or a Go duration (36h)", s)
	}
	return v, nil
}

// runAdmin runs an admin command (args[0] is its noun) and returns the exit
// code: 0 done, 1 failed, 2 wrong command line.
func runAdmin(ctx context.Context, args []string, env *adminEnv) int {
	err := admin(ctx, args, env)
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(env.stderr, "davserver: %v\n(see davserver %s -help)\n", err, args[0])
		return 2
	default:
		fmt.Fprintf(env.stderr, "davserver: %v\n", oneLine(err))
		return 1
	}
}

func admin(ctx context.Context, args []string, env *adminEnv) error {
	noun := args[0]
	if len(args) < 2 || strings.HasPrefix(args[1], "-") {
		if len(args) >= 2 && (args[1] == "-help" || args[1] == "-h" || args[1] == "--help") {
			fmt.Fprint(env.stdout, adminUsage)
			return nil
		}
		return usagef("%s: missing command: %s", noun, strings.Join(adminVerbs[noun], ", "))
	}
	verb := args[1]
	if !slices.Contains(adminVerbs[noun], verb) {
		return usagef("%s: unknown command %q: want %s", noun, verb, strings.Join(adminVerbs[noun], ", "))
	}
	rest := args[2:]
	var positional string
	if noun == "pepper" && verb == "retire" {
		if len(rest) == 0 || strings.HasPrefix(rest[0], "-") {
			return usagef("pepper retire: missing the key ID to retire")
		}
		positional, rest = rest[0], rest[1:]
	}
	var f adminFlags
	cfg, err := parseConfigWith(rest, env.getenv, env.stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&f.json, "json", false, "print JSON for scripts instead of a table")
		switch {
		case noun == "pepper" && verb == "retire":
			fs.BoolVar(&f.force, "force", false, "revoke the credentials that still use the key, then retire it")
		case noun == "app-passwords" || noun == "sessions":
			fs.StringVar(&f.user, "user", "", "the owner: a login or user ID")
			switch verb {
			case "list", "purge":
				fs.Var(&f.unusedFor, "unused-for", "only credentials unused for at least this long (90d, 36h)")
			case "revoke":
				fs.StringVar(&f.id, "id", "", "revoke the credential with this ID")
				fs.BoolVar(&f.all, "all", false, "revoke all of the user's")
			}
			if verb == "purge" {
				fs.BoolVar(&f.dryRun, "dry-run", false, "show what would be revoked, revoke nothing")
			}
		}
		fs.Usage = func() {
			fmt.Fprint(fs.Output(), adminUsage+"\nFlags:\n")
			fs.PrintDefaults()
		}
	})
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	if err != nil {
		return &usageError{err.Error()}
	}
	if cfg.addUser != "" || cfg.removeUser != "" {
		return usagef("-add-user and -remove-user are not admin commands' flags")
	}
	a := &adminRun{cfg: cfg, f: f, env: env}
	defer a.close()
	switch noun {
	case "app-passwords", "sessions":
		kind := auth.KindAppPassword
		if noun == "sessions" {
			kind = auth.KindSession
		}
		switch verb {
		case "list":
			return a.list(ctx, kind)
		case "revoke":
			return a.revoke(ctx, kind)
		case "purge":
			return a.purge(ctx, kind)
		}
	case "users":
		return a.users(ctx)
	case "pepper":
		switch verb {
		case "list":
			return a.pepperList(ctx, "")
		case "rotate":
			return a.pepperRotate(ctx)
		case "retire":
			return a.pepperRetire(ctx, positional)
		}
	}
	return usagef("%s %s: unknown command", noun, verb)
}

// adminRun is one admin command's open resources.
type adminRun struct {
	cfg     *config
	f       adminFlags
	env     *adminEnv
	store   *sqlstore.Store
	manager *auth.Manager
	closers []func() error
}

func (a *adminRun) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
}

func (a *adminRun) logger() *slog.Logger { return newLogger(a.cfg, a.env.stderr) }

// openStore opens the server's store. Unlike the server, it never creates
// a database: a wrong -data must not look like an empty store.
func (a *adminRun) openStore(ctx context.Context) (*sqlstore.Store, error) {
	if a.store != nil {
		return a.store, nil
	}
	if a.cfg.postgres == "" {
		db := filepath.Join(a.cfg.data, "appauth.db")
		if _, err := os.Stat(db); err != nil {
			return nil, fmt.Errorf("database: %w (is -data the server's data folder?)", err)
		}
	}
	s, err := openStore(ctx, a.cfg, a.logger())
	if err != nil {
		return nil, err
	}
	a.store = s
	a.closers = append(a.closers, s.Close)
	return s, nil
}

// openManager opens the store and a Manager on it with the pepper file's
// keys, for the commands that revoke: the Manager audits each revocation.
// It consults no directory: revoking needs none, and with LDAP it would
// make every admin command depend on the directory answering.
func (a *adminRun) openManager(ctx context.Context) (*auth.Manager, error) {
	if a.manager != nil {
		return a.manager, nil
	}
	peppers, err := a.loadPepperFile()
	if err != nil {
		return nil, err
	}
	return a.newManager(ctx, peppers)
}

func (a *adminRun) newManager(ctx context.Context, peppers []auth.Pepper) (*auth.Manager, error) {
	store, err := a.openStore(ctx)
	if err != nil {
		return nil, err
	}
	m, err := auth.NewManager(store, noDirectory{}, &auth.Options{
		Peppers: peppers,
		Logger:  a.logger().With("component", "auth"),
		Now:     a.env.now,
	})
	if err != nil {
		return nil, err
	}
	a.manager = m
	a.closers = append(a.closers, m.Close)
	return m, nil
}

// noDirectory is the admin commands' directory: revocations need none.
type noDirectory struct{}

func (noDirectory) LookupUser(context.Context, string) (*auth.User, error) {
	return nil, fmt.Errorf("admin: %w: the admin commands consult no directory", auth.ErrUnavailable)
}

// all returns every stored credential of kind.
func (a *adminRun) all(ctx context.Context, kind auth.Kind) ([]*auth.StoredCredential, error) {
	store, err := a.openStore(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	creds, err := store.AllCredentials(ctx, kind)
	if err != nil {
		return nil, fmt.Errorf("list %ss: %w", kind, err)
	}
	return creds, nil
}

// lastActive is when c was last used, or created if it never was.
func lastActive(c *auth.StoredCredential) time.Time {
	if c.LastUsedAt.After(c.CreatedAt) {
		return c.LastUsedAt
	}
	return c.CreatedAt
}

// selectCredentials keeps the credentials that -user and -unused-for ask
// for. A -user that names stored credentials of two user IDs (a login
// reused by a new LDAP account) is an error: say which ID.
func (a *adminRun) selectCredentials(creds []*auth.StoredCredential) ([]*auth.StoredCredential, error) {
	var out []*auth.StoredCredential
	owners := map[string]bool{}
	cutoff := a.env.now().Add(-time.Duration(a.f.unusedFor))
	for _, c := range creds {
		if a.f.user != "" && !ownedBy(c, a.f.user) {
			continue
		}
		if a.f.unusedFor > 0 && lastActive(c).After(cutoff) {
			continue
		}
		owners[c.UserID] = true
		out = append(out, c)
	}
	if a.f.user != "" && len(owners) > 1 {
		ids := slices.Sorted(func(yield func(string) bool) {
			for id := range owners {
				if !yield(id) {
					return
				}
			}
		})
		return nil, fmt.Errorf("-user %s names the credentials of %d users (IDs %s): give -user the user ID", a.f.user, len(ids), strings.Join(ids, ", "))
	}
	return out, nil
}

// ownedBy reports whether name is c's owner's user ID or login.
func ownedBy(c *auth.StoredCredential, name string) bool {
	if c.UserID == name {
		return true
	}
	want, err := auth.CanonicalLogin(name)
	if err != nil {
		return false
	}
	got, err := auth.CanonicalLogin(c.Login)
	return err == nil && got == want
}

// credentialJSON is what -json prints of a credential: named fields only,
// so that no hash can slip in.
type credentialJSON struct {
	ID              string     `json:"id"`
	Kind            auth.Kind  `json:"kind"`
	UserID          string     `json:"user_id"`
	Login           string     `json:"login"`
	Name            string     `json:"name,omitempty"`
	Scopes          []string   `json:"scopes,omitempty"`
	Hint            string     `json:"hint,omitempty"`
	KeyID           string     `json:"key_id"`
	CreatedAt       time.Time  `json:"created_at"`
	AuthenticatedAt *time.Time `json:"authenticated_at,omitempty"`
	LastUsedAt      *time.Time `json:"last_used_at"`
	LastUsedAddr    string     `json:"last_used_addr,omitempty"`
	LastUsedClient  string     `json:"last_used_client,omitempty"`
	ExpiresAt       *time.Time `json:"expires_at"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func toJSON(c *auth.StoredCredential) credentialJSON {
	return credentialJSON{
		ID: c.ID, Kind: c.Kind, UserID: c.UserID, Login: c.Login, Name: c.Name, Scopes: c.Scopes, Hint: c.Hint,
		KeyID: c.KeyID, CreatedAt: c.CreatedAt.UTC(), AuthenticatedAt: timePtr(c.AuthenticatedAt),
		LastUsedAt: timePtr(c.LastUsedAt), LastUsedAddr: c.LastUsedAddr, LastUsedClient: c.LastUsedClient,
		ExpiresAt: timePtr(c.ExpiresAt),
	}
}

func credentialsJSON(creds []*auth.StoredCredential) []credentialJSON {
	out := make([]credentialJSON, len(creds))
	for i, c := range creds {
		out[i] = toJSON(c)
	}
	return out
}

// printJSON writes v indented, for scripts (and people reading them).
func (a *adminRun) printJSON(v any) error {
	enc := json.NewEncoder(a.env.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// cell makes stored text safe for a terminal and a table: control
// characters (an escape sequence in a User-Agent, a tab) are quoted.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return safetext.Escape(s)
}

func timeCell(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04")
}

// printCredentials prints creds as a table.
func (a *adminRun) printCredentials(kind auth.Kind, creds []*auth.StoredCredential) {
	w := tabwriter.NewWriter(a.env.stdout, 0, 0, 2, ' ', 0)
	if kind == auth.KindAppPassword {
		fmt.Fprintln(w, "LOGIN\tUSER ID\tID\tNAME\tHINT\tSCOPES\tCREATED\tLAST USED\tFROM\tCLIENT\tEXPIRES")
		for _, c := range creds {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t…%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cell(c.Login), cell(c.UserID), cell(c.ID), cell(c.Name),
				cell(c.Hint), cell(strings.Join(c.Scopes, ",")), timeCell(c.CreatedAt), timeCell(c.LastUsedAt),
				cell(c.LastUsedAddr), cell(c.LastUsedClient), timeCell(c.ExpiresAt))
		}
	} else {
		fmt.Fprintln(w, "LOGIN\tUSER ID\tID\tSIGNED IN\tLAST USED\tFROM\tCLIENT\tEXPIRES")
		for _, c := range creds {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cell(c.Login), cell(c.UserID), cell(c.ID),
				timeCell(c.CreatedAt), timeCell(c.LastUsedAt), cell(c.LastUsedAddr), cell(c.LastUsedClient), timeCell(c.ExpiresAt))
		}
	}
	w.Flush()
}

// plural names kind for n of them.
func plural(kind auth.Kind, n int) string {
	s := "app password"
	if kind == auth.KindSession {
		s = "session"
	}
	if n != 1 {
		s += "s"
	}
	return s
}

func (a *adminRun) list(ctx context.Context, kind auth.Kind) error {
	creds, err := a.all(ctx, kind)
	if err != nil {
		return err
	}
	if creds, err = a.selectCredentials(creds); err != nil {
		return err
	}
	if a.f.json {
		return a.printJSON(credentialsJSON(creds))
	}
	a.printCredentials(kind, creds)
	return nil
}

// revokeResult is what -json prints after a revoke or a purge.
type revokeResult struct {
	Revoked     int              `json:"revoked"`
	DryRun      bool             `json:"dry_run,omitempty"`
	Credentials []credentialJSON `json:"credentials,omitempty"`
}

func (a *adminRun) revoke(ctx context.Context, kind auth.Kind) error {
	switch {
	case a.f.user == "":
		return usagef("revoke: -user is required")
	case (a.f.id == "") == !a.f.all:
		return usagef("revoke: give -id ID or -all (one of them)")
	}
	creds, err := a.all(ctx, kind)
	if err != nil {
		return err
	}
	if creds, err = a.selectCredentials(creds); err != nil {
		return err
	}
	m, err := a.openManager(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	n := 0
	if a.f.id != "" {
		i := slices.IndexFunc(creds, func(c *auth.StoredCredential) bool { return c.ID == a.f.id })
		if i < 0 {
			return fmt.Errorf("revoke: %s has no %s with ID %s", a.f.user, plural(kind, 1), a.f.id)
		}
		if err := a.revokeOne(ctx, m, creds[i]); err != nil {
			return err
		}
		n = 1
	} else if len(creds) > 0 {
		if n, err = a.revokeAllOf(ctx, m, kind, creds[0].UserID); err != nil {
			return err
		}
	}
	if a.f.json {
		return a.printJSON(revokeResult{Revoked: n})
	}
	fmt.Fprintf(a.env.stdout, "Revoked %d %s of %s.\n", n, plural(kind, n), safetext.Escape(a.f.user))
	return nil
}

func (a *adminRun) revokeOne(ctx context.Context, m *auth.Manager, c *auth.StoredCredential) error {
	var err error
	if c.Kind == auth.KindSession {
		err = m.RevokeSession(ctx, c.UserID, c.ID)
	} else {
		err = m.RevokeAppPassword(ctx, c.UserID, c.ID)
	}
	if err != nil {
		return fmt.Errorf("revoke %s %s: %w", plural(c.Kind, 1), c.ID, err)
	}
	return nil
}

func (a *adminRun) revokeAllOf(ctx context.Context, m *auth.Manager, kind auth.Kind, userID string) (int, error) {
	var n int
	var err error
	if kind == auth.KindSession {
		n, err = m.RevokeOtherSessions(ctx, userID, "")
	} else {
		n, err = m.RevokeAllAppPasswords(ctx, userID)
	}
	if err != nil {
		return n, fmt.Errorf("revoke %s: %w", plural(kind, 2), err)
	}
	return n, nil
}

// revokeEach revokes creds one by one through m. One already gone (revoked
// meanwhile, on the page) is skipped; another failure stops it, saying how
// many are revoked.
func (a *adminRun) revokeEach(ctx context.Context, m *auth.Manager, creds []*auth.StoredCredential) (int, error) {
	n := 0
	for _, c := range creds {
		err := a.revokeOne(ctx, m, c)
		if errors.Is(err, auth.ErrNotFound) {
			continue
		}
		if err != nil {
			return n, fmt.Errorf("%w (revoked %d of %d before)", err, n, len(creds))
		}
		n++
	}
	return n, nil
}

func (a *adminRun) purge(ctx context.Context, kind auth.Kind) error {
	if a.f.unusedFor <= 0 {
		return usagef("purge: -unused-for is required (365d: unused for a year)")
	}
	creds, err := a.all(ctx, kind)
	if err != nil {
		return err
	}
	if creds, err = a.selectCredentials(creds); err != nil {
		return err
	}
	n := 0
	if !a.f.dryRun && len(creds) > 0 {
		m, err := a.openManager(ctx)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, time.Minute+time.Duration(len(creds))*100*time.Millisecond)
		defer cancel()
		if n, err = a.revokeEach(ctx, m, creds); err != nil {
			return err
		}
	}
	if a.f.json {
		return a.printJSON(revokeResult{Revoked: n, DryRun: a.f.dryRun, Credentials: credentialsJSON(creds)})
	}
	a.printCredentials(kind, creds)
	if a.f.dryRun {
		fmt.Fprintf(a.env.stdout, "\nDry run: would revoke %d %s unused for %s.\n", len(creds), plural(kind, len(creds)), a.f.unusedFor.days())
	} else {
		fmt.Fprintf(a.env.stdout, "\nRevoked %d %s unused for %s.\n", n, plural(kind, n), a.f.unusedFor.days())
	}
	return nil
}

// days prints d in days when it is whole days.
func (d duration) days() string {
	if v := time.Duration(d); v%(24*time.Hour) == 0 {
		return strconv.Itoa(int(v/(24*time.Hour))) + "d"
	}
	return d.String()
}

// userJSON is a row of users list.
type userJSON struct {
	UserID       string     `json:"user_id"`
	Login        string     `json:"login"`
	AppPasswords int        `json:"app_passwords"`
	Sessions     int        `json:"sessions"`
	LastActivity *time.Time `json:"last_activity"`
	// Directory is the users file's word on the user: "active",
	// "disabled" or "missing"; empty with LDAP, which cannot list users.
	Directory string `json:"directory,omitempty"`
}

// users lists every user the store knows, with their number of devices
// (app passwords) and sessions and their last activity; with the users
// file, also its users without credentials, and whether each stored user
// is still in it.
func (a *adminRun) users(ctx context.Context) error {
	byID := map[string]*userJSON{}
	var order []string
	get := func(id, login string) *userJSON {
		u := byID[id]
		if u == nil {
			u = &userJSON{UserID: id, Login: login}
			byID[id] = u
			order = append(order, id)
		}
		return u
	}
	for _, kind := range []auth.Kind{auth.KindAppPassword, auth.KindSession} {
		creds, err := a.all(ctx, kind)
		if err != nil {
			return err
		}
		for _, c := range creds {
			u := get(c.UserID, c.Login)
			if kind == auth.KindAppPassword {
				u.AppPasswords++
			} else {
				u.Sessions++
			}
			if !c.LastUsedAt.IsZero() && (u.LastActivity == nil || c.LastUsedAt.After(*u.LastActivity)) {
				u.LastActivity = timePtr(c.LastUsedAt)
			}
		}
	}
	if a.cfg.ldapURL == "" {
		dir, err := htpasswd.Open(a.cfg.users, &htpasswd.Options{Logger: a.logger().With("component", "htpasswd")})
		if err != nil {
			return err
		}
		users, err := dir.Users(ctx)
		if err != nil {
			return err
		}
		for _, du := range users {
			u := get(du.ID, du.Login)
			u.Directory = "active"
			if du.Disabled {
				u.Directory = "disabled"
			}
		}
		for _, u := range byID {
			if u.Directory == "" {
				u.Directory = "missing"
			}
		}
	}
	slices.Sort(order)
	rows := make([]userJSON, len(order))
	for i, id := range order {
		rows[i] = *byID[id]
	}
	if a.f.json {
		return a.printJSON(rows)
	}
	w := tabwriter.NewWriter(a.env.stdout, 0, 0, 2, ' ', 0)
	header := "LOGIN\tUSER ID\tAPP PASSWORDS\tSESSIONS\tLAST ACTIVITY"
	if a.cfg.ldapURL == "" {
		header += "\tUSERS FILE"
	}
	fmt.Fprintln(w, header)
	for _, u := range rows {
		var last time.Time
		if u.LastActivity != nil {
			last = *u.LastActivity
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%s", cell(u.Login), cell(u.UserID), u.AppPasswords, u.Sessions, timeCell(last))
		if a.cfg.ldapURL == "" {
			fmt.Fprintf(w, "\t%s", u.Directory)
		}
		fmt.Fprintln(w)
	}
	return w.Flush()
}
