package testkit

import (
	"net"
	"net/http"
)

// LoopbackClients returns n HTTP clients that connect from 127.0.0.2,
// 127.0.0.3, ..., one address each, as n devices on their own networks
// would: a Throttle counts attempts in flight per address, so load from one
// address is throttled like a burst of guesses. Close their idle
// connections when done.
func LoopbackClients(n int) []*http.Client {
	clients := make([]*http.Client, n)
	for i := range clients {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, byte(2+i/250), byte(2+i%250))}}
		clients[i] = &http.Client{Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 1}}
	}
	return clients
}
