package sqlstore

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/appauth/appauth/internal/testenv"
)

// msgHandler sends the message of every record to msgs, dropping it when
// nobody reads.
type msgHandler struct{ msgs chan string }

func (h msgHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h msgHandler) Handle(_ context.Context, r slog.Record) error {
	select {
	case h.msgs <- r.Message:
	default:
	}
	return nil
}
func (h msgHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h msgHandler) WithGroup(string) slog.Handler      { return h }

// TestHungPostgresWatcherPing pauses PostgreSQL under a listening
// WatchChanges: the ping that follows gets no answer, and the watcher must
// give up on the connection (so it reconnects, and says it cannot) instead
// of waiting on it for as long as the server hangs, a half-open connection
// for as long as TCP retransmits; and once its context is cancelled it
// returns, which a ping holding the listener's lock would prevent.
func TestHungPostgresWatcherPing(t *testing.T) {
	srv := testenv.NewPostgres(t) // paused below: a server of its own
	logs := make(chan string, 64)
	s, err := OpenPostgres(t.Context(), srv.Database(t)+"&connect_timeout=1", &Options{Logger: slog.New(msgHandler{logs})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.listenPing = 200 * time.Millisecond

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := make(chan struct{}, 16)
	returned := make(chan error, 1)
	go func() {
		returned <- s.WatchChanges(ctx, func(string, string) {
			select {
			case events <- struct{}{}:
			default:
			}
		})
	}()
	select {
	case <-events: // listening
	case err := <-returned:
		t.Fatalf("WatchChanges: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("the watcher did not start listening within 20s")
	}

	srv.Pause(t)
	defer srv.Resume(t)
	// A safety net, not a timing assertion: the pings are 200 ms apart and
	// a connection attempt gives up after 1 s.
	noticed := false
	for limit := time.After(15 * time.Second); !noticed; {
		select {
		case msg := <-logs:
			noticed = strings.Contains(msg, "cannot connect")
		case <-limit:
			t.Error("the watcher did not give up on its connection to a hung PostgreSQL within 15s")
			noticed = true
		}
	}
	cancel()
	select {
	case err := <-returned:
		if err != nil {
			t.Errorf("WatchChanges after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WatchChanges did not return within 10s of its context's cancel on a hung PostgreSQL")
	}
}
