package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// debianPackages are the peers installed from Debian, each with a program
// (or check) that says it is there.
var debianPackages = []struct{ pkg, have string }{
	{"apache2", "/usr/sbin/apache2"},
	{"apache2-utils", "htpasswd"},
	{"radicale", "/usr/bin/radicale"},
	{"python3-passlib", "python3-passlib"},
	{"python3-bcrypt", "python3-bcrypt"},
}

// install installs the Debian packages that are missing (as root, with
// apt-get; the packages' own services are kept from starting) or says what
// to install.
func install() error {
	var need []string
	for _, p := range debianPackages {
		ok := false
		switch {
		case strings.HasPrefix(p.have, "python3-"):
			mod := strings.TrimPrefix(p.have, "python3-")
			ok = exec.Command("/usr/bin/python3", "-c", "import "+mod).Run() == nil
		case filepath.IsAbs(p.have):
			_, err := os.Stat(p.have)
			ok = err == nil
		default:
			_, err := exec.LookPath(p.have)
			ok = err == nil
		}
		if !ok {
			need = append(need, p.pkg)
		}
	}
	if len(need) == 0 {
		return nil
	}
	if _, err := exec.LookPath("apt-get"); err != nil || os.Geteuid() != 0 {
		return fmt.Errorf("missing packages: %s (on Debian/Ubuntu: sudo apt-get install %s)", strings.Join(need, " "), strings.Join(need, " "))
	}
	fmt.Fprintf(os.Stderr, "benchpeers: apt-get install %s\n", strings.Join(need, " "))
	// Keep apache2 from starting a system-wide server on port 80.
	const policy = "/usr/sbin/policy-rc.d"
	if _, err := os.Stat(policy); os.IsNotExist(err) {
		if err := os.WriteFile(policy, []byte("#!/bin/sh\nexit 101\n"), 0o755); err != nil {
			return err
		}
		defer os.Remove(policy)
	}
	for _, args := range [][]string{{"update", "-q"}, append([]string{"install", "-y", "-q", "--no-install-recommends"}, need...)} {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("apt-get %s: %w", args[0], err)
		}
	}
	return nil
}

// hacdiasVersion is the hacdias/webdav release compared. v5 is not served
// by the module proxy here; v4.2.0 is its last v4 (Go's x/net/webdav
// behind Basic authentication with plain or bcrypt passwords, zap logging).
const hacdiasVersion = "v4.2.0"

// hacdiasSum pins the module's content (go.sum lines): the checksum
// database does not list it, so the build checks the download against these.
const hacdiasSum = `github.com/hacdias/webdav/v4 v4.2.0 h1:1UYbn2Z4iacah7pj9brFdKSMqwSHa0a8aWKSOeJBCGQ=
github.com/hacdias/webdav/v4 v4.2.0/go.mod h1:+YwxmXAJ1vMHCSrX5YmEctIuM1ADJIDD3z9VRRerVQQ=
`

// buildHacdias builds hacdias/webdav at hacdiasVersion from the Go module
// proxy in a module of its own under dir (go install pkg@version asks the
// proxy for the module's version list, which it refuses) and returns the
// program.
func buildHacdias(dir string) (string, error) {
	mod := filepath.Join(dir, "hacdias-webdav")
	if err := os.MkdirAll(mod, 0o755); err != nil {
		return "", err
	}
	files := map[string]string{
		"go.mod":   "module benchpeers/hacdias\n\ngo 1.26\n\nrequire github.com/hacdias/webdav/v4 " + hacdiasVersion + "\n",
		"go.sum":   hacdiasSum,
		"tools.go": "package tools\n\nimport _ \"github.com/hacdias/webdav/v4/cmd\"\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(mod, name), []byte(text), 0o644); err != nil {
			return "", err
		}
	}
	bin := filepath.Join(mod, "webdav")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/hacdias/webdav/v4")
	cmd.Dir = mod
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build hacdias/webdav %s: %v\n%s", hacdiasVersion, err, out)
	}
	return bin, nil
}

// buildDavserver builds the example server with the bench-only switch that
// turns authentication off (-insecure-no-auth-as).
func buildDavserver(dir string) (string, error) {
	bin := filepath.Join(dir, "davserver")
	out, err := exec.Command("go", "build", "-tags", "appauth_insecure_bench", "-o", bin, "github.com/appauth/appauth/examples/davserver").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build davserver: %v\n%s", err, out)
	}
	return bin, nil
}
