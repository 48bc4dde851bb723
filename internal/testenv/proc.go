package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Timeouts for servers.
const (
	startTimeout = time.Minute      // until a server answers
	stopTimeout  = 30 * time.Second // until it exits, then SIGKILL
	pollInterval = 20 * time.Millisecond
)

// proc is one server process: a foreground child of the test binary in a
// process group of its own, killed (SIGKILL) if the binary dies.
type proc struct {
	name    string   // for messages: "PostgreSQL", "slapd"
	path    string   // program
	args    []string // arguments; may change between starts (a new port)
	dir     string   // working directory
	logPath string   // stdout and stderr, appended
	cred    *syscall.Credential
	stopSig syscall.Signal                  // the signal for a clean, fast shutdown
	ready   func(ctx context.Context) error // nil once the server answers

	mu     sync.Mutex
	cmd    *exec.Cmd     // nil when stopped
	done   chan struct{} // closed when cmd has exited
	paused bool
}

// errExited is a server that exited while starting, for example because its
// port was taken meanwhile.
var errExited = errors.New("exited while starting")

// start starts the server and returns once it answers. It does nothing if
// the server runs.
func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return nil
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("testenv: %s: %w", p.name, err)
	}
	cmd := exec.Command(p.path, p.args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = p.dir, logf, logf
	err = startChild(cmd, p.cred)
	logf.Close() // the child has its own
	if err != nil {
		return fmt.Errorf("testenv: start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	for {
		err := p.ready(ctx)
		if err == nil {
			p.cmd, p.done = cmd, done
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("testenv: %s %w (%v); end of %s:\n%s", p.name, errExited, cmd.ProcessState, p.logPath, tail(p.logPath))
		case <-ctx.Done():
			killGroup(cmd, syscall.SIGKILL)
			<-done
			return fmt.Errorf("testenv: %s does not answer after %v: %v; end of %s:\n%s", p.name, startTimeout, err, p.logPath, tail(p.logPath))
		case <-time.After(pollInterval):
		}
	}
}

// stop stops the server with its shutdown signal (and SIGKILL if that takes
// too long) and returns once it has exited. It does nothing if the server
// is stopped, or was never made (nil).
func (p *proc) stop() error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return nil
	}
	cmd, done := p.cmd, p.done
	p.cmd, p.done = nil, nil
	killGroup(cmd, p.stopSig)
	if p.paused { // a stopped process acts on the signal once it runs
		killGroup(cmd, syscall.SIGCONT)
		p.paused = false
	}
	var err error
	select {
	case <-done:
	case <-time.After(stopTimeout):
		err = fmt.Errorf("testenv: %s did not stop within %v; killed", p.name, stopTimeout)
		killGroup(cmd, syscall.SIGKILL)
		<-done
	}
	// Leftovers in the group, if any. Not killGroup: the server is reaped,
	// so its PID may already belong to an unrelated process's children.
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	return err
}

// signal sends sig to the server's process group (SIGSTOP, SIGCONT).
func (p *proc) signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return fmt.Errorf("testenv: %s is not running", p.name)
	}
	p.paused = sig == syscall.SIGSTOP
	if err := killGroup(p.cmd, sig); err != nil || !p.paused {
		return err
	}
	return waitStopped(p.name, p.cmd.Process.Pid)
}

// waitStopped returns once every thread of pid and its descendants is
// stopped. kill(2) returns before a thread running on another CPU has
// stopped (slapd could still answer a request sent at once), and a child
// forked just before the signal (a PostgreSQL worker) may have missed it,
// so it is sent again to any process still running.
func waitStopped(name string, pid int) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		running := 0
		for _, p := range append(descendants(pid), pid) {
			tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", p))
			for _, task := range tasks {
				b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", p, task.Name()))
				if err != nil {
					continue // exited
				}
				// pid (comm) state ...: T stopped, Z and X exiting.
				if f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:])); len(f) > 0 && !strings.Contains("TtZX", f[0]) {
					running++
					syscall.Kill(p, syscall.SIGSTOP)
				}
			}
		}
		if running == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testenv: %s: %d threads still running 5s after SIGSTOP", name, running)
		}
		time.Sleep(time.Millisecond)
	}
}

// killGroup sends sig to the server's process group and to every process
// descended from it: PostgreSQL puts each backend in a session of its own.
func killGroup(cmd *exec.Cmd, sig syscall.Signal) error {
	err := syscall.Kill(-cmd.Process.Pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		err = nil
	}
	for _, pid := range descendants(cmd.Process.Pid) {
		syscall.Kill(pid, sig) // may have exited meanwhile
	}
	return err
}

// descendants returns the processes below pid, from /proc.
func descendants(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	children := map[int][]int{}
	for _, e := range ents {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(f[1]); err == nil {
			children[ppid] = append(children[ppid], child)
		}
	}
	var out []int
	for queue := children[pid]; len(queue) > 0; queue = queue[1:] {
		out = append(out, queue[0])
		queue = append(queue, children[queue[0]]...)
	}
	return out
}

