package testenv

import (
	"os"
	"testing"
)

// EnvChromium holds the path of the Chromium (or Chrome) program that browser
// tests drive headless. The harness finds or installs it (Debian's chromium).
const EnvChromium = "APPAUTH_TEST_CHROMIUM"

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

// Chromium returns the path of the Chromium program in APPAUTH_TEST_CHROMIUM.
// If it is unset or not an executable file, the test is skipped with a
// message naming `make test`, or fails when [Strict].
func Chromium(t testing.TB) string {
	t.Helper()
	path := os.Getenv(EnvChromium)
	if path == "" {
		unavailable(t, "testenv: Chromium is not available: %s is not set", EnvChromium)
		return ""
	}
	st, err := os.Stat(path)
	if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		unavailable(t, "testenv: Chromium is not available: %s=%s is not an executable file", EnvChromium, path)
		return ""
	}
	return path
}
