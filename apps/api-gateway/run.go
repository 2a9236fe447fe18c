package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

const usage = `api-gateway: JSON API over the worker-module catalog and proxy to the AI Worker.

Configured through environment variables:
  PORT              listen port (default 8080; 0 picks a free port)
  CATALOG_PATH      catalog JSON file (default /etc/api-gateway/catalog.json)
  WORKER_URL        AI Worker base URL; empty makes /v1/ai/complete answer 503
  WORKER_API_TOKEN_FILE  file holding the bearer token sent to the Worker (secret)
  WORKER_API_TOKEN  the token itself, for local runs (not with WORKER_API_TOKEN_FILE)
  WORKER_AUTH       bearer (default: a token is required with WORKER_URL) or none
  WORKER_TIMEOUT    per-call Worker timeout (default 5s)
  BREAKER_FAILURES  consecutive failures that open the circuit breaker (default 5)
  BREAKER_COOLDOWN  time the breaker stays open before one probe (default 10s)
  SHUTDOWN_DRAIN    time requests are still served after SIGTERM (default 5s)
  SHUTDOWN_TIMEOUT  time in-flight requests get once the listener closes (default 10s)
  LOG_LEVEL         debug, info, warn or error (default info)
  MAX_BODY_BYTES    request body limit in bytes (default 131072)
  MAX_CONNECTIONS   open connections at most; at the cap a new one replaces the longest-idle
                    keep-alive one, or gets 503 if every one is busy (default 1024)
  METRICS_ENABLED   serve Prometheus metrics at /metrics (default true)
`

// run starts the gateway and blocks until it has shut down. A SIGTERM or SIGINT, or the
// cancellation of ctx, starts the graceful shutdown: readiness flips to 503 at once,
// requests (in-flight and new) are served for SHUTDOWN_DRAIN so load balancers can stop
// routing here, then the server stops accepting and waits up to SHUTDOWN_TIMEOUT for
// in-flight requests.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	if len(args) > 1 {
		if args[1] == "-h" || args[1] == "-help" || args[1] == "--help" {
			_, err := io.WriteString(stdout, usage)
			return err
		}
		return fmt.Errorf("unexpected argument %q: api-gateway is configured through environment variables (see -help)", args[1])
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	logOutput := newBatchedWriter(stdout)
	defer logOutput.Close()
	logger := slog.New(slog.NewJSONHandler(logOutput, &slog.HandlerOptions{Level: cfg.LogLevel}))
	catalog, err := loadCatalog(cfg.CatalogPath)
	if err != nil {
		return err
	}

	var metrics *Metrics // nil records nothing
	if cfg.MetricsEnabled {
		metrics = NewMetrics()
	}
	readiness := &Readiness{}
	brk := newLoggedBreaker(cfg, time.Now, logger, metrics)
	metrics.WatchBreaker(brk)
	worker := NewWorkerClient(cfg, brk, metrics)
	handler := NewServer(logger, newAccessLog(logOutput, cfg.LogLevel), catalog, worker, readiness, cfg.MaxBodyBytes, metrics)

	// Every request's context derives from serving; cancelling it with errShuttingDown tells
	// the requests still running when SHUTDOWN_TIMEOUT ends to answer 503 and return.
	serving, stopServing := context.WithCancelCause(context.WithoutCancel(ctx))
	defer stopServing(nil)
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		// A completion may take the whole WORKER_TIMEOUT before its answer is written.
		WriteTimeout:   cfg.WorkerTimeout + 10*time.Second,
		IdleTimeout:    60 * time.Second,
		MaxHeaderBytes: 32 << 10,
		ErrorLog:       slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		BaseContext:    func(net.Listener) context.Context { return serving },
		// "OPTIONS *" reaches the handler (a JSON 404) instead of net/http's empty 200.
		DisableGeneralOptionsHandler: true,
	}
	tcp, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(cfg.Port)))
	if err != nil {
		return fmt.Errorf("listen on port %d: %w", cfg.Port, err)
	}
	ln := newGuardedListener(tcp, cfg.MaxConnections, srv.ReadHeaderTimeout, logger)
	ln.onReject = func(method string, status int) { metrics.RequestServed("", method, status, 0) }
	ln.onIdleClosed = metrics.IdleConnectionClosed
	metrics.WatchConnections(ln)
	srv.ConnState = ln.trackState
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	logger.Info("listening",
		"addr", ln.Addr().String(),
		"modules", len(catalog.List()),
		"worker_configured", cfg.WorkerURL != "",
		"worker_auth", cfg.WorkerAuth,
		"worker_token_set", cfg.WorkerAPIToken != "",
		"worker_timeout", cfg.WorkerTimeout.String(),
		"shutdown_drain", cfg.ShutdownDrain.String(),
		"shutdown_timeout", cfg.ShutdownTimeout.String(),
		"max_connections", cfg.MaxConnections,
		"metrics", cfg.MetricsEnabled,
	)

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	// From here a second signal kills the process the default way, for an impatient operator.
	stop()

	// Each response now closes its connection (see closingWhileDraining), so clients reconnect
	// elsewhere once the load balancer has noticed, instead of holding a keep-alive to a dying
	// process; idle connections are closed only when the drain is over.
	readiness.Drain()
	logger.Info("shutdown: draining; readiness is 503, requests are still served", "drain", cfg.ShutdownDrain.String())
	select {
	case <-time.After(cfg.ShutdownDrain):
	case err := <-serveErr:
		return fmt.Errorf("serve during drain: %w", err)
	}

	srv.SetKeepAlivesEnabled(false)
	logger.Info("shutdown: closing listener, waiting for in-flight requests", "timeout", cfg.ShutdownTimeout.String())
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		// Time is up: the requests still running answer 503 now, and get a moment to write it.
		stopServing(errShuttingDown)
		lastCall, cancelLastCall := context.WithTimeout(context.Background(), finalAnswerGrace)
		defer cancelLastCall()
		if err := srv.Shutdown(lastCall); err != nil {
			_ = srv.Close()
		}
		logger.Warn("shutdown: in-flight requests were cut off with 503 at the shutdown timeout",
			"timeout", cfg.ShutdownTimeout.String())
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	logger.Info("shutdown: complete")
	return nil
}

// errShuttingDown is the cause of a request context cancelled because SHUTDOWN_TIMEOUT ended.
var errShuttingDown = errors.New("the gateway is shutting down")

// finalAnswerGrace is how long requests cut off at the shutdown timeout get to write their 503.
const finalAnswerGrace = time.Second

// newLoggedBreaker builds the Worker's circuit breaker from cfg; every state change is logged
// and counted.
func newLoggedBreaker(cfg Config, now func() time.Time, logger *slog.Logger, metrics *Metrics) *breaker {
	b := newBreaker(cfg.BreakerFailures, cfg.BreakerCooldown, now)
	b.onChange = func(from, to breakerState) {
		logger.Warn("circuit breaker state changed", "from", from.String(), "to", to.String())
		metrics.BreakerChanged(from, to)
	}
	return b
}
