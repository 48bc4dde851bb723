package auth

import (
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"fmt"
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
	if err == nil && len(state) != stateSize {
		err = fmt.Errorf("%d bytes, want %d", len(state), stateSize)
	}
	if err != nil {
		panic("auth: SHA-256 cannot marshal its state: " + err.Error())
	}
	return state
}

// sum sets out to HMAC-SHA256(key, msg). Each hash is given its message
// already padded, in whole blocks, which SHA-256 compresses straight from
// this stack, and its digest is read from the state it marshals: Sum would
// copy the state and buffer the padding first, a tenth of a MAC.
func (k *macKey) sum(out *hashKey, msg []byte) {
	d := sha256.New() // on the stack: every call below is devirtualized
	u, a := d.(encoding.BinaryUnmarshaler), d.(encoding.BinaryAppender)
	var blocks [2 * sha256.BlockSize]byte
	n := pad(blocks[:], msg, sha256.BlockSize+len(msg))
	if n == 0 { // longer than any token: the plain way
		k.sumLong(out, msg)
		return
	}
	var state [stateSize]byte
	if u.UnmarshalBinary(k.inner) != nil {
		panic(errRestore)
	}
	d.Write(blocks[:n])
	a.AppendBinary(state[:0])
	pad(blocks[:sha256.BlockSize], state[stateDigest:stateDigest+sha256.Size], sha256.BlockSize+sha256.Size)
	if u.UnmarshalBinary(k.outer) != nil {
		panic(errRestore)
	}
	d.Write(blocks[:sha256.BlockSize])
	a.AppendBinary(state[:0])
	copy(out[:], state[stateDigest:])
}

// The marshalled state of SHA-256: a 4-byte magic, the digest so far,
// the buffered block and the length (see newMacKey's check).
const (
	stateDigest = 4
	stateSize   = stateDigest + sha256.Size + sha256.BlockSize + 8
)

// pad writes msg, the last part of a message of total bytes, with SHA-256's
// padding into dst, and returns its length in whole blocks, or 0 if it
// does not fit.
func pad(dst, msg []byte, total int) int {
	n := (len(msg) + 9 + sha256.BlockSize - 1) &^ (sha256.BlockSize - 1)
	if n > len(dst) {
		return 0
	}
	copy(dst, msg)
	dst[len(msg)] = 0x80
	clear(dst[len(msg)+1 : n-8])
	binary.BigEndian.PutUint64(dst[n-8:], uint64(total)*8)
	return n
}

// sumLong is sum for a message too long for its stack blocks.
func (k *macKey) sumLong(out *hashKey, msg []byte) {
	d := sha256.New()
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
