package memory_test

import (
	"testing"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/authtest"
	"github.com/appauth/appauth/backends/memory"
)

func TestStore(t *testing.T) {
	authtest.RunStoreTests(t, func(t *testing.T) (auth.Store, func() auth.Store) {
		return memory.NewStore(), nil
	})
}
