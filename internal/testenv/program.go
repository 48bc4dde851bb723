package testenv

import "os/exec"

// For programs that are not tests, such as internal/cmd/benchpeers (make
// bench-peers), which compares servers that need a directory and a
// database: the same throwaway servers, started and stopped by the caller.

// StartPostgres starts a private PostgreSQL server, as [NewPostgres] does
// for a test; the caller stops it with [PostgresServer.Close]. A missing
// PostgreSQL is an error that names the Debian package.
func StartPostgres() (*PostgresServer, error) { return startPostgres() }

// Close stops a server from [StartPostgres] and removes its folder.
func (s *PostgresServer) Close() { s.close() }

// StartLDAP starts a private slapd with the fixture directory, as
// [NewLDAP] does for a test; the caller stops it with [LDAPServer.Close].
func StartLDAP() (*LDAPServer, error) { return startLDAP() }

// Close stops a server from [StartLDAP] and removes its folder.
func (s *LDAPServer) Close() { s.close() }

// PID returns the process ID of the server's main process (its children,
// such as PostgreSQL's backends, are below it), or 0 when it is stopped.
func (s *server) PID() int {
	s.proc.mu.Lock()
	defer s.proc.mu.Unlock()
	if s.proc.cmd == nil {
		return 0
	}
	return s.proc.cmd.Process.Pid
}

// StartChild starts cmd as this package starts its servers: in a process
// group of its own, killed (Pdeathsig) when the calling program dies
// however it ends.
func StartChild(cmd *exec.Cmd) error { return startChild(cmd, nil) }
