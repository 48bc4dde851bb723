package davstore

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"

	"github.com/emersion/go-ical"
	gowebdav "github.com/emersion/go-webdav"
	"github.com/emersion/go-webdav/caldav"
)

var _ caldav.Backend = (*Store)(nil)

const calendarMeta = ".calendar.json"

// defaultComponents is what a calendar made without a component list takes
// (RFC 4791 lets the server choose): events and to-dos, as clients such as
// Thunderbird and python3-caldav expect of a calendar they create.
var defaultComponents = []string{ical.CompEvent, ical.CompToDo}

// components is the component set of a calendar with these properties.
func (p calendarProps) components() []string {
	if len(p.Components) == 0 {
		return defaultComponents
	}
	return p.Components
}

// calendarProps is what .calendar.json holds.
type calendarProps struct {
	Name        string   `json:"name,omitempty"`
	Description string   `json:"description,omitempty"`
	Components  []string `json:"components,omitempty"`
}

// CalendarHomeSetPath implements caldav.Backend.
func (s *Store) CalendarHomeSetPath(ctx context.Context) (string, error) {
	u, err := s.currentUser(ctx)
	if err != nil {
		return "", err
	}
	return s.CalendarHomePath(u.Login), nil
}

// calendarPath parses a calendar or calendar-object path of the current user.
func (s *Store) calendarPath(ctx context.Context, urlPath string) (davPath, string, string, error) {
	u, err := s.currentUser(ctx)
	if err != nil {
		return davPath{}, "", "", err
	}
	p, err := s.parse(urlPath, "calendars", u)
	if err != nil {
		return p, "", "", err
	}
	if p.coll == "" {
		return p, "", "", webdavError(http.StatusNotFound, "davstore: not a calendar")
	}
	dir, file, err := s.dirs(p, "calendars")
	return p, dir, file, err
}

