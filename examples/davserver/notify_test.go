package main

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/notify"
	"github.com/appauth/appauth/backends/memory"
)

// TestNotifyFlags: the notification variables build a notifier whose
// webhook posts signed messages linking to -public-url; incomplete
// settings are refused.
func TestNotifyFlags(t *testing.T) {
	secret := strings.Repeat("s", 40)
	secretFile := filepath.Join(t.TempDir(), "webhook-secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := notify.VerifyWebhook([]byte(secret), r.Header, body, time.Now(), time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		got <- string(body)
	}))
	defer recv.Close()
	env := map[string]string{"APPAUTH_WEBHOOK_URL": recv.URL, "APPAUTH_WEBHOOK_SECRET_FILE": secretFile, "APPAUTH_PUBLIC_URL": "https://dav.example.org"}
	c, err := parseConfig([]string{"-webhook-insecure-loopback"}, func(k string) string { return env[k] }, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := newNotifier(&c.notify, memory.NewDirectory(), nil, slog.New(slog.DiscardHandler))
	if err != nil || n == nil {
		t.Fatalf("newNotifier = %v, %v", n, err)
	}
	defer n.Close()
	n.OnEvent(auth.Event{Type: auth.EventIssued, Kind: auth.KindAppPassword, UserID: "u1", Login: "alice", Name: "phone", Time: time.Now()})
	select {
	case body := <-got:
		if !strings.Contains(body, `"settings_url":"https://dav.example.org/"`) || !strings.Contains(body, `"name":"phone"`) {
			t.Errorf("webhook body %s", body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook within 10s")
	}

	if n, err := newNotifier(&notifyConfig{}, memory.NewDirectory(), nil, slog.New(slog.DiscardHandler)); n != nil || err != nil {
		t.Errorf("no notification flags: %v, %v", n, err)
	}
	for _, args := range [][]string{
		{"-smtp-addr", "mail.example.org:587"},
		{"-smtp-from", "a@example.org"},
		{"-smtp-addr", "mail.example.org:587", "-smtp-from", "a@example.org", "-smtp-user", "u"},
		{"-webhook-url", "https://hooks.example.org/"},
		{"-public-url", "dav.example.org"},
	} {
		if _, err := parseConfig(args, noEnv, &bytes.Buffer{}); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}
