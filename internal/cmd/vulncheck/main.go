// Command vulncheck runs govulncheck against this module with the
// vulnerability data of a pinned golang.org/x/vulndb module version, fetched
// from the module proxy like any dependency, so it needs no access to
// vuln.go.dev. It fails when the code calls a known vulnerability in a
// module it depends on.
//
// Standard-library findings depend on the Go release that builds the
// binaries, not on this repository: they are listed with the release that
// fixes them, and fail the check only with -stdlib.
//
// Usage (from the repository root; `make test` runs it):
//
//	go run ./internal/cmd/vulncheck [-stdlib] [packages]
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
)

// Pinned versions; raise vulndb to refresh the data (its date is the
// pseudo-version's timestamp).
const (
	govulncheck = "golang.org/x/vuln/cmd/govulncheck@v1.9.0"
	vulndb      = "golang.org/x/vulndb@v0.0.0-20261105234957-e22db6528018"
)

func main() {
	stdlib := flag.Bool("stdlib", false, "also fail on vulnerabilities of the standard library (the Go release in use)")
	flag.Parse()
	pkgs := flag.Args()
	if len(pkgs) == 0 {
		pkgs = []string{"./..."}
	}
	if err := run(pkgs, *stdlib); err != nil {
		fmt.Fprintln(os.Stderr, "vulncheck:", err)
		os.Exit(1)
	}
}

func run(pkgs []string, failStdlib bool) error {
	dir, err := download(vulndb)
	if err != nil {
		return err
	}
	// The module holds one OSV file per entry in data/osv; govulncheck reads
	// such a folder as a database and indexes it itself.
	args := append([]string{"run", govulncheck, "-db", "file://" + dir + "/data/osv", "-format", "json", "-test"}, pkgs...)
	cmd := exec.Command("go", args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		// With -format json, govulncheck exits 0 whatever it finds; any
		// other status is a failure (packages that do not load, ...), even
		// after it has written part of its output.
		return fmt.Errorf("govulncheck: %w", err)
	}
	called, err := calledFindings(bytes.NewReader(out))
	if err != nil {
		return err
	}
	var failed, notices []string
	for _, f := range called {
		line := fmt.Sprintf("%s in %s %s (fixed in %s), called from %s", f.OSV, f.Trace[0].Module, f.Trace[0].Version, f.FixedVersion, f.caller())
		if f.Trace[0].Module == "stdlib" && !failStdlib {
			notices = append(notices, line)
		} else {
			failed = append(failed, line)
		}
	}
	if len(notices) > 0 {
		fmt.Printf("vulncheck: the Go release in use has %d called vulnerabilities; build releases with the Go version that fixes them:\n  %s\n",
			len(notices), strings.Join(notices, "\n  "))
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d called vulnerabilities in dependencies (data: %s):\n  %s", len(failed), vulndb, strings.Join(failed, "\n  "))
	}
	fmt.Printf("vulncheck: no called vulnerabilities in dependencies (data: %s)\n", vulndb)
	return nil
}

// download fetches a module into the module cache and returns its folder.
func download(module string) (string, error) {
	out, err := exec.Command("go", "mod", "download", "-json", module).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s%s", err, ee.Stderr, out)
		}
		return "", fmt.Errorf("go mod download %s: %w", module, err)
	}
	var m struct{ Dir string }
	if err := json.Unmarshal(out, &m); err != nil || m.Dir == "" {
		return "", fmt.Errorf("go mod download %s: no folder in %q", module, out)
	}
	return m.Dir, nil
}

type frame struct {
	Module, Version, Package, Function, Receiver string
	Position                                     *struct {
		Filename string
		Line     int
	}
}

type finding struct {
	OSV          string
	FixedVersion string `json:"fixed_version"`
	Trace        []frame
}

// caller returns the first frame of the trace in this module's own code.
func (f finding) caller() string {
	for _, fr := range slices.Backward(f.Trace) {
		if fr.Position != nil && !strings.Contains(fr.Position.Filename, "/pkg/mod/") {
			return fmt.Sprintf("%s:%d", fr.Position.Filename, fr.Position.Line)
		}
	}
	return f.Trace[len(f.Trace)-1].Package
}

// calledFindings reads govulncheck's JSON stream and returns one finding per
// vulnerability whose vulnerable function the code calls.
func calledFindings(r io.Reader) ([]finding, error) {
	seen := map[string]bool{}
	var called []finding
	dec := json.NewDecoder(r)
	for {
		var msg struct{ Finding *finding }
		if err := dec.Decode(&msg); err == io.EOF {
			return called, nil
		} else if err != nil {
			return nil, fmt.Errorf("reading govulncheck output: %w", err)
		}
		f := msg.Finding
		if f == nil || len(f.Trace) == 0 || f.Trace[0].Function == "" || seen[f.OSV] {
			continue
		}
		seen[f.OSV] = true
		called = append(called, *f)
	}
}
