package main

import (
	"log/slog"
	"net/http"
	"sync/atomic"
)

// Readiness tells load balancers whether to send traffic; it flips once, at shutdown.
type Readiness struct {
	draining atomic.Bool
}

// Drain marks the process as shutting down: /readyz answers 503 from now on.
func (r *Readiness) Drain() { r.draining.Store(true) }

// Draining reports whether Drain was called.
func (r *Readiness) Draining() bool { return r.draining.Load() }

// NewServer returns the gateway's complete HTTP handler.
// A nil metrics serves no /metrics and records nothing; a nil access writes no access log.
func NewServer(logger *slog.Logger, access *accessLog, catalog *Catalog, worker *WorkerClient, readiness *Readiness, maxBodyBytes int64, metrics *Metrics) http.Handler {
	mux := http.NewServeMux()
	addRoutes(mux, logger, catalog, worker, readiness, maxBodyBytes, metrics)
	return withRequestContext(logger, access, metrics, closingWhileDraining(readiness, mux))
}

// closingWhileDraining asks each client to close its connection once the drain has begun, so
// that clients reconnect elsewhere. Connections stay open until then: closing idle ones at the
// start of the drain would race with a load balancer that has not yet seen the backend unready
// and sends on one (its request meets a reset). They close at the end of the drain.
func closingWhileDraining(readiness *Readiness, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if readiness.Draining() {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
}
