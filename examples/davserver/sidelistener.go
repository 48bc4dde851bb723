package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// sideListener serves a small handler (metrics and probes, the RADIUS
// endpoint) on a listen address of its own, apart from -addr.
type sideListener struct {
	ln     net.Listener
	srv    *http.Server
	served chan error
}

// serve starts h with short timeouts: the clients are machines of the
// operator's (rlm_rest waits 4 s by default), and a slow one holds
// nothing long.
func (s *sideListener) serve(h http.Handler, logger *slog.Logger) {
	s.srv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	s.served = make(chan error, 1)
	go func() { s.served <- s.srv.Serve(s.ln) }()
}

// close stops it, bounded.
func (s *sideListener) close() error {
	if s.srv == nil {
		return s.ln.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		s.srv.Close()
	}
	<-s.served
	return nil
}
