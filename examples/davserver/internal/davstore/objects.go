package davstore

import (
	"os"
	"path/filepath"
	"time"

	gowebdav "github.com/emersion/go-webdav"
)

// Calendars and address books are stored alike: a folder holding a meta
// file and one file per object. These helpers are what the two share.

// readStored returns a stored object's bytes and modification time.
func readStored(file string) ([]byte, time.Time, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, time.Time{}, fsError(err)
	}
	st, err := os.Stat(file)
	if err != nil {
		return nil, time.Time{}, fsError(err)
	}
	return b, st.ModTime(), nil
}

// listStored reads every object of the collection in dir, which must hold
// meta, with read(name, file); objects deleted meanwhile are left out.
func listStored[T any](dir, meta string, read func(name, file string) (*T, error)) ([]T, error) {
	if _, err := os.Stat(filepath.Join(dir, meta)); err != nil {
		return nil, fsError(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fsError(err)
	}
	var objs []T
	for _, e := range entries {
		name, ok := decodeName(e.Name())
		if !ok || e.IsDir() {
			continue
		}
		if o, err := read(name, filepath.Join(dir, e.Name())); err == nil {
			objs = append(objs, *o)
		}
	}
	return objs, nil
}

// removeCollection deletes the collection in dir, which must hold meta.
// The caller holds s.mu.
func removeCollection(dir, meta string) error {
	if _, err := os.Stat(filepath.Join(dir, meta)); err != nil {
		return fsError(err)
	}
	return fsError(os.RemoveAll(dir))
}

// storeObject writes b to file, the object name of the collection in dir,
// if the request's conditions hold, and records the change. The caller
// holds s.mu.
func storeObject(dir, name, file string, b []byte, ifNoneMatch, ifMatch gowebdav.ConditionalMatch) error {
	if err := checkConditions(file, ifNoneMatch, ifMatch); err != nil {
		return err
	}
	if err := recordChange(dir, name, false); err != nil {
		return err
	}
	return fsError(writeFileAtomic(file, b))
}

// removeObject deletes file, the object name of the collection in dir, and
// records the deletion. The caller holds s.mu.
func removeObject(dir, name, file string) error {
	if _, err := os.Stat(file); err != nil {
		return fsError(err)
	}
	if err := recordChange(dir, name, true); err != nil {
		return err
	}
	return fsError(os.Remove(file))
}
