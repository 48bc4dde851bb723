package davstore

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"

	"github.com/emersion/go-vcard"
	gowebdav "github.com/emersion/go-webdav"
	"github.com/emersion/go-webdav/carddav"
)

var _ carddav.Backend = (*Store)(nil)

const addressBookMeta = ".addressbook.json"

// addressBookProps is what .addressbook.json holds.
type addressBookProps struct {
	Name        string `json:"name,omitempty"`
	Description string `json:"description,omitempty"`
}

// AddressBookHomeSetPath implements carddav.Backend.
func (s *Store) AddressBookHomeSetPath(ctx context.Context) (string, error) {
	u, err := s.currentUser(ctx)
	if err != nil {
		return "", err
	}
	return s.AddressBookHomePath(u.Login), nil
}

// contactsPath parses an address-book or address-object path of the current user.
func (s *Store) contactsPath(ctx context.Context, urlPath string) (davPath, string, string, error) {
	u, err := s.currentUser(ctx)
	if err != nil {
		return davPath{}, "", "", err
	}
	p, err := s.parse(urlPath, "contacts", u)
	if err != nil {
		return p, "", "", err
	}
	if p.coll == "" {
		return p, "", "", webdavError(http.StatusNotFound, "davstore: not an address book")
	}
	dir, file, err := s.dirs(p, "contacts")
	return p, dir, file, err
}

