package notify

import (
	"fmt"
	"strings"
)

// Subject returns a message's e-mail subject.
func (m *Message) Subject() string {
	if m.What == NewSignIn {
		return "New sign-in to your account"
	}
	return "New app password on your account"
}

// Text returns a message as plain text for a person: what happened, when
// (UTC, in machine and readable form), from where, with which client, and
// where to revoke it.
func (m *Message) Text() string {
	var b strings.Builder
	switch m.What {
	case NewSignIn:
		fmt.Fprintf(&b, "A browser signed in to your account %s from an address not seen for it recently.\n\n", m.Login)
	default:
		fmt.Fprintf(&b, "A new app password %q was created for your account %s.\n\n", m.Name, m.Login)
	}
	fmt.Fprintf(&b, "When:   %s (%s)\n", m.Time.UTC().Format("2006-01-02T15:04:05Z"), m.Time.UTC().Format("Monday, 2 January 2006, 15:04 UTC"))
	fmt.Fprintf(&b, "From:   %s\n", orUnknown(m.RemoteAddr))
	fmt.Fprintf(&b, "Client: %s\n\n", orUnknown(m.UserAgent))
	if m.What == NewSignIn {
		b.WriteString("If this was not you, sign that session out and change your password")
	} else {
		b.WriteString("If this was not you, revoke that app password and change your password")
	}
	if m.SettingsURL != "" {
		fmt.Fprintf(&b, ":\n%s\n", m.SettingsURL)
	} else {
		b.WriteString(" on the settings page.\n")
	}
	b.WriteString("\nThis message was sent automatically. It never contains a password.\n")
	return b.String()
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
