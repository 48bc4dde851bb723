package notify_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/notify"
	"github.com/appauth/appauth/internal/testenv"
)

// flakyDirectory is unavailable for its first failures look-ups, as an
// LDAP server restarting would be, then finds alice.
type flakyDirectory struct{ failures, calls atomic.Int32 }

func (d *flakyDirectory) LookupUser(ctx context.Context, login string) (*auth.User, error) {
	if d.calls.Add(1) <= d.failures.Load() {
		return nil, fmt.Errorf("ldap: lookup user: %w: search: connection refused", auth.ErrUnavailable)
	}
	u := alice
	return &u, nil
}

// TestSMTPDirectoryOutage: the owner's e-mail address cannot be looked up
// because the directory is briefly down when the event comes: the message
// is not given up as if the user had no address; it is retried like a
// mail server outage, the address looked up again, and delivered once the
// directory answers.
func TestSMTPDirectoryOutage(t *testing.T) {
	srv := testenv.SMTP(t)
	tr, err := notify.NewSMTP(notify.SMTPOptions{Addr: srv.Addr, From: "accounts@example.org",
		TLSConfig: &tls.Config{RootCAs: caPool(t, srv.CAFile)}, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	dir := &flakyDirectory{}
	dir.failures.Store(2)
	w := &watched{tr, make(chan error, 100)}
	m, n := setup(t, notify.Options{Transports: []notify.Transport{w}, Directory: dir,
		RetryBase: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond}, nil)
	if _, _, err := m.IssueAppPassword(t.Context(), &alice, auth.IssueRequest{Name: "phone"}); err != nil {
		t.Fatal(err)
	}
	for attempts := 0; ; attempts++ {
		if attempts > 10 {
			t.Fatal("not delivered after the directory came back")
		}
		err := waitResult(t, w.results)
		if err == nil {
			break
		}
		t.Logf("attempt %d: %v", attempts+1, err)
		if s := n.Stats(); s.Failed != 0 {
			t.Fatalf("stats %+v: the message was given up while the directory was down (%v)", s, err)
		}
	}
	if msgs := srv.Messages(t); len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	waitFor(t, "1 sent", func() bool { return n.Stats().Sent == 1 })
}