// CreateAddressBook implements carddav.Backend.
func (s *Store) CreateAddressBook(ctx context.Context, ab *carddav.AddressBook) error {
	p, dir, _, err := s.contactsPath(ctx, ab.Path)
	if err != nil {
		return err
	}
	if p.obj != "" {
		return webdavError(http.StatusForbidden, "davstore: address books cannot be nested")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return fsError(err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fsError(err)
	}
	if err := writeJSON(filepath.Join(dir, changesFile), newChangeLog()); err != nil {
		os.RemoveAll(dir)
		return fsError(err)
	}
	if err := writeJSON(filepath.Join(dir, addressBookMeta), addressBookProps{Name: ab.Name, Description: ab.Description}); err != nil {
		os.RemoveAll(dir)
		return fsError(err)
	}
	return nil
}

// ListAddressBooks implements carddav.Backend.
func (s *Store) ListAddressBooks(ctx context.Context) ([]carddav.AddressBook, error) {
	u, err := s.currentUser(ctx)
	if err != nil {
		return nil, err
	}
	udir, err := s.userDir(u.ID)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(filepath.Join(udir, "contacts"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fsError(err)
	}
	var abs []carddav.AddressBook
	for _, e := range entries {
		name, ok := decodeName(e.Name())
		if !ok || !e.IsDir() {
			continue
		}
		ab, err := s.GetAddressBook(ctx, s.AddressBookHomePath(u.Login)+name+"/")
		if err != nil {
			continue
		}
		abs = append(abs, *ab)
	}
	return abs, nil
}

// GetAddressBook implements carddav.Backend.
func (s *Store) GetAddressBook(ctx context.Context, urlPath string) (*carddav.AddressBook, error) {
	p, dir, _, err := s.contactsPath(ctx, urlPath)
	if err != nil {
		return nil, err
	}
	if p.obj != "" {
		return nil, webdavError(http.StatusNotFound, "davstore: not an address book")
	}
	var props addressBookProps
	if err := readJSON(filepath.Join(dir, addressBookMeta), &props); err != nil {
		return nil, fsError(err)
	}
	return &carddav.AddressBook{
		Path:        s.AddressBookHomePath(p.user) + p.coll + "/",
		Name:        props.Name,
		Description: props.Description,
		SupportedAddressData: []carddav.AddressDataType{
			{ContentType: vcard.MIMEType, Version: "3.0"},
			{ContentType: vcard.MIMEType, Version: "4.0"},
		},
	}, nil
}

// DeleteAddressBook implements carddav.Backend.
func (s *Store) DeleteAddressBook(ctx context.Context, urlPath string) error {
	p, dir, _, err := s.contactsPath(ctx, urlPath)
	if err != nil {
		return err
	}
	if p.obj != "" {
		return webdavError(http.StatusNotFound, "davstore: not an address book")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return removeCollection(dir, addressBookMeta)
}

// readAddressObject reads one stored object.
func (s *Store) readAddressObject(user, coll, obj, file string) (*carddav.AddressObject, error) {
	b, mod, err := readStored(file)
	if err != nil {
		return nil, err
	}
	card, err := vcard.NewDecoder(bytes.NewReader(b)).Decode()
	if err != nil {
		return nil, webdavError(http.StatusInternalServerError, "davstore: stored vCard is corrupt")
	}
	return &carddav.AddressObject{
		Path:          s.AddressBookHomePath(user) + coll + "/" + obj,
		ModTime:       mod,
		ContentLength: int64(len(b)),
		ETag:          etagOf(b),
		Card:          card,
	}, nil
}

// GetAddressObject implements carddav.Backend.
func (s *Store) GetAddressObject(ctx context.Context, urlPath string, _ *carddav.AddressDataRequest) (*carddav.AddressObject, error) {
	p, _, file, err := s.contactsPath(ctx, urlPath)
	if err != nil {
		return nil, err
	}
	if p.obj == "" {
		return nil, webdavError(http.StatusNotFound, "davstore: not an address object")
	}
	return s.readAddressObject(p.user, p.coll, p.obj, file)
}

// ListAddressObjects implements carddav.Backend.
func (s *Store) ListAddressObjects(ctx context.Context, urlPath string, _ *carddav.AddressDataRequest) ([]carddav.AddressObject, error) {
	p, dir, _, err := s.contactsPath(ctx, urlPath)
	if err != nil {
		return nil, err
	}
	if p.obj != "" {
		return nil, webdavError(http.StatusNotFound, "davstore: not an address book")
	}
	return listStored(dir, addressBookMeta, func(name, file string) (*carddav.AddressObject, error) {
		return s.readAddressObject(p.user, p.coll, name, file)
	})
}

// QueryAddressObjects implements carddav.Backend.
func (s *Store) QueryAddressObjects(ctx context.Context, urlPath string, query *carddav.AddressBookQuery) ([]carddav.AddressObject, error) {
	objs, err := s.ListAddressObjects(ctx, urlPath, nil)
	if err != nil {
		return nil, err
	}
	return carddav.Filter(query, objs)
}

// PutAddressObject implements carddav.Backend.
func (s *Store) PutAddressObject(ctx context.Context, urlPath string, card vcard.Card, opts *carddav.PutAddressObjectOptions) (*carddav.AddressObject, error) {
	p, dir, file, err := s.contactsPath(ctx, urlPath)
	if err != nil {
		return nil, err
	}
	if p.obj == "" {
		return nil, webdavError(http.StatusMethodNotAllowed, "davstore: PUT needs an object name")
	}
	var buf bytes.Buffer
	if err := vcard.NewEncoder(&buf).Encode(card); err != nil {
		return nil, carddav.NewPreconditionError(carddav.PreconditionValidAddressData)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := os.Stat(filepath.Join(dir, addressBookMeta)); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, webdavError(http.StatusConflict, "davstore: no such address book")
		}
		return nil, fsError(err)
	}
	var ifNoneMatch, ifMatch gowebdav.ConditionalMatch
	if opts != nil {
		ifNoneMatch, ifMatch = opts.IfNoneMatch, opts.IfMatch
	}
	if err := storeObject(dir, p.obj, file, buf.Bytes(), ifNoneMatch, ifMatch); err != nil {
		return nil, err
	}
	return s.readAddressObject(p.user, p.coll, p.obj, file)
}

// DeleteAddressObject implements carddav.Backend.
func (s *Store) DeleteAddressObject(ctx context.Context, urlPath string) error {
	p, dir, file, err := s.contactsPath(ctx, urlPath)
	if err != nil {
		return err
	}
	if p.obj == "" {
		return webdavError(http.StatusNotFound, "davstore: not an address object")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := checkDeleteConditions(ctx, file); err != nil {
		return err
	}
	return removeObject(dir, p.obj, file)
}
