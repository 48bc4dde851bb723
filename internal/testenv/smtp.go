package testenv

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// SMTPServer is a mail server (aiosmtpd) on a loopback port for one test.
// It offers STARTTLS with a certificate for 127.0.0.1 and localhost signed
// by the CA in CAFile, and refuses mail before STARTTLS; it keeps every
// message it receives in a maildir.
type SMTPServer struct {
	Addr   string // host:port
	CAFile string // the CA certificate (PEM) that signed the server's certificate

	dir  string
	proc *proc
}

// SMTP starts a mail server for this test alone; it is removed when the
// test ends. If aiosmtpd is not installed (Debian package python3-aiosmtpd),
// the test is skipped with a message naming `make test`, or fails when
// [Strict].
func SMTP(t testing.TB) *SMTPServer {
	t.Helper()
	s, err := startSMTP()
	if err != nil {
		need(t, err)
	}
	t.Cleanup(s.close)
	return s
}

func startSMTP() (*SMTPServer, error) {
	// The python3 on PATH may not be Debian's (pyenv, a virtualenv): take
	// the first that has the module.
	var py string
	for _, cand := range []string{"python3", "/usr/bin/python3"} {
		if p, ok := findProgram([]string{cand}); ok && runChild(exec.Command(p, "-c", "import aiosmtpd"), nil) == nil {
			py = p
			break
		}
	}
	if py == "" {
		return nil, &missingError{"testenv: aiosmtpd is not installed: python3 -m aiosmtpd fails (Debian package python3-aiosmtpd)"}
	}
	dir, err := serverDir("smtp", nil)
	if err != nil {
		return nil, err
	}
	tlsDir, mail := filepath.Join(dir, "tls"), filepath.Join(dir, "mail")
	for _, d := range []string{tlsDir, mail, filepath.Join(mail, "tmp"), filepath.Join(mail, "new"), filepath.Join(mail, "cur")} {
		if err := os.Mkdir(d, 0o700); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("testenv: %w", err)
		}
	}
	if err := writePKI(tlsDir); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &SMTPServer{CAFile: filepath.Join(tlsDir, "ca.crt"), dir: dir}
	s.proc = &proc{
		name: "aiosmtpd", path: py, dir: dir, logPath: filepath.Join(dir, "aiosmtpd.log"),
		stopSig: syscall.SIGTERM,
		ready:   func(ctx context.Context) error { return smtpBanner(ctx, s.Addr) },
	}
	_, err = startOnFreePort(s.proc, 1, func(ports []int) []string {
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
		return []string{"-m", "aiosmtpd", "-n", "-l", s.Addr,
			"--tlscert", filepath.Join(tlsDir, "server.crt"), "--tlskey", filepath.Join(tlsDir, "server.key"),
			"-c", "aiosmtpd.handlers.Mailbox", mail}
	})
	if err != nil {
		s.close()
		return nil, fmt.Errorf("testenv: start aiosmtpd: %w: %s", err, tail(s.proc.logPath))
	}
	return s, nil
}

// smtpBanner reads the server's greeting.
func smtpBanner(ctx context.Context, addr string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "220") {
		return fmt.Errorf("greeting %q", line)
	}
	return nil
}

// Messages returns the messages received so far, whole (headers and body),
// in no particular order (maildir names do not sort by arrival).
func (s *SMTPServer) Messages(t testing.TB) []string {
	t.Helper()
	var files []string
	for _, sub := range []string{"new", "cur"} {
		es, err := os.ReadDir(filepath.Join(s.dir, "mail", sub))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, e := range es {
			files = append(files, filepath.Join(s.dir, "mail", sub, e.Name()))
		}
	}
	slices.Sort(files)
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

// Stop stops the server and returns once it is down: connections are
// refused until [SMTPServer.Start].
func (s *SMTPServer) Stop(t testing.TB) {
	t.Helper()
	if err := s.proc.stop(); err != nil {
		t.Fatal(err)
	}
}

// Start starts the server again after [SMTPServer.Stop], on the same port,
// and returns once it answers.
func (s *SMTPServer) Start(t testing.TB) {
	t.Helper()
	if err := s.proc.restart(); err != nil {
		t.Fatal(err)
	}
}

func (s *SMTPServer) close() {
	if err := s.proc.stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.RemoveAll(s.dir)
}