// CreateCalendar implements caldav.Backend. A calendar that exists already
// is 405 Method Not Allowed (RFC 4791, 5.3.1).
func (s *Store) CreateCalendar(ctx context.Context, cal *caldav.Calendar) error {
	p, dir, _, err := s.calendarPath(ctx, cal.Path)
	if err != nil {
		return err
	}
	if p.obj != "" {
		return webdavError(http.StatusForbidden, "davstore: calendars cannot be nested")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return fsError(err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fsError(err)
	}
	props := calendarProps{Name: cal.Name, Description: cal.Description, Components: cal.SupportedComponentSet}
	if err := writeJSON(filepath.Join(dir, changesFile), newChangeLog()); err != nil {
		os.RemoveAll(dir)
		return fsError(err)
	}
	if err := writeJSON(filepath.Join(dir, calendarMeta), props); err != nil {
		os.RemoveAll(dir)
		return fsError(err)
	}
	return nil
}

// ListCalendars implements caldav.Backend.
func (s *Store) ListCalendars(ctx context.Context) ([]caldav.Calendar, error) {
	u, err := s.currentUser(ctx)
	if err != nil {
		return nil, err
	}
	udir, err := s.userDir(u.ID)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(filepath.Join(udir, "calendars"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fsError(err)
	}
	var cals []caldav.Calendar
	for _, e := range entries {
		name, ok := decodeName(e.Name())
		if !ok || !e.IsDir() {
			continue
		}
		cal, err := s.GetCalendar(ctx, s.CalendarHomePath(u.Login)+name+"/")
		if err != nil {
			continue // half-created or removed meanwhile
		}
		cals = append(cals, *cal)
	}
	return cals, nil
}

// GetCalendar implements caldav.Backend.
func (s *Store) GetCalendar(ctx context.Context, urlPath string) (*caldav.Calendar, error) {
	p, dir, _, err := s.calendarPath(ctx, urlPath)
	if err != nil {
		return nil, err
	}
	if p.obj != "" {
		return nil, webdavError(http.StatusNotFound, "davstore: not a calendar")
	}
	var props calendarProps
	if err := readJSON(filepath.Join(dir, calendarMeta), &props); err != nil {
		return nil, fsError(err)
	}
	return &caldav.Calendar{
		Path:                  s.CalendarHomePath(p.user) + p.coll + "/",
		Name:                  props.Name,
		Description:           props.Description,
		SupportedComponentSet: props.components(),
	}, nil
}

// readCalendarObject reads one stored object.
func (s *Store) readCalendarObject(user, coll, obj, file string) (*caldav.CalendarObject, error) {
	b, mod, err := readStored(file)
	if err != nil {
		return nil, err
	}
	data, err := ical.NewDecoder(bytes.NewReader(b)).Decode()
	if err != nil {
		return nil, webdavError(http.StatusInternalServerError, "davstore: stored calendar object is corrupt")
	}
	return &caldav.CalendarObject{
		Path:          s.CalendarHomePath(user) + coll + "/" + obj,
		ModTime:       mod,
		ContentLength: int64(len(b)),
		ETag:          etagOf(b),
		Data:          data,
	}, nil
}

// GetCalendarObject implements caldav.Backend.
func (s *Store) GetCalendarObject(ctx context.Context, urlPath string, _ *caldav.CalendarCompRequest) (*caldav.CalendarObject, error) {
	p, _, file, err := s.calendarPath(ctx, urlPath)
	if err != nil {
		return nil, err
	}
	if p.obj == "" {
		return nil, webdavError(http.StatusNotFound, "davstore: not a calendar object")
	}
	return s.readCalendarObject(p.user, p.coll, p.obj, file)
}

// ListCalendarObjects implements caldav.Backend.
func (s *Store) ListCalendarObjects(ctx context.Context, urlPath string, _ *caldav.CalendarCompRequest) ([]caldav.CalendarObject, error) {
	p, dir, _, err := s.calendarPath(ctx, urlPath)
	if err != nil {
		return nil, err
	}
	if p.obj != "" {
		return nil, webdavError(http.StatusNotFound, "davstore: not a calendar")
	}
	return listStored(dir, calendarMeta, func(name, file string) (*caldav.CalendarObject, error) {
		return s.readCalendarObject(p.user, p.coll, name, file)
	})
}

// QueryCalendarObjects implements caldav.Backend.
func (s *Store) QueryCalendarObjects(ctx context.Context, urlPath string, query *caldav.CalendarQuery) ([]caldav.CalendarObject, error) {
	objs, err := s.ListCalendarObjects(ctx, urlPath, nil)
	if err != nil {
		return nil, err
	}
	return filter(query, objs)
}

// PutCalendarObject implements caldav.Backend.
func (s *Store) PutCalendarObject(ctx context.Context, urlPath string, cal *ical.Calendar, opts *caldav.PutCalendarObjectOptions) (*caldav.CalendarObject, error) {
	p, dir, file, err := s.calendarPath(ctx, urlPath)
	if err != nil {
		return nil, err
	}
	if p.obj == "" {
		return nil, webdavError(http.StatusMethodNotAllowed, "davstore: PUT needs an object name")
	}
	compType, uid, err := caldav.ValidateCalendarObject(cal)
	if err != nil {
		return nil, caldav.NewPreconditionError(caldav.PreconditionValidCalendarObjectResource)
	}
	var buf bytes.Buffer
	if err := ical.NewEncoder(&buf).Encode(cal); err != nil {
		return nil, caldav.NewPreconditionError(caldav.PreconditionValidCalendarData)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	var props calendarProps
	if err := readJSON(filepath.Join(dir, calendarMeta), &props); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, webdavError(http.StatusConflict, "davstore: no such calendar")
		}
		return nil, fsError(err)
	}
	if !slices.Contains(props.components(), compType) {
		return nil, caldav.NewPreconditionError(caldav.PreconditionSupportedCalendarComponent)
	}
	if err := checkUIDConflict(dir, file, uid); err != nil {
		return nil, err
	}
	var ifNoneMatch, ifMatch gowebdav.ConditionalMatch
	if opts != nil {
		ifNoneMatch, ifMatch = opts.IfNoneMatch, opts.IfMatch
	}
	if err := storeObject(dir, p.obj, file, buf.Bytes(), ifNoneMatch, ifMatch); err != nil {
		return nil, err
	}
	return s.readCalendarObject(p.user, p.coll, p.obj, file)
}

// DeleteCalendarObject implements caldav.Backend. go-webdav also sends the
// DELETE of a whole calendar here.
func (s *Store) DeleteCalendarObject(ctx context.Context, urlPath string) error {
	p, dir, file, err := s.calendarPath(ctx, urlPath)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := checkDeleteConditions(ctx, file); err != nil {
		return err
	}
	if p.obj == "" {
		return removeCollection(dir, calendarMeta)
	}
	return removeObject(dir, p.obj, file)
}

// checkConditions applies If-None-Match and If-Match to the object in file.
func checkConditions(file string, ifNoneMatch, ifMatch gowebdav.ConditionalMatch) error {
	if !ifNoneMatch.IsSet() && !ifMatch.IsSet() {
		return nil
	}
	b, err := os.ReadFile(file)
	exists := err == nil
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fsError(err)
	}
	current := ""
	if exists {
		current = etagOf(b)
	}
	failed := webdavError(http.StatusPreconditionFailed, "davstore: precondition failed")
	if ifNoneMatch.IsSet() && exists {
		if ifNoneMatch.IsWildcard() {
			return failed
		}
		if etag, err := ifNoneMatch.ETag(); err != nil {
			return webdavError(http.StatusBadRequest, "davstore: malformed If-None-Match")
		} else if etag == current {
			return failed
		}
	}
	if ifMatch.IsSet() {
		if !exists {
			return failed
		}
		if !ifMatch.IsWildcard() {
			etag, err := ifMatch.ETag()
			if err != nil {
				return webdavError(http.StatusBadRequest, "davstore: malformed If-Match")
			}
			if etag != current {
				return failed
			}
		}
	}
	return nil
}
