// Command freeport prints free TCP ports on the loopback interface, one per
// line, for the test harness (internal/testenv/run.sh) to give to throwaway
// servers.
//
// Usage:
//
//	go run ./internal/testenv/cmd/freeport [N]
//
// It prints N (default 1) distinct ports. Each port is found by listening on
// 127.0.0.1:0 and letting the kernel choose; all listeners stay open until
// every port is printed, so the ports are distinct. A port can still be taken
// by someone else between this program exiting and the server binding it, so
// callers should retry with a new port if the server fails to start.
package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
)

func main() {
	n := 1
	if len(os.Args) > 2 {
		fmt.Fprintln(os.Stderr, "usage: freeport [N]")
		os.Exit(2)
	}
	if len(os.Args) == 2 {
		v, err := strconv.Atoi(os.Args[1])
		if err != nil || v < 1 || v > 100 {
			fmt.Fprintln(os.Stderr, "freeport: N must be a number from 1 to 100")
			os.Exit(2)
		}
		n = v
	}
	var listeners []net.Listener
	for range n {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, "freeport:", err)
			os.Exit(1)
		}
		listeners = append(listeners, l)
	}
	for _, l := range listeners {
		fmt.Println(l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range listeners {
		l.Close()
	}
}
