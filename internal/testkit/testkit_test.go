package testkit_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/backends/memory"
	"github.com/appauth/appauth/internal/testkit"
)

func TestTypo(t *testing.T) {
	for _, last := range "23456789abcdefghjkmnpqrstuvwxyzX" {
		s := "aap-2345-abc" + string(last)
		got := testkit.Typo(s)
		if len(got) != len(s) || got[:len(s)-1] != s[:len(s)-1] || strings.EqualFold(got, s) {
			t.Errorf("Typo(%q) = %q, want one other last character", s, got)
		}
	}
}

func TestStoreFail(t *testing.T) {
	s := testkit.NewStore(memory.NewStore())
	down := errors.New("down")
	s.Fail(down)
	if _, err := s.CredentialByHash(t.Context(), []byte("h")); !errors.Is(err, down) {
		t.Errorf("CredentialByHash while failing: %v", err)
	}
	if _, err := s.ListCredentials(t.Context(), "u", auth.KindAppPassword); !errors.Is(err, down) {
		t.Errorf("ListCredentials while failing: %v", err)
	}
	s.Fail(nil)
	if _, err := s.CredentialByHash(t.Context(), []byte("h")); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("CredentialByHash after Fail(nil): %v, want ErrNotFound", err)
	}
	if n := s.Lookups.Load(); n != 2 {
		t.Errorf("Lookups = %d, want 2", n)
	}
}

func TestLimiter(t *testing.T) {
	var l testkit.Limiter
	a := auth.Attempt{Username: "alice"}
	if err := l.Allow(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	l.Done(a, false)
	l.Refuse(auth.ErrThrottled)
	if err := l.Allow(t.Context(), a); !errors.Is(err, auth.ErrThrottled) {
		t.Errorf("Allow after Refuse: %v", err)
	}
	l.Done(a, true)
	if f, s := l.Counts(); f != 1 || s != 1 || len(l.Allowed()) != 2 || len(l.Results()) != 2 {
		t.Errorf("Counts %d, %d; %d allowed, %d results", f, s, len(l.Allowed()), len(l.Results()))
	}
}
