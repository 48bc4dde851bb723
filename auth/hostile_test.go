package auth_test

import (
	"bufio"
	"strings"
	"sync"
	"testing"

	"github.com/appauth/appauth/auth"
)

// TestHugeClientInfoIsBounded: the address, user agent and login a client
// sends reach the audit log and the event hook bounded, whichever edge
// passed them on unbounded (a 1 MiB User-Agent with a bogus session cookie,
// a 1 MiB login at the sign-in): an anonymous client cannot make one
// request a megabyte of log, nor a credential's holder keep a megabyte per
// use in the pending audit records.
func TestHugeClientInfoIsBounded(t *testing.T) {
	var mu sync.Mutex
	var events []auth.Event
	e, logs := infoEnv(t, func(o *auth.Options) {
		o.OnEvent = func(ev auth.Event) { mu.Lock(); events = append(events, ev); mu.Unlock() }
	})
	_, secret := e.issue(t, e.alice, "phone")
	huge := strings.Repeat("\x01A", 512<<10) // 1 MiB, and 5 MiB once escaped
	ctx := t.Context()
	e.m.AuthenticateSession(ctx, "not-a-session", huge, huge)
	e.m.Authenticate(ctx, auth.Attempt{Username: "alice", Password: "wrong", RemoteAddr: huge, UserAgent: huge})
	e.m.Authenticate(ctx, auth.Attempt{Username: "alice", Password: secret, RemoteAddr: huge, UserAgent: huge + "1"})
	e.m.AuthenticateToken(ctx, secret, huge, huge+"2")
	e.m.VerifyAccountPassword(ctx, e.dir, auth.Attempt{Username: huge, Password: "x", RemoteAddr: huge, UserAgent: huge})
	e.m.VerifyAccountPassword(ctx, e.dir, auth.Attempt{Username: "alice", Password: "wrong", RemoteAddr: huge, UserAgent: huge})
	e.m.IssueAppPassword(ctx, e.alice, auth.IssueRequest{Name: "tablet", RemoteAddr: huge, UserAgent: huge})
	e.m.CreateSession(ctx, e.alice, huge, huge)
	e.m.FlushUses(ctx, true)

	const bound = 4 << 10
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	sc.Buffer(nil, 64<<20)
	lines := 0
	for sc.Scan() {
		lines++
		if n := len(sc.Bytes()); n > bound {
			t.Errorf("a log line of %d bytes: %.120s...", n, sc.Text())
		}
	}
	if lines < 8 {
		t.Errorf("%d log lines, want one per decision", lines)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, ev := range events {
		if n := len(ev.Login) + len(ev.RemoteAddr) + len(ev.UserAgent); n > bound {
			t.Errorf("a %s %s event holding %d bytes of client input", ev.Type, ev.Kind, n)
		}
	}
}
