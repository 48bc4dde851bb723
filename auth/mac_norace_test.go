//go:build !race

package auth

import "testing"

// TestMacAllocatesNothing: a MAC's state and digest stay on the caller's
// stack. Not under the race detector: its instrumentation makes SHA-256's
// AppendBinary allocate (make test runs the allocation tests without it).
func TestMacAllocatesNothing(t *testing.T) {
	k := newMacKey(make([]byte, MinPepperLen))
	msg := []byte("app_0123456789abcdefghijklmnopqrstuv")
	if n := testing.AllocsPerRun(100, func() {
		var out hashKey
		k.sum(&out, msg)
	}); n != 0 {
		t.Errorf("a MAC allocates %v times, want 0 (its digest must stay on the stack)", n)
	}
}
