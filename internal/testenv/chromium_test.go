package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestChromiumMissing(t *testing.T) {
	notExec := filepath.Join(t.TempDir(), "chromium")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, value, want string }{
		{"unset", "", "is not set"},
		{"missing file", filepath.Join(t.TempDir(), "nope"), "not an executable file"},
		{"not executable", notExec, "not an executable file"},
		{"directory", t.TempDir(), "not an executable file"},
	} {
		for _, strict := range []bool{false, true} {
			t.Run(tc.name, func(t *testing.T) {
				t.Setenv(EnvChromium, tc.value)
				if strict {
					t.Setenv(EnvStrict, "1")
				} else {
					t.Setenv(EnvStrict, "")
				}
				f := &fakeTB{TB: t}
				var got string
				f.call(func() { got = Chromium(f) })
				switch {
				case got != "":
					t.Errorf("Chromium = %q, want no path", got)
				case strict && !strings.Contains(f.failed, tc.want):
					t.Errorf("strict: want a failure saying %q, got failure %q skip %q", tc.want, f.failed, f.skipped)
				case !strict && (!strings.Contains(f.skipped, tc.want) || !strings.Contains(f.skipped, "make test")):
					t.Errorf("want a skip saying %q and naming `make test`, got skip %q failure %q", tc.want, f.skipped, f.failed)
				}
			})
		}
	}
}

func TestChromiumFound(t *testing.T) {
	exe := filepath.Join(t.TempDir(), "chromium")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvChromium, exe)
	if got := Chromium(t); got != exe {
		t.Errorf("Chromium = %q, want %q", got, exe)
	}
}
