package main

import (
	"os"
	"testing"

	"github.com/appauth/appauth/internal/testenv"
)

// TestMain stops the test servers that the tests started (see testenv.Main).
func TestMain(m *testing.M) {
	if os.Getenv(loadEnv) != "" { // a load generator for BenchmarkAuthCPU
		os.Exit(runLoad())
	}
	testenv.Main(m)
}
