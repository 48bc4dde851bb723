package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"time"
)

// SMTPOptions configure an [SMTP] transport. Addr and From are required.
type SMTPOptions struct {
	// Addr is the mail server's host:port (submission: port 587).
	Addr string
	// From is the sender address ("Accounts <accounts@example.org>").
	From string
	// Username and Password, if set, authenticate with PLAIN (only ever
	// over TLS).
	Username, Password string
	// TLSConfig, if set, is used for STARTTLS (for example RootCAs for a
	// private CA); ServerName defaults to Addr's host.
	TLSConfig *tls.Config
	// InsecureLoopback allows a server without STARTTLS when Addr is a
	// loopback address, for tests. Otherwise STARTTLS is required, and a
	// server that does not offer it, or whose certificate does not verify,
	// gets no message.
	InsecureLoopback bool
	// Timeout bounds the dial and the whole conversation. Default 30s; a
	// shorter deadline in the context wins.
	Timeout time.Duration
	// Hello is the name given in EHLO. Default "localhost".
	Hello string
}

// SMTP sends messages by e-mail to the owner's address
// ([Message.Email]). Messages without an address are given up.
type SMTP struct {
	o    SMTPOptions
	host string
	from *mail.Address
}

// NewSMTP checks o and returns the transport.
func NewSMTP(o SMTPOptions) (*SMTP, error) {
	if o.Addr == "" {
		return nil, errors.New(`notify: SMTP: missing required field "Addr"`)
	}
	host, _, err := net.SplitHostPort(o.Addr)
	if err != nil {
		return nil, fmt.Errorf("notify: SMTP: Addr: %w", err)
	}
	from, err := mail.ParseAddress(o.From)
	if err != nil {
		return nil, fmt.Errorf("notify: SMTP: From %q: %w", o.From, err)
	}
	if o.InsecureLoopback {
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return nil, fmt.Errorf("notify: SMTP: InsecureLoopback with %q, which is not a loopback address", host)
		}
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Hello == "" {
		o.Hello = "localhost"
	}
	return &SMTP{o: o, host: host, from: from}, nil
}

// Send delivers m to m.Email.
func (s *SMTP) Send(ctx context.Context, m *Message) error {
	if m.Email == "" && m.emailErr != nil {
		return fmt.Errorf("notify: SMTP: user %s: e-mail address not known yet: %w", m.UserID, m.emailErr) // retried
	}
	if m.Email == "" {
		return permanent("notify: SMTP: user %s has no e-mail address", m.UserID)
	}
	to, err := mail.ParseAddress(m.Email)
	if err != nil {
		return permanent("notify: SMTP: user %s: e-mail address: %w", m.UserID, err)
	}
	body, err := s.compose(to, m)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.o.Addr)
	if err != nil {
		return fmt.Errorf("notify: SMTP: %w", err)
	}
	// One deadline for every command; closing on cancel stops a
	// conversation with a server that hangs, even before it.
	dl, _ := ctx.Deadline()
	conn.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()
	if err := s.converse(conn, to.Address, body); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("notify: SMTP: %w (%v)", ctx.Err(), err)
		}
		return fmt.Errorf("notify: SMTP: %w", err)
	}
	return nil
}

func (s *SMTP) converse(conn net.Conn, to string, body []byte) error {
	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello(s.o.Hello); err != nil {
		return err
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		cfg := &tls.Config{ServerName: s.host, MinVersion: tls.VersionTLS12}
		if s.o.TLSConfig != nil {
			cfg = s.o.TLSConfig.Clone()
			if cfg.ServerName == "" {
				cfg.ServerName = s.host
			}
		}
		if err := c.StartTLS(cfg); err != nil {
			return err
		}
	} else if !s.o.InsecureLoopback {
		return errors.New("server does not offer STARTTLS; refusing to send in plaintext")
	}
	if s.o.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", s.o.Username, s.o.Password, s.host)); err != nil {
			return err
		}
	}
	if err := c.Mail(s.from.Address); err != nil {
		return err
	}
	if err := c.Rcpt(to); err != nil {
		var te *textproto.Error // the server's reply: 5xx is for good
		if errors.As(err, &te) && te.Code >= 500 {
			return &PermanentError{err}
		}
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(body); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// compose builds the e-mail: fixed ASCII headers, the text quoted-printable
// so that no line of it can be read as a header or an SMTP command.
func (s *SMTP) compose(to *mail.Address, m *Message) ([]byte, error) {
	var id [12]byte
	rand.Read(id[:])
	var b bytes.Buffer
	hdr := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	hdr("From", s.from.String())
	hdr("To", (&mail.Address{Address: to.Address}).String())
	hdr("Subject", mime.QEncoding.Encode("utf-8", m.Subject()))
	hdr("Date", m.Time.UTC().Format(time.RFC1123Z))
	hdr("Message-ID", "<"+hex.EncodeToString(id[:])+"@appauth>")
	hdr("Auto-Submitted", "auto-generated")
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", `text/plain; charset="utf-8"`)
	hdr("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	if _, err := qp.Write([]byte(m.Text())); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
