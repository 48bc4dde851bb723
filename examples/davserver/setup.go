package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/backends/htpasswd"
)

// demoUser is the user created with the users file on a first run.
const demoUser = "demo"

// loadPeppers reads the pepper file, one key per line as "ID:HEX" (the last
// line issues new app passwords, every line verifies: add a line to rotate).
// When the file does not exist it returns missing and no error: the caller
// makes one with [createPepperFile] once it knows the database holds no
// credential that a new key would lock out.
func loadPeppers(name string) (peppers []auth.Pepper, missing bool, err error) {
	if _, err := os.Stat(name); errors.Is(err, fs.ErrNotExist) {
		return nil, true, nil
	}
	if err := checkPrivate(name, "pepper file"); err != nil {
		return nil, false, err
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, false, fmt.Errorf("pepper file: %w", err)
	}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, hexKey, ok := strings.Cut(line, ":")
		key, herr := hex.DecodeString(hexKey)
		if !ok || herr != nil {
			return nil, false, fmt.Errorf("pepper file %s, line %d: want ID:HEX", name, i+1)
		}
		if len(key) < auth.MinPepperLen {
			return nil, false, fmt.Errorf("pepper file %s, line %d: key is %d bytes, need at least %d", name, i+1, len(key), auth.MinPepperLen)
		}
		peppers = append(peppers, auth.Pepper{ID: id, Key: key})
	}
	if len(peppers) == 0 {
		return nil, false, fmt.Errorf("pepper file %s holds no key", name)
	}
	return peppers, false, nil
}

// createPepperFile writes a new pepper file with one 32-byte key (mode
// 0600) and returns its key, unless the store already holds credentials: a
// new key would silently make every one of them useless, so then the
// missing file is an error that says to restore it.
func createPepperFile(ctx context.Context, name string, store auth.PepperRegistry) ([]auth.Pepper, error) {
	counts, err := store.CredentialsByKey(ctx)
	if err != nil {
		return nil, fmt.Errorf("pepper file %s is missing and the database cannot say whether it holds credentials: %w", name, err)
	}
	total, ids := 0, []string{}
	for id, n := range counts {
		total += n
		ids = append(ids, strconv.Quote(id))
	}
	if total > 0 {
		slices.Sort(ids)
		return nil, fmt.Errorf("pepper file %s is missing, but the database holds %d credentials made with key ID %s: "+
			"restore the pepper file from its backup (a new key would lock out every device)", name, total, strings.Join(ids, ", "))
	}
	key := make([]byte, auth.MinPepperLen)
	rand.Read(key) // never fails (crypto/rand)
	line := "1:" + hex.EncodeToString(key) + "\n"
	if err := writeNewFile(name, []byte("# appauth pepper: HMAC keys for app passwords, one \"ID:HEX\" per line.\n# Keep it secret and backed up; without it no app password works. The last line\n# issues new ones; add a line to rotate.\n"+line)); err != nil {
		return nil, fmt.Errorf("pepper file: %w", err)
	}
	return []auth.Pepper{{ID: "1", Key: key}}, nil
}

// writeNewFile creates name with mode 0600, failing if it exists.
func writeNewFile(name string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
	}
	return err
}

// ensureUsersFile creates the users file with the demo user when it is the
// default one and does not exist yet, and returns the demo password (empty
// when nothing was created). An explicit -users file must exist.
func ensureUsersFile(c *config) (demoPassword string, err error) {
	_, err = os.Stat(c.users)
	switch {
	case err == nil:
		return "", nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("users file: %w", err)
	case c.set["users"]:
		return "", fmt.Errorf("users file %s does not exist; create it with: davserver -users %s -add-user NAME", c.users, c.users)
	}
	demoPassword = newPassword()
	if err := htpasswd.SetPassword(c.users, demoUser, demoPassword, 0); err != nil {
		return "", fmt.Errorf("users file: %w", err)
	}
	return demoPassword, nil
}

// newPassword returns a random account password of about 100 bits that is
// easy to type: four groups of five letters and digits without look-alikes.
func newPassword() string {
	const alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
	b := make([]byte, 0, 23)
	for i := range 20 {
		if i > 0 && i%5 == 0 {
			b = append(b, '-')
		}
		b = append(b, alphabet[randIntn(len(alphabet))])
	}
	return string(b)
}

