package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/notify"
)

// notifyConfig is the notification flags.
type notifyConfig struct {
	publicURL        string
	smtpAddr         string
	smtpFrom         string
	smtpUser         string
	smtpPassFile     string
	smtpInsecureLoop bool
	webhookURL       string
	webhookSecret    string
	webhookInsecure  bool
}

func (n *notifyConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&n.publicURL, "public-url", "", "this server's address as users reach it (https://dav.example.org), linked from notifications and given to Nextcloud clients by Login Flow")
	fs.StringVar(&n.smtpAddr, "smtp-addr", "", "mail server host:port (STARTTLS required): e-mail users about new app passwords and sign-ins from new addresses")
	fs.StringVar(&n.smtpFrom, "smtp-from", "", "sender address of notifications")
	fs.StringVar(&n.smtpUser, "smtp-user", "", "mail server user name (PLAIN over TLS; with -smtp-password-file)")
	fs.StringVar(&n.smtpPassFile, "smtp-password-file", "", "file holding the mail server password")
	fs.BoolVar(&n.smtpInsecureLoop, "smtp-insecure-loopback", false, "allow a mail server on a loopback address without STARTTLS (testing only)")
	fs.StringVar(&n.webhookURL, "webhook-url", "", "https URL that receives notifications as signed JSON POSTs")
	fs.StringVar(&n.webhookSecret, "webhook-secret-file", "", "file holding the webhook's HMAC secret (at least 32 bytes)")
	fs.BoolVar(&n.webhookInsecure, "webhook-insecure-loopback", false, "allow an http:// webhook on a loopback address (testing only)")
}

func (n *notifyConfig) check() error {
	switch {
	case n.smtpAddr != "" && n.smtpFrom == "":
		return errors.New("-smtp-addr needs -smtp-from")
	case n.smtpAddr == "" && (n.smtpFrom != "" || n.smtpUser != "" || n.smtpPassFile != "" || n.smtpInsecureLoop):
		return errors.New("-smtp-from, -smtp-user, -smtp-password-file and -smtp-insecure-loopback need -smtp-addr")
	case (n.smtpUser == "") != (n.smtpPassFile == ""):
		return errors.New("-smtp-user and -smtp-password-file go together")
	case (n.webhookURL == "") != (n.webhookSecret == ""):
		return errors.New("-webhook-url and -webhook-secret-file go together")
	case n.webhookInsecure && n.webhookURL == "":
		return errors.New("-webhook-insecure-loopback needs -webhook-url")
	case n.publicURL != "" && !strings.HasPrefix(n.publicURL, "https://") && !strings.HasPrefix(n.publicURL, "http://"):
		return fmt.Errorf("-public-url %q must start with https://", n.publicURL)
	}
	return nil
}

// eventHook is the Manager's event hook: the metrics, if asked for, and
// the notifier, bound once it exists (it reads the Manager's sessions).
type eventHook struct {
	metrics func(auth.Event)
	n       atomic.Pointer[notify.Notifier]
}

// listener returns the hook for auth.Options.OnEvent, or nil when nothing
// listens, so that the verify path does not time itself for nobody.
func (h *eventHook) listener(notifications bool) func(auth.Event) {
	switch {
	case !notifications:
		return h.metrics
	case h.metrics == nil:
		return h.notify
	}
	return func(e auth.Event) {
		h.metrics(e)
		h.notify(e)
	}
}

func (h *eventHook) notify(e auth.Event) {
	if n := h.n.Load(); n != nil {
		n.OnEvent(e)
	}
}

// enabled reports whether the flags ask for any notification.
func (n *notifyConfig) enabled() bool { return n.smtpAddr != "" || n.webhookURL != "" }

// newNotifier returns the notifier the flags ask for, or nil when they ask
// for none.
func newNotifier(n *notifyConfig, dir auth.Directory, sessions notify.SessionLister, logger *slog.Logger) (*notify.Notifier, error) {
	var transports []notify.Transport
	if n.smtpAddr != "" {
		o := notify.SMTPOptions{Addr: n.smtpAddr, From: n.smtpFrom, Username: n.smtpUser, InsecureLoopback: n.smtpInsecureLoop,
			TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12}}
		if n.smtpPassFile != "" {
			pw, err := readSecretFile(n.smtpPassFile, "-smtp-password-file")
			if err != nil {
				return nil, err
			}
			o.Password = pw
		}
		tr, err := notify.NewSMTP(o)
		if err != nil {
			return nil, err
		}
		transports = append(transports, tr)
	}
	if n.webhookURL != "" {
		secret, err := readSecretFile(n.webhookSecret, "-webhook-secret-file")
		if err != nil {
			return nil, err
		}
		tr, err := notify.NewWebhook(notify.WebhookOptions{URL: n.webhookURL, Secret: []byte(secret), InsecureLoopback: n.webhookInsecure})
		if err != nil {
			return nil, err
		}
		transports = append(transports, tr)
	}
	if len(transports) == 0 {
		return nil, nil
	}
	var settingsURL string
	if n.publicURL != "" {
		settingsURL = strings.TrimRight(n.publicURL, "/") + "/"
	}
	return notify.New(&notify.Options{Transports: transports, Directory: dir, Sessions: sessions,
		SettingsURL: settingsURL, Logger: logger.With("component", "notify")})
}
