package main

import (
	"log/slog"
	"net/http"
)

// addRoutes is the gateway's whole API surface, as listed in contract/openapi.yaml.
// Each path also has a method-less pattern so a wrong method gets the contract's JSON 405
// instead of the mux's plain-text one.
func addRoutes(
	mux *http.ServeMux,
	logger *slog.Logger,
	catalog *Catalog,
	worker *WorkerClient,
	readiness *Readiness,
	maxBodyBytes int64,
	metrics *Metrics,
) {
	mux.Handle("GET /healthz", handleHealthz())
	mux.Handle("/healthz", handleMethodNotAllowed("GET, HEAD"))

	mux.Handle("GET /readyz", handleReadyz(readiness))
	mux.Handle("/readyz", handleMethodNotAllowed("GET, HEAD"))

	mux.Handle("GET /v1/modules", handleListModules(catalog))
	mux.Handle("/v1/modules", handleMethodNotAllowed("GET, HEAD"))

	mux.Handle("GET /v1/modules/{name}", handleGetModule(catalog))
	mux.Handle("/v1/modules/{name}", handleMethodNotAllowed("GET, HEAD"))

	mux.Handle("POST /v1/ai/complete", handleComplete(logger, catalog, worker, maxBodyBytes))
	mux.Handle("/v1/ai/complete", handleMethodNotAllowed("POST"))

	// Not part of the public API contract: the platform's NetworkPolicy admits only the
	// monitoring namespace's scrapers to it.
	if metrics != nil {
		mux.Handle("GET /metrics", metrics.Handler())
		mux.Handle("/metrics", handleMethodNotAllowed("GET, HEAD"))
	}

	mux.Handle("/", handleNotFound())
}
