package auth_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/internal/testkit"
)

// auditLines parses the JSON audit lines in logs whose message is msg.
func auditLines(t *testing.T, logs string, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		var l map[string]any
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if l["msg"] == msg {
			out = append(out, l)
		}
	}
	return out
}

// infoEnv is newEnv with the audit log at Info, as servers run it.
func infoEnv(t *testing.T, edit func(*auth.Options)) (*env, *testkit.Buffer) {
	logs := &testkit.Buffer{}
	e := newEnv(t, func(o *auth.Options) {
		o.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
		if edit != nil {
			edit(o)
		}
	})
	return e, logs
}

// TestSuccessfulUsesAreCoalesced: successful uses write no line each at
// Info but one "auth used" line per credential, address and client per
// LastUsedInterval, with the count and the first use's time, written when
// due and by Close; every failure is still a line of its own.
func TestSuccessfulUsesAreCoalesced(t *testing.T) {
	e, logs := infoEnv(t, nil)
	ap, secret := e.issue(t, e.alice, "phone")
	use := func(n int, addr, ua string) {
		t.Helper()
		for range n {
			if _, err := e.m.Authenticate(t.Context(), auth.Attempt{Username: "alice", Password: secret, RemoteAddr: addr, UserAgent: ua}); err != nil {
				t.Fatal(err)
			}
		}
	}
	start := e.clock.Now().UTC()
	use(100, "192.0.2.7", "DAVx5/4.4")
	use(3, "198.51.100.7", "Thunderbird/128")
	for range 3 {
		if _, err := e.auth(t, "alice", testkit.Typo(secret)); err == nil {
			t.Fatal("a typo authenticated")
		}
	}
	if got := auditLines(t, logs.String(), "auth authenticated"); len(got) != 0 {
		t.Errorf("%d per-request success lines at Info, want none", len(got))
	}
	if got := auditLines(t, logs.String(), "auth failed"); len(got) != 3 {
		t.Errorf("%d failure lines, want one per failure (3)", len(got))
	}
	e.m.FlushUses(t.Context(), false)
	if got := auditLines(t, logs.String(), "auth used"); len(got) != 0 {
		t.Fatalf("use lines written before their interval: %v", got)
	}
	e.clock.Add(time.Minute) // LastUsedInterval
	e.m.FlushUses(t.Context(), false)
	got := auditLines(t, logs.String(), "auth used")
	want := map[string]float64{"192.0.2.7 DAVx5/4.4": 100, "198.51.100.7 Thunderbird/128": 3}
	if len(got) != len(want) {
		t.Fatalf("use lines = %v, want %d", got, len(want))
	}
	for _, l := range got {
		k := l["remote_addr"].(string) + " " + l["user_agent"].(string)
		if l["count"] != want[k] || l["credential_id"] != ap.ID || l["login"] != "alice" || l["user_id"] != "u-alice" || l["event"] != "used" {
			t.Errorf("use line %v, want count %v of %s by alice", l, want[k], ap.ID)
		}
		if since, _ := time.Parse(time.RFC3339Nano, l["since"].(string)); !since.Equal(start) {
			t.Errorf("since = %v, want the first use %v", l["since"], start)
		}
		delete(want, k)
	}
	use(5, "192.0.2.7", "DAVx5/4.4")
	if err := e.m.Close(); err != nil {
		t.Fatal(err)
	}
	got = auditLines(t, logs.String(), "auth used")
	if len(got) != 3 || got[2]["count"] != float64(5) {
		t.Errorf("after Close, use lines = %v, want a third with count 5", got)
	}
}

// TestCoalescedUsesLoseNothing: uses counted while lines are being flushed
// from other goroutines all end up in some line (run with -race).
func TestCoalescedUsesLoseNothing(t *testing.T) {
	e, logs := infoEnv(t, nil)
	_, secret := e.issue(t, e.alice, "phone")
	const workers, uses = 4, 500
	var wg sync.WaitGroup
	done := make(chan struct{})
	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		for {
			select {
			case <-done:
				return
			default:
				e.m.FlushUses(t.Context(), true)
			}
		}
	}()
	for w := range workers {
		wg.Go(func() {
			// Two workers share an address: records are shared and replaced.
			addr := []string{"192.0.2.7", "192.0.2.8"}[w%2]
			for range uses {
				if _, err := e.m.Authenticate(t.Context(), auth.Attempt{Username: "alice", Password: secret, RemoteAddr: addr, UserAgent: "DAVx5"}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(done)
	<-flushed
	e.m.FlushUses(t.Context(), true)
	total := 0.0
	for _, l := range auditLines(t, logs.String(), "auth used") {
		total += l["count"].(float64)
	}
	if total != workers*uses {
		t.Errorf("use lines count %v uses, want %d", total, workers*uses)
	}
}

// TestUsesFromManyAddressesStayBounded: past the bound on pending use
// records, each use from a new address is logged at once, so memory stays
// bounded and every use is still in the log.
func TestUsesFromManyAddressesStayBounded(t *testing.T) {
	e, logs := infoEnv(t, nil)
	_, secret := e.issue(t, e.alice, "phone")
	const n = auth.MaxPendingUses + 50
	for i := range n {
		addr := fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255)
		if _, err := e.m.Authenticate(t.Context(), auth.Attempt{Username: "alice", Password: secret, RemoteAddr: addr, UserAgent: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(auditLines(t, logs.String(), "auth authenticated")); got != 50 {
		t.Errorf("%d uses logged at once past the bound, want 50", got)
	}
	e.m.FlushUses(t.Context(), true)
	if got := len(auditLines(t, logs.String(), "auth used")); got != auth.MaxPendingUses {
		t.Errorf("%d use lines, want %d", got, auth.MaxPendingUses)
	}
}
