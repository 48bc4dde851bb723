package testenv

import (
	"os/exec"
	"strings"
	"testing"
)

// ChromiumFlags are the command-line flags browser tests start Chromium
// with, besides a temporary --user-data-dir: headless, no sandbox (tests
// may run as root in a container), and nothing that reaches the network,
// which on a machine without one makes Chromium hang on lookups.
var ChromiumFlags = []string{
	"--headless",
	"--no-sandbox",
	"--disable-gpu",
	"--disable-quic",
	"--no-first-run",
	"--no-default-browser-check",
	"--disable-background-networking",
	"--disable-component-update",
	"--disable-sync",
	"--disable-extensions",
	"--disable-default-apps",
	"--disable-dev-shm-usage",
	"--metrics-recording-only",
	"--mute-audio",
	"--password-store=basic",
	"--use-mock-keychain",
}

// Chromium returns the path of the Chromium (or Chrome) program, for a
// browser test to start with [ChromiumFlags]. If there is none (chromium,
// chromium-browser or google-chrome on PATH, or in /usr/bin), the test is
// skipped with a message naming `make test`, or fails when [Strict].
func Chromium(t testing.TB) string {
	t.Helper()
	p, ok := findProgram([]string{"chromium", "chromium-browser", "google-chrome-stable", "google-chrome"}, "/usr/bin")
	if !ok {
		unavailable(t, "testenv: Chromium is not installed: no chromium, chromium-browser or google-chrome on PATH (Debian package chromium)")
	}
	return p
}

// Program returns the path of a client program that a test runs, such as
// "litmus" or "/usr/bin/python3", after running it once with check (for
// example "--version", or "-c", "import caldav") if check is given. If the
// program is missing, or the check fails, the test is skipped with a
// message naming `make test`, or fails when [Strict].
func Program(t testing.TB, name string, check ...string) string {
	t.Helper()
	p, err := exec.LookPath(name) // a path with a slash is checked as it is
	if err == nil && len(check) > 0 {
		var out []byte
		if out, err = exec.Command(p, check...).CombinedOutput(); err != nil {
			unavailable(t, "testenv: %s %s failed: %v: %s (internal/testenv/install.sh installs the Debian packages litmus, vdirsyncer, curl, python3-caldav, nextcloud-desktop-cmd)",
				name, strings.Join(check, " "), err, lastLine(out))
		}
	}
	if err != nil {
		unavailable(t, "testenv: %s is not installed: %v (internal/testenv/install.sh installs the Debian packages litmus, vdirsyncer, curl, python3-caldav, nextcloud-desktop-cmd)", name, err)
	}
	return p
}

func lastLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	return s[strings.LastIndex(s, "\n")+1:]
}
