package htpasswd

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/internal/atomicfile"
)

// SetPassword sets login's password in the htpasswd file at path, adding
// the user if the file has no entry for login (matched case-insensitively,
// keeping the file's spelling), and creating the file if it does not exist.
// The password is hashed with bcrypt at cost (bcrypt.DefaultCost if 0); a
// disabled entry ("!") stays disabled. Other lines are kept as they are.
//
// The file is replaced atomically (a temporary file in the same directory,
// synced, then renamed over it) with mode 0600, so a running [Directory]
// never reads half of it. Concurrent calls for the same file are not
// serialized: the last rename wins.
func SetPassword(path, login, password string, cost int) error {
	if err := checkLogin(login); err != nil {
		return fmt.Errorf("htpasswd: set password: %w", err)
	}
	if password == "" {
		return errors.New("htpasswd: set password: empty password")
	}
	if len(password) > 72 {
		return errors.New("htpasswd: set password: bcrypt takes at most 72 bytes of password")
	}
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return fmt.Errorf("htpasswd: set password: %w", err)
	}
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("htpasswd: set password: %w", err)
	}

	var out bytes.Buffer
	found := false
	lines := strings.SplitAfter(string(old), "\n")
	for _, line := range lines {
		if line == "" {
			continue
		}
		body := strings.TrimRight(line, "\r\n")
		name, h, ok := strings.Cut(body, ":")
		if ok && !strings.HasPrefix(body, "#") && fold(name) == fold(login) {
			if found {
				continue // a duplicate, which Open refuses: drop it
			}
			found = true
			prefix := ""
			if strings.HasPrefix(h, "!") {
				prefix = "!"
			}
			out.WriteString(name + ":" + prefix + string(hash) + "\n")
			continue
		}
		out.WriteString(line)
		if !strings.HasSuffix(line, "\n") {
			out.WriteString("\n")
		}
	}
	if !found {
		out.WriteString(login + ":" + string(hash) + "\n")
	}
	if _, err := parse(out.Bytes()); err != nil {
		return fmt.Errorf("htpasswd: set password: %s would not be valid: %w", path, err)
	}
	if err := atomicfile.Write(path, out.Bytes()); err != nil {
		return fmt.Errorf("htpasswd: set password: %w", err)
	}
	return nil
}

// RemoveUser removes login's entry (matched case-insensitively) from the
// htpasswd file at path, keeping every other line, and replaces the file
// atomically like [SetPassword]. A login the file does not hold is
// [auth.ErrNotFound].
func RemoveUser(path, login string) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("htpasswd: remove user: %w", err)
	}
	var out bytes.Buffer
	found := false
	for _, line := range strings.SplitAfter(string(old), "\n") {
		body := strings.TrimRight(line, "\r\n")
		if name, _, ok := strings.Cut(body, ":"); ok && !strings.HasPrefix(body, "#") && fold(name) == fold(login) {
			found = true
			continue
		}
		out.WriteString(line)
	}
	if !found {
		return fmt.Errorf("htpasswd: remove user %q: %w", login, auth.ErrNotFound)
	}
	if err := atomicfile.Write(path, out.Bytes()); err != nil {
		return fmt.Errorf("htpasswd: remove user: %w", err)
	}
	return nil
}
