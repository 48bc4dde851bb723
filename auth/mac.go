package auth

import (
	"crypto/sha256"
	"encoding"
)

// macKey is an HMAC-SHA256 key as precomputed state: the SHA-256 states
// after its inner and outer pad blocks, as crypto/hmac keeps them. Unlike
// an hmac.New value it is never written, so one is shared by all
// goroutines, and a MAC needs no pooled or allocated state: its digest
// lives on the caller's stack.
type macKey struct{ inner, outer []byte }

func newMacKey(key []byte) macKey {
	if len(key) > sha256.BlockSize {
		k := sha256.Sum256(key)
		key = k[:]
	}
	var ipad, opad [sha256.BlockSize]byte
	copy(ipad[:], key)
	copy(opad[:], key)
	for i := range ipad {
		ipad[i] ^= 0x36
		opad[i] ^= 0x5c
	}
	return macKey{inner: padState(ipad[:]), outer: padState(opad[:])}
}

// padState is the marshalled state of SHA-256 after pad.
func padState(pad []byte) []byte {
	d := sha256.New()
	d.Write(pad)
	state, err := d.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		panic("auth: SHA-256 cannot marshal its state: " + err.Error())
	}
	return state
}

// sum sets out to HMAC-SHA256(key, msg).
func (k *macKey) sum(out *hashKey, msg []byte) {
	d := sha256.New() // on the stack: every call below is devirtualized
	u := d.(encoding.BinaryUnmarshaler)
	if u.UnmarshalBinary(k.inner) != nil {
		panic(errRestore)
	}
	d.Write(msg)
	var inner [sha256.Size]byte
	d.Sum(inner[:0])
	if u.UnmarshalBinary(k.outer) != nil {
		panic(errRestore)
	}
	d.Write(inner[:])
	d.Sum(out[:0])
}

// errRestore cannot happen: the states are SHA-256's own.
const errRestore = "auth: SHA-256 cannot restore the state it marshalled"
