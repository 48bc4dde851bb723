package notify_test

import (
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/appauth/appauth/auth/notify"
)

// refusingSMTP is a plain mail server on loopback that answers RCPT with
// code (550: no such mailbox; 450: try later).
func refusingSMTP(t *testing.T, code string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(c, "220 refusing\r\n")
			buf := make([]byte, 4096)
			for {
				n, err := c.Read(buf)
				if err != nil {
					break
				}
				line := string(buf[:n])
				switch {
				case strings.HasPrefix(line, "EHLO"):
					io.WriteString(c, "250 refusing\r\n")
				case strings.HasPrefix(line, "RCPT"):
					io.WriteString(c, code+" 5.1.1 mailbox refused\r\n")
				case strings.HasPrefix(line, "QUIT"):
					io.WriteString(c, "221 bye\r\n")
				default:
					io.WriteString(c, "250 ok\r\n")
				}
			}
			c.Close()
		}
	}()
	return ln.Addr().String()
}

// TestSMTPRefusedRecipient: a recipient the server refuses for good (5xx)
// is a PermanentError, given up at once as documented, not retried for
// half an hour; a temporary refusal (4xx) is retried.
func TestSMTPRefusedRecipient(t *testing.T) {
	msg := &notify.Message{What: notify.AppPasswordCreated, UserID: alice.ID, Login: alice.Login, Email: alice.Email, Time: time.Now()}
	for code, permanent := range map[string]bool{"550": true, "450": false} {
		tr, err := notify.NewSMTP(notify.SMTPOptions{Addr: refusingSMTP(t, code), From: "a@example.org", InsecureLoopback: true, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		err = tr.Send(t.Context(), msg)
		var perm *notify.PermanentError
		if err == nil || errors.As(err, &perm) != permanent {
			t.Errorf("RCPT refused with %s: Send = %v, permanent %v; want permanent %v", code, err, errors.As(err, &perm), permanent)
		}
	}
}
