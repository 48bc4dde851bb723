package davstore

import (
	"hash/fnv"
	"os"
)

// fileID is a stable number for a file: its inode where the system has
// one (fileid_unix.go), else a hash of its name.
func fileID(st os.FileInfo) uint64 {
	if ino, ok := inode(st); ok {
		return ino
	}
	h := fnv.New64a()
	h.Write([]byte(st.Name()))
	return h.Sum64()
}
