package davstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ErrNoSuchUser is what a lookup given to [Store.MigrateLogins] returns (or
// wraps) for a login the directory does not know.
var ErrNoSuchUser = errors.New("davstore: no such user")

// MigrateLogins renames the data folders of older versions, which were named
// after the login, to the folder of the stable ID that lookup returns for
// that login now. A login lookup does not know (ErrNoSuchUser) or cannot
// answer (any other error) keeps its folder, which nobody reads any more;
// an ID whose folder exists already is left alone too. Every decision is
// logged. Call it before serving: it does not take the Store's locks.
func (s *Store) MigrateLogins(ctx context.Context, lookup func(ctx context.Context, login string) (id string, err error), logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	entries, err := os.ReadDir(s.root)
	if err != nil {
		return fmt.Errorf("davstore: migrate: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() || strings.Contains(e.Name(), "=") {
			continue // an ID folder, or not a folder
		}
		login, ok := decodeName(e.Name())
		if !ok {
			continue // archives and other dot folders
		}
		id, err := lookup(ctx, login)
		switch {
		case errors.Is(err, ErrNoSuchUser):
			logger.Warn("data folder of an unknown login left as is", "login", login, "folder", e.Name())
			continue
		case err != nil:
			logger.Warn("data folder not migrated: directory lookup failed; retried at the next start", "login", login, "error", err)
			continue
		case id == "":
			logger.Warn("data folder not migrated: the directory gave no ID", "login", login)
			continue
		}
		to := folderOf(id)
		if _, err := os.Lstat(filepath.Join(s.root, to)); err == nil {
			logger.Warn("data folder not migrated: the user's ID folder exists already", "login", login, "folder", e.Name(), "id_folder", to)
			continue
		}
		if err := os.Rename(filepath.Join(s.root, e.Name()), filepath.Join(s.root, to)); err != nil {
			return fmt.Errorf("davstore: migrate %q: %w", login, err)
		}
		logger.Info("data folder migrated from login to user ID", "login", login, "user_id", id, "folder", to)
	}
	return nil
}

// ArchiveUser renames the data folder of the user with this ID aside, to
// ".archive/FOLDER-TIMESTAMP" under the root, so that a new user with the
// same ID (an htpasswd login added again) starts empty. It returns the
// archive's path, or "" when the user had no data. Call it while the server
// is stopped, or for a user who can no longer sign in.
func (s *Store) ArchiveUser(id string, now time.Time) (string, error) {
	from, err := s.userDir(id)
	if err != nil {
		return "", err
	}
	if _, err := os.Lstat(from); errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	archive := filepath.Join(s.root, ".archive")
	if err := os.MkdirAll(archive, 0o700); err != nil {
		return "", fmt.Errorf("davstore: archive: %w", err)
	}
	to := filepath.Join(archive, folderOf(id)+"-"+now.UTC().Format("20060102T150405.000000000Z"))
	if err := os.Rename(from, to); err != nil {
		return "", fmt.Errorf("davstore: archive: %w", err)
	}
	s.filesMu.Lock()
	for k := range s.files {
		if k.id == id {
			delete(s.files, k)
		}
	}
	s.filesMu.Unlock()
	return to, nil
}
