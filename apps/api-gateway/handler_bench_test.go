package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

// discardResponse is the least a ResponseWriter can be: what the handler writes is dropped.
type discardResponse struct{ header http.Header }

func (d *discardResponse) Header() http.Header         { return d.header }
func (d *discardResponse) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardResponse) WriteHeader(int)             {}

// BenchmarkReadRoutes is the gateway's handler as deployed (metrics on, the JSON access log
// through the batched writer) serving each read route, without the network: what the gateway
// adds to net/http per request, in time and allocations (go test -bench ReadRoutes -benchmem).
func BenchmarkReadRoutes(b *testing.B) {
	catalog, err := loadCatalog("catalog.json")
	if err != nil {
		b.Fatal(err)
	}
	out := newBatchedWriter(io.Discard)
	defer out.Close()
	logger := slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg, err := loadConfig(envFrom(map[string]string{"CATALOG_PATH": "catalog.json"}))
	if err != nil {
		b.Fatal(err)
	}
	metrics := NewMetrics()
	brk := newLoggedBreaker(cfg, nil, logger, metrics)
	handler := NewServer(logger, newAccessLog(out, slog.LevelInfo), catalog, NewWorkerClient(cfg, brk, metrics), &Readiness{}, cfg.MaxBodyBytes, metrics)
	for _, path := range []string{"/healthz", "/v1/modules", "/v1/modules/summarize"} {
		b.Run(path, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, path, nil)
			req.RemoteAddr = "127.0.0.1:40000"
			b.ReportAllocs()
			for b.Loop() {
				// net/http gives every request a header map of its own.
				w := &discardResponse{header: make(http.Header, 4)}
				handler.ServeHTTP(w, req)
			}
		})
	}
}
