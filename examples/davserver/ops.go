package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// readyTimeout bounds each readiness check: a probe that hangs on a hung
// store would tell the orchestrator nothing.
const readyTimeout = 2 * time.Second

// ops is the operations listener (-metrics-addr): /metrics for Prometheus,
// /healthz (the process is up) and /readyz (the store and the directory
// answer). A nil *ops, when the flag is not given, does nothing.
type ops struct {
	sideListener
	metrics *metrics.Metrics
}

// listenOps listens on -metrics-addr, if given, so that a busy port fails
// the start before anything is created.
func listenOps(cfg *config) (*ops, error) {
	if cfg.metricsAddr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", cfg.metricsAddr)
	if err != nil {
		return nil, fmt.Errorf("-metrics-addr %s: %w", cfg.metricsAddr, err)
	}
	return &ops{sideListener: sideListener{ln: ln}, metrics: metrics.New()}, nil
}

// onEvent is the Manager's event hook: nil without -metrics-addr, so the
// verify path does not even read the clock for metrics.
func (o *ops) onEvent() func(auth.Event) {
	if o == nil {
		return nil
	}
	return o.metrics.Observe
}

// readyCheck is one dependency that /readyz asks.
type readyCheck struct {
	name  string // "store" or "directory": the reason given on a 503
	check func(context.Context) error
}

// start serves the ops endpoints for m and checks, and prints their address.
func (o *ops) start(m *auth.Manager, checks []readyCheck, logger *slog.Logger, stdout io.Writer) {
	if o == nil {
		return
	}
	o.metrics.SetStats(m)
	reg := prometheus.NewRegistry()
	reg.MustRegister(o.metrics, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn), Timeout: 10 * time.Second,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { plain(w, http.StatusOK, "ok") })
	mux.Handle("GET /readyz", readyHandler(checks, o.metrics, logger))
	o.serve(mux, logger)
	url := "http://" + o.ln.Addr().String() + "/"
	fmt.Fprintf(stdout, "Metrics and probes on %s (metrics, healthz, readyz)\n", url)
	logger.Info("serving metrics and probes", "url", url)
}

// close stops the ops listener, bounded.
func (o *ops) close() error {
	if o == nil {
		return nil
	}
	return o.sideListener.close()
}

// readyHandler answers 200 when every check answers within readyTimeout,
// else 503 naming what did not ("store: not answering"). The error itself
// goes to the log only: it may name a host, never a secret, but the probe
// is no place for it.
func readyHandler(checks []readyCheck, m *metrics.Metrics, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, c := range checks {
			err := bounded(r.Context(), readyTimeout, c.check)
			m.SetUp(c.name, err == nil)
			if err != nil {
				logger.Warn("not ready", "check", c.name, "error", err)
				plain(w, http.StatusServiceUnavailable, c.name+": not answering")
				return
			}
		}
		plain(w, http.StatusOK, "ready")
	})
}

// bounded runs check under a deadline and returns by it, even if check
// ignores its context (lib/pq may wait on a hung server).
func bounded(ctx context.Context, d time.Duration, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- check(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%w: no answer within %s", auth.ErrUnavailable, d)
	}
}

// directoryCheck asks a directory that can check itself (LDAP); a users
// file has nothing to be down.
func directoryCheck(dir directory) func(context.Context) error {
	c, ok := dir.(interface{ Check(context.Context) error })
	if !ok {
		return func(context.Context) error { return nil }
	}
	return c.Check
}

func plain(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	io.WriteString(w, msg+"\n")
}
