package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Webhook headers. The signature is HMAC-SHA256 with the shared secret over
// the timestamp, a dot and the body, so a receiver that checks both (see
// [VerifyWebhook]) refuses a replayed or altered request.
const (
	HeaderSignature = "X-Appauth-Signature" // "sha256=" and the MAC in hex
	HeaderTimestamp = "X-Appauth-Timestamp" // Unix seconds when it was sent
)

// MinWebhookSecret is the shortest webhook secret accepted, in bytes.
const MinWebhookSecret = 32

// WebhookOptions configure a [Webhook]. URL and Secret are required.
type WebhookOptions struct {
	// URL receives each message as a JSON POST. It must be https, unless
	// InsecureLoopback is set and it names a loopback address (tests).
	URL              string
	InsecureLoopback bool
	// Secret is the HMAC key shared with the receiver; at least
	// [MinWebhookSecret] bytes.
	Secret []byte
	// Client sends the requests. Default: an http.Client with a 30s timeout
	// that follows no redirects.
	Client *http.Client
	// Now is the clock for the timestamp. Default time.Now.
	Now func() time.Time
}

// Webhook posts messages as signed JSON ([Message]'s fields). A 2xx answer
// is a delivery; anything else is retried.
type Webhook struct {
	o WebhookOptions
	// dest names the receiver in errors: the URL's scheme and host only,
	// since its user info, path or query may be its credential.
	dest string
}

// NewWebhook checks o and returns the transport.
func NewWebhook(o WebhookOptions) (*Webhook, error) {
	u, err := url.Parse(o.URL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("notify: webhook: URL %q is not an absolute URL", o.URL)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && o.InsecureLoopback:
		if ip := net.ParseIP(u.Hostname()); u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return nil, fmt.Errorf("notify: webhook: InsecureLoopback with %q, which is not a loopback address", u.Hostname())
		}
	default:
		return nil, fmt.Errorf("notify: webhook: URL %q must be https", o.URL)
	}
	if len(o.Secret) < MinWebhookSecret {
		return nil, fmt.Errorf("notify: webhook: Secret must be at least %d bytes", MinWebhookSecret)
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Webhook{o: o, dest: u.Scheme + "://" + u.Host}, nil
}

// Send posts m.
func (w *Webhook) Send(ctx context.Context, m *Message) error {
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	ts := strconv.FormatInt(w.o.Now().Unix(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.o.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("notify: webhook: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "appauth-notify")
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, "sha256="+hex.EncodeToString(sign(w.o.Secret, ts, body)))
	resp, err := w.o.Client.Do(req)
	if err != nil {
		var ue *url.Error // it quotes the whole URL
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("notify: webhook: POST %s: %w", w.dest, err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("notify: webhook: %s answered %s", w.dest, resp.Status)
	}
	return nil
}

func sign(secret []byte, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// ErrBadSignature is a webhook request whose signature or timestamp does not check.
var ErrBadSignature = errors.New("notify: webhook signature does not verify")

// VerifyWebhook checks a received webhook request for a receiver: the
// signature in h over body with secret, and a timestamp within maxAge of now
// (so that a recorded request cannot be replayed later; a receiver that must
// refuse replays within maxAge also remembers the signatures it has seen).
func VerifyWebhook(secret []byte, h http.Header, body []byte, now time.Time, maxAge time.Duration) error {
	ts := h.Get(HeaderTimestamp)
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ErrBadSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > maxAge || d < -maxAge {
		return ErrBadSignature
	}
	sig := h.Get(HeaderSignature)
	got, err := hex.DecodeString(strings.TrimPrefix(sig, "sha256="))
	if err != nil || !strings.HasPrefix(sig, "sha256=") || !hmac.Equal(got, sign(secret, ts, body)) {
		return ErrBadSignature
	}
	return nil
}
