package benchpair

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CPU time is what a benchmark on a shared machine can compare where
// throughput cannot: other work slows every pass, but it does not change
// how much CPU each request took.

// ProcessCPU returns the CPU time (user and system) this process has used.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// PostgresCPU returns a function that reads the CPU time used so far by
// the processes of the PostgreSQL server that db is connected to (every
// child of its postmaster: backends and helpers), from /proc: the server
// must run on this machine. It returns nil when that cannot be found (not
// PostgreSQL, or no /proc).
func PostgresCPU(ctx context.Context, db *sql.DB) func() time.Duration {
	var pid int
	if err := db.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		return nil
	}
	st, err := procStat(pid)
	if err != nil {
		return nil
	}
	return func() time.Duration { return childrenCPU(st.ppid) }
}

type procInfo struct {
	ppid int
	cpu  time.Duration
}

// procStat reads a process's parent and its CPU time so far (schedstat:
// nanoseconds on a CPU).
func procStat(pid int) (procInfo, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procInfo{}, err
	}
	// The command name is in parentheses and may hold spaces.
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(f) < 2 {
		return procInfo{}, fmt.Errorf("/proc/%d/stat: too short", pid)
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return procInfo{}, err
	}
	sched, err := os.ReadFile(fmt.Sprintf("/proc/%d/schedstat", pid))
	if err != nil {
		return procInfo{}, err
	}
	fs := strings.Fields(string(sched))
	if len(fs) == 0 {
		return procInfo{}, fmt.Errorf("/proc/%d/schedstat: empty", pid)
	}
	ns, err := strconv.ParseInt(fs[0], 10, 64)
	return procInfo{ppid: ppid, cpu: time.Duration(ns)}, err
}

// childrenCPU sums the CPU time of parent's children.
func childrenCPU(parent int) time.Duration {
	ents, _ := os.ReadDir("/proc")
	var sum time.Duration
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := procStat(pid); err == nil && st.ppid == parent {
			sum += st.cpu
		}
	}
	return sum
}
