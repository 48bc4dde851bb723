//go:build !unix

package davstore

import "os"

func inode(os.FileInfo) (uint64, bool) { return 0, false }