// randIntn returns a uniform random number in [0, n) from crypto/rand.
func randIntn(n int) int {
	var b [1]byte
	limit := 256 - 256%n
	for {
		rand.Read(b[:])
		if int(b[0]) < limit {
			return int(b[0]) % n
		}
	}
}

// addUser sets a user's password in the users file, asking for it on the
// terminal (without echo, twice) or reading one line from stdin.
func addUser(c *config, stdin *os.File, stdout io.Writer) error {
	login := c.addUser
	if strings.ContainsAny(login, ":\n\r") || strings.TrimSpace(login) != login {
		return fmt.Errorf("-add-user %q: a name cannot contain ':' or line breaks, or start or end with a space", login)
	}
	var password string
	if fd := int(stdin.Fd()); term.IsTerminal(fd) {
		fmt.Fprintf(stdout, "Password for %s: ", login)
		p1, err := term.ReadPassword(fd)
		fmt.Fprintln(stdout)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Again: ")
		p2, err := term.ReadPassword(fd)
		fmt.Fprintln(stdout)
		if err != nil {
			return err
		}
		if string(p1) != string(p2) {
			return errors.New("the passwords differ; nothing changed")
		}
		password = string(p1)
	} else {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !(errors.Is(err, io.EOF) && line != "") {
			return errors.New("-add-user: no password on standard input")
		}
		password = strings.TrimRight(line, "\r\n")
	}
	if len(password) < 8 {
		return errors.New("the password must have at least 8 characters; nothing changed")
	}
	if len(password) > htpasswd.MaxPasswordLen {
		return fmt.Errorf("the password must have at most %d bytes; nothing changed", htpasswd.MaxPasswordLen)
	}
	if err := os.MkdirAll(filepath.Dir(c.users), 0o700); err != nil {
		return err
	}
	if err := htpasswd.SetPassword(c.users, login, password, 0); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Saved the password of %s in %s.\n", login, c.users)
	return nil
}

// removeUser removes a user of the users file for good, so that a user
// added later under the same name (whose ID, with htpasswd, is the name)
// inherits nothing: it revokes their app passwords and sessions, archives
// their DAV data folder (after moving an older version's login-named folder
// there), and only then removes their line from the users file. Run it with
// the server stopped; a running server refuses the user at its next owner
// re-check, as the file is reloaded.
func removeUser(ctx context.Context, c *config, stdout, stderr io.Writer) error {
	login := c.removeUser
	logger := newLogger(c, stderr)
	dir, err := htpasswd.Open(c.users, nil)
	if err != nil {
		return err
	}
	u, err := dir.LookupUser(ctx, login)
	if errors.Is(err, auth.ErrNotFound) {
		return fmt.Errorf("-remove-user %q: no such user in %s; nothing changed", login, c.users)
	} else if err != nil {
		return err
	}
	peppers, missing, err := loadPeppers(c.pepperFile)
	if err != nil {
		return err
	}
	if missing {
		return fmt.Errorf("-remove-user: pepper file %s does not exist", c.pepperFile)
	}
	store, err := openStore(ctx, c, logger)
	if err != nil {
		return err
	}
	defer store.Close()
	m, err := auth.NewManager(store, dir, &auth.Options{Peppers: peppers, Logger: logger.With("component", "auth")})
	if err != nil {
		return err
	}
	defer m.Close()
	opCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	apps, err := m.RevokeAllAppPasswords(opCtx, u.ID)
	if err != nil {
		return fmt.Errorf("-remove-user: revoke app passwords: %w; the user is still in %s", err, c.users)
	}
	sessions, err := m.RevokeOtherSessions(opCtx, u.ID, "")
	if err != nil {
		return fmt.Errorf("-remove-user: revoke sessions: %w; the user is still in %s", err, c.users)
	}
	dav, err := openDAV(opCtx, c, dir, logger)
	if err != nil {
		return err
	}
	archived, err := dav.ArchiveUser(u.ID, time.Now())
	if err != nil {
		return fmt.Errorf("-remove-user: %w; the user is still in %s", err, c.users)
	}
	if err := htpasswd.RemoveUser(c.users, u.Login); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Removed %s from %s: revoked %d app passwords and %d sessions.\n", u.Login, c.users, apps, sessions)
	if archived != "" {
		fmt.Fprintf(stdout, "Their data is archived in %s.\n", archived)
	}
	return nil
}
