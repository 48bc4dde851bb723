package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/appauth/appauth/internal/testenv"
)

// process is one server program, run under taskset on the servers' core,
// in a process group of its own that dies with this program (started as
// internal/testenv starts its servers).
type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

// startProcess starts argv in dir on cpu (taskset; -1: anywhere), with its
// output appended to logFile and env added to a clean environment.
func startProcess(name, dir, logFile string, cpu int, env []string, argv ...string) (*process, error) {
	if cpu >= 0 {
		argv = append([]string{"taskset", "-c", strconv.Itoa(cpu)}, argv...)
	}
	logf, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, logf, logf
	cmd.Env = append(cleanEnv(), env...)
	if err := testenv.StartChild(cmd); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan struct{}), log: logFile}
	go func() { cmd.Wait(); close(p.done) }()
	return p, nil
}

// cleanEnv is the environment without the variables of this project
// (APPAUTH_*), which davserver would take as settings.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if len(kv) < 8 || kv[:8] != "APPAUTH_" {
			env = append(env, kv)
		}
	}
	return env
}

// pid is the server's main process (taskset execs the program).
func (p *process) pid() int { return p.cmd.Process.Pid }

// waitListening returns once addr accepts a connection, or fails when the
// process exits or 60 seconds pass.
func (p *process) waitListening(addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited while starting; end of %s:\n%s", p.name, p.log, tail(p.log))
		case <-ctx.Done():
			return fmt.Errorf("%s does not listen on %s after a minute; end of %s:\n%s", p.name, addr, p.log, tail(p.log))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM to the process group and waits for the exit (SIGKILL
// after 15 seconds).
func (p *process) stop() {
	syscall.Kill(-p.pid(), syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.done
	}
}

// tail is the end of a log file, for error messages.
func tail(name string) string {
	b, _ := os.ReadFile(name)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// freeAddr returns a loopback address with a port that was free a moment
// ago (the server that gets it binds it at once).
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// pinTree moves the processes roots and every thread and process below them
// to cpu (children they fork later inherit it).
func pinTree(cpu int, roots ...int) error {
	var errs []error
	for _, pid := range treePIDs(roots...) {
		if out, err := exec.Command("taskset", "-a", "-p", "-c", strconv.Itoa(cpu), strconv.Itoa(pid)).CombinedOutput(); err != nil {
			if _, serr := os.Stat("/proc/" + strconv.Itoa(pid)); serr == nil { // not merely exited
				errs = append(errs, fmt.Errorf("taskset %d: %v: %s", pid, err, out))
			}
		}
	}
	return errors.Join(errs...)
}
