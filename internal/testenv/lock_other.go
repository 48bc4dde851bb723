//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package testenv

import "os"

// tryLock does no locking on this system: outages (StopPostgres) may then
// disturb tests of other packages running at the same time.
func tryLock(f *os.File, exclusive bool) (bool, error) { return true, nil }

// unlockFile does nothing on this system.
func unlockFile(f *os.File) {}