// starter is a goroutine locked to its OS thread for the life of the binary,
// which starts every child: Pdeathsig fires when the thread that started the
// child exits, and this one never does.
var starter = sync.OnceValue(func() chan<- func() {
	ch := make(chan func())
	go func() {
		runtime.LockOSThread() // never unlocked
		for fn := range ch {
			fn()
		}
	}()
	return ch
})

// startChild starts cmd in a process group of its own that is killed when
// the test binary dies, as cred's user if cred is not nil.
func startChild(cmd *exec.Cmd, cred *syscall.Credential) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: cred}
	errc := make(chan error, 1)
	starter() <- func() { errc <- cmd.Start() }
	return <-errc
}

// runChild runs cmd to its end like startChild, returning its output on failure.
func runChild(cmd *exec.Cmd, cred *syscall.Credential) error {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := startChild(cmd, cred); err != nil {
		return err
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, out.Bytes())
	}
	return nil
}

// tail returns the last lines of a log file, for messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	return strings.Join(lines, "\n")
}

// freePorts returns n different TCP ports on 127.0.0.1 that were free a
// moment ago. A server may still lose one to someone else: callers retry.
func freePorts(n int) ([]int, error) {
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("testenv: find a free port: %w", err)
		}
		defer l.Close()
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}

// serviceUser is whom servers that refuse to run as root run as: nil when
// not root, else the user postgres if it exists, else nobody.
var serviceUser = sync.OnceValues(func() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	var u *user.User
	var err error
	for _, name := range []string{"postgres", "nobody"} {
		if u, err = user.Lookup(name); err == nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("testenv: running as root, and neither user postgres nor nobody exists to run the servers: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("testenv: user %s: %w", u.Username, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
})

// serverDir makes a temporary directory for one server under /tmp (socket
// paths must stay short), owned by cred's user if not nil.
func serverDir(name string, cred *syscall.Credential) (string, error) {
	base := os.TempDir()
	if os.Geteuid() == 0 || len(base) > 40 {
		base = "/tmp" // reachable by the service user, and short
	}
	dir, err := os.MkdirTemp(base, "appauth-"+name+"-")
	if err != nil {
		return "", fmt.Errorf("testenv: %w", err)
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return "", fmt.Errorf("testenv: %w", err)
		}
	}
	return dir, nil
}

// startOnFreePort starts p with args made for a free port, retrying with
// other ports when the server exits while starting (its port was taken).
func startOnFreePort(p *proc, ports int, args func(ports []int) []string) ([]int, error) {
	var err error
	for range 5 {
		var got []int
		if got, err = freePorts(ports); err != nil {
			return nil, err
		}
		p.args = args(got)
		if err = p.start(); err == nil {
			return got, nil
		}
		if !errors.Is(err, errExited) {
			return nil, err
		}
	}
	return nil, err
}

// restart starts p again after stop, on the same ports (clients hold its
// address), retrying for a while in case a port is not free yet.
func (p *proc) restart() error {
	var err error
	for range 10 {
		if err = p.start(); err == nil || !errors.Is(err, errExited) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
	return err
}

// server is what PostgresServer and LDAPServer share: the process, the
// folder, and the outage controls, which only a private server (from
// NewPostgres or NewLDAP) allows, since other tests use a shared one.
type server struct {
	kind, ctor string // "PostgresServer", "NewPostgres": for messages
	shared     bool
	dir        string
	proc       *proc
}

// Stop stops the server and returns once it is down: open connections are
// closed, new ones refused. The data stays for [server.Start].
func (s *server) Stop(t testing.TB) {
	t.Helper()
	s.control(t, "Stop", s.proc.stop)
}

// Start starts the server again after [server.Stop], on the same ports,
// and returns once it answers. It does nothing if the server runs.
func (s *server) Start(t testing.TB) {
	t.Helper()
	s.control(t, "Start", s.proc.restart)
}

// Pause stops every process of the server with SIGSTOP (PostgreSQL's
// backends too, in sessions of their own) and returns once they all have
// stopped: the kernel still accepts connections, but nothing answers, as
// on a hung host. [server.Resume] continues it; the test's end does too.
// lib/pq, when a query's context ends, waits for its cancel request to be
// answered, which a paused server never does. If the test binary is killed
// while a server is paused, its stopped processes are left behind.
func (s *server) Pause(t testing.TB) {
	t.Helper()
	s.control(t, "Pause", func() error { return s.proc.signal(syscall.SIGSTOP) })
}

// Resume continues a server stopped by [server.Pause].
func (s *server) Resume(t testing.TB) {
	t.Helper()
	s.control(t, "Resume", func() error { return s.proc.signal(syscall.SIGCONT) })
}

func (s *server) control(t testing.TB, method string, do func() error) {
	t.Helper()
	if s.shared {
		t.Fatalf("testenv: %s.%s on the shared server, which other tests use: use testenv.%s", s.kind, method, s.ctor)
	}
	if err := do(); err != nil {
		t.Fatal(err)
	}
}
