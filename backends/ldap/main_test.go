package ldap_test

import (
	"testing"

	"github.com/appauth/appauth/internal/testenv"
)

// TestMain stops the test servers that the tests started (see testenv.Main).
func TestMain(m *testing.M) { testenv.Main(m) }
