package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/appauth/appauth/internal/testenv"
)

// TestFindsCalledVulnerability: a module that calls language.Parse of
// golang.org/x/text v0.3.0 (GO-2021-0113) fails the check, naming the entry
// and the call.
func TestFindsCalledVulnerability(t *testing.T) {
	if !testenv.Strict() {
		t.Skip("needs the Go module proxy; run `make test`")
	}
	dir := t.TempDir()
	files := map[string]string{
		"go.mod": "module scratch\n\ngo 1.26\n\nrequire golang.org/x/text v0.3.0\n",
		"main.go": `package main

import "golang.org/x/text/language"

func main() { language.Parse("en") }
`,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(dir)
	t.Setenv("GOFLAGS", "-mod=mod") // let go.sum be written
	err := run([]string{"./..."}, false)
	if err == nil || !strings.Contains(err.Error(), "GO-2021-0113 in golang.org/x/text v0.3.0") || !strings.Contains(err.Error(), "main.go:5") {
		t.Fatalf("run = %v, want GO-2021-0113 in golang.org/x/text v0.3.0 called from main.go:5", err)
	}
}
