//go:build !linux

package main

import (
	"errors"
	"os"
)

// isTerminal is false off Linux: the password is read as a line from
// standard input (echo it from a file or a pipe).
func isTerminal(f *os.File) bool { return false }

func readPasswordNoEcho(f *os.File) (string, error) {
	return "", errors.New("reading a password from the terminal is only supported on Linux")
}
