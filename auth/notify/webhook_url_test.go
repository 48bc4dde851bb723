package notify_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/appauth/appauth/auth/notify"
)

// TestWebhookErrorsHoldNoURLSecret: a webhook URL often carries its
// credential (a password in the user info, a token in the path or query,
// as Slack's and Teams' incoming webhooks do). A refused or failed
// delivery is logged with its error: the error names the receiver by
// scheme and host only.
func TestWebhookErrorsHoldNoURLSecret(t *testing.T) {
	key := []byte(strings.Repeat("k", 32))
	secrets := []string{"pw-in-userinfo", "tok-in-path", "tok-in-query"}
	withSecrets := func(base string) string {
		u, err := url.Parse(base)
		if err != nil {
			t.Fatal(err)
		}
		u.User = url.UserPassword("hook", "pw-in-userinfo")
		u.Path = "/services/T0/tok-in-path"
		u.RawQuery = "token=tok-in-query"
		return u.String()
	}
	msg := &notify.Message{What: notify.AppPasswordCreated, UserID: "u-alice", Login: "alice"}

	refusing := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusInternalServerError)
	}))
	defer refusing.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "https://" + ln.Addr().String()
	ln.Close() // nothing listens there: the connection is refused

	for name, tc := range map[string]struct {
		url    string
		client *http.Client
	}{
		"refused by the receiver": {refusing.URL, refusing.Client()},
		"connection refused":      {closed, nil},
	} {
		t.Run(name, func(t *testing.T) {
			tr, err := notify.NewWebhook(notify.WebhookOptions{URL: withSecrets(tc.url), Secret: key, Client: tc.client})
			if err != nil {
				t.Fatal(err)
			}
			err = tr.Send(t.Context(), msg)
			if err == nil {
				t.Fatal("Send succeeded")
			}
			for _, s := range secrets {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q holds the URL's secret %q", err, s)
				}
			}
			if host := strings.TrimPrefix(strings.TrimPrefix(tc.url, "https://"), "http://"); !strings.Contains(err.Error(), host) {
				t.Errorf("error %q does not name the receiver %s", err, host)
			}
		})
	}
}
