package notify_test

import (
	"context"
	"fmt"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/notify"
	"github.com/appauth/appauth/backends/memory"
	"github.com/appauth/appauth/internal/testkit"
)

// printer is a Transport that prints what it would send.
type printer struct{ done chan struct{} }

func (p printer) Send(_ context.Context, m *notify.Message) error {
	fmt.Printf("to %s: %s\n%s", m.Email, m.Subject(), m.Text())
	close(p.done)
	return nil
}

func Example() {
	dir := memory.NewDirectory()
	alice := auth.User{ID: "u1", Login: "alice", Email: "alice@example.org"}
	dir.AddUser(alice, "account-password")

	// In production: notify.NewSMTP and/or notify.NewWebhook.
	out := printer{make(chan struct{})}
	n, err := notify.New(&notify.Options{Transports: []notify.Transport{out}, Directory: dir,
		SettingsURL: "https://dav.example.org/"})
	if err != nil {
		panic(err)
	}
	defer n.Close()
	m, err := auth.NewManager(memory.NewStore(), dir, &auth.Options{
		Peppers: []auth.Pepper{testkit.Pepper()}, // in production: a secret from a file
		OnEvent: n.OnEvent,
		Now:     func() time.Time { return time.Date(2026, 5, 1, 9, 30, 0, 0, time.UTC) },
	})
	if err != nil {
		panic(err)
	}
	defer m.Close()
	n.SetSessions(m) // sign-ins from addresses of existing sessions are not news

	// The edge passes the client it saw along.
	m.IssueAppPassword(context.Background(), &alice, auth.IssueRequest{Name: "My iPhone", RemoteAddr: "192.0.2.7", UserAgent: "iOS/18.2 dataaccessd"})
	<-out.done
	// Output:
	// to alice@example.org: New app password on your account
	// A new app password "My iPhone" was created for your account alice.
	//
	// When:   2026-05-01T09:30:00Z (Friday, 1 May 2026, 09:30 UTC)
	// From:   192.0.2.7
	// Client: iOS/18.2 dataaccessd
	//
	// If this was not you, revoke that app password and change your password:
	// https://dav.example.org/
	//
	// This message was sent automatically. It never contains a password.
}
