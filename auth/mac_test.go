package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"testing"
)

// TestMacKeyIsHMAC checks macKey against crypto/hmac for keys shorter
// than, as long as and longer than SHA-256's block (a long key is hashed
// first), and messages up to two blocks.
func TestMacKeyIsHMAC(t *testing.T) {
	for _, keyLen := range []int{MinPepperLen, sha256.BlockSize, sha256.BlockSize + 1, 200} {
		key := make([]byte, keyLen)
		for i := range key {
			key[i] = byte(i*7 + keyLen)
		}
		k := newMacKey(key)
		for _, msgLen := range []int{0, 1, 33, 55, 56, 63, 64, 100, 119, 120, 128, 200} {
			msg := bytes.Repeat([]byte{byte(msgLen)}, msgLen)
			want := hmac.New(sha256.New, key)
			want.Write(msg)
			var got hashKey
			k.sum(&got, msg)
			if !bytes.Equal(got[:], want.Sum(nil)) {
				t.Errorf("key %d bytes, message %d bytes: %x, want %x", keyLen, msgLen, got, want.Sum(nil))
			}
		}
	}
}
