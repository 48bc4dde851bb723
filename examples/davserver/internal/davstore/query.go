package davstore

import (
	"time"

	"github.com/emersion/go-ical"
	"github.com/emersion/go-webdav/caldav"
)

// go-webdav v0.6.0's caldav.Filter matches a time range only on events; a
// to-do never matches one, so "to-dos due this week" finds nothing. filter
// walks the comp-filters itself and applies RFC 4791, 9.9 to VTODOs,
// leaving everything else to go-webdav.

// filter returns the objects that match query.
func filter(query *caldav.CalendarQuery, objs []caldav.CalendarObject) ([]caldav.CalendarObject, error) {
	if query == nil {
		return objs, nil
	}
	var out []caldav.CalendarObject
	for _, o := range objs {
		if o.Data == nil || o.Data.Component == nil {
			continue
		}
		ok, err := matchComp(query.CompFilter, o.Data.Component)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, o)
		}
	}
	return out, nil
}

// matchComp is go-webdav's match with to-do time ranges.
func matchComp(f caldav.CompFilter, comp *ical.Component) (bool, error) {
	if comp.Name != f.Name {
		return f.IsNotDefined, nil
	}
	if !f.Start.IsZero() || !f.End.IsZero() {
		var ok bool
		var err error
		if comp.Name == ical.CompToDo && comp.Props.Get(ical.PropRecurrenceRule) == nil {
			ok, err = todoInRange(f.Start, f.End, comp)
		} else {
			ok, err = goWebdavMatch(caldav.CompFilter{Name: comp.Name, Start: f.Start, End: f.End}, comp)
		}
		if err != nil || !ok {
			return false, err
		}
	}
	for _, cf := range f.Comps {
		found := false
		for _, child := range comp.Children {
			if child.Name != cf.Name {
				continue
			}
			ok, err := matchComp(cf, child)
			if err != nil {
				return false, err
			}
			if ok {
				found = true
				break
			}
		}
		if !found && !cf.IsNotDefined {
			return false, nil
		}
		if found && cf.IsNotDefined {
			return false, nil
		}
	}
	if len(f.Props) > 0 {
		return goWebdavMatch(caldav.CompFilter{Name: comp.Name, Props: f.Props}, comp)
	}
	return true, nil
}

// goWebdavMatch applies a filter without child comp-filters with go-webdav.
func goWebdavMatch(f caldav.CompFilter, comp *ical.Component) (bool, error) {
	return caldav.Match(f, &caldav.CalendarObject{Data: &ical.Calendar{Component: comp}})
}

// todoInRange is the VTODO table of RFC 4791, 9.9; a zero end is no end.
func todoInRange(start, end time.Time, todo *ical.Component) (bool, error) {
	get := func(name string) (time.Time, bool, error) {
		p := todo.Props.Get(name)
		if p == nil {
			return time.Time{}, false, nil
		}
		t, err := p.DateTime(time.UTC)
		return t, err == nil, err
	}
	dtstart, hasStart, err := get(ical.PropDateTimeStart)
	if err != nil {
		return false, err
	}
	due, hasDue, err := get(ical.PropDue)
	if err != nil {
		return false, err
	}
	completed, hasCompleted, err := get(ical.PropCompleted)
	if err != nil {
		return false, err
	}
	created, hasCreated, err := get(ical.PropCreated)
	if err != nil {
		return false, err
	}
	var duration time.Duration
	hasDuration := false
	if p := todo.Props.Get(ical.PropDuration); p != nil {
		if duration, err = p.Duration(); err != nil {
			return false, err
		}
		hasDuration = true
	}
	beforeEnd := func(t time.Time) bool { return end.IsZero() || end.After(t) }       // end > t
	atOrBeforeEnd := func(t time.Time) bool { return end.IsZero() || !end.Before(t) } // end >= t
	switch {
	case hasStart && hasDuration:
		stop := dtstart.Add(duration)
		return !start.After(stop) && (beforeEnd(dtstart) || atOrBeforeEnd(stop)), nil
	case hasStart && hasDue:
		return (start.Before(due) || !start.After(dtstart)) && (beforeEnd(dtstart) || atOrBeforeEnd(due)), nil
	case hasStart:
		return !start.After(dtstart) && beforeEnd(dtstart), nil
	case hasDue:
		return start.Before(due) && atOrBeforeEnd(due), nil
	case hasCompleted && hasCreated:
		return (!start.After(created) || !start.After(completed)) && (atOrBeforeEnd(created) || atOrBeforeEnd(completed)), nil
	case hasCompleted:
		return !start.After(completed) && atOrBeforeEnd(completed), nil
	case hasCreated:
		return beforeEnd(created), nil
	}
	return true, nil
}
