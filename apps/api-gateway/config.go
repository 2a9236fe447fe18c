package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Config is the gateway's whole configuration. Every field comes from one environment
// variable (named in the struct tag comment) so the Kubernetes stack can set it.
type Config struct {
	Port            int           // PORT
	CatalogPath     string        // CATALOG_PATH
	WorkerURL       string        // WORKER_URL; empty disables /v1/ai/complete (503)
	WorkerAPIToken  string        // WORKER_API_TOKEN; secret, never logged
	WorkerTimeout   time.Duration // WORKER_TIMEOUT
	BreakerFailures int           // BREAKER_FAILURES
	BreakerCooldown time.Duration // BREAKER_COOLDOWN
	ShutdownDrain   time.Duration // SHUTDOWN_DRAIN
	ShutdownTimeout time.Duration // SHUTDOWN_TIMEOUT
	LogLevel        slog.Level    // LOG_LEVEL
	MaxBodyBytes    int64         // MAX_BODY_BYTES
}

// Upper bounds keep a typo (an extra zero, "5h" for "5s") from producing a service that
// looks healthy but hangs or buffers without limit.
const (
	maxWorkerTimeout   = 5 * time.Minute
	maxBreakerCooldown = 1 * time.Hour
	maxShutdownPhase   = 10 * time.Minute
	maxBodyBytesLimit  = 16 << 20
)

// loadConfig reads and validates the configuration. It reports every bad variable at
// once, in a single line, so an operator fixes them in one go.
func loadConfig(getenv func(string) string) (Config, error) {
	p := envParser{getenv: getenv}
	cfg := Config{
		Port:            p.intIn("PORT", 8080, 0, 65535),
		CatalogPath:     p.str("CATALOG_PATH", "/etc/api-gateway/catalog.json"),
		WorkerURL:       p.workerURL("WORKER_URL"),
		WorkerAPIToken:  getenv("WORKER_API_TOKEN"),
		WorkerTimeout:   p.duration("WORKER_TIMEOUT", 5*time.Second, time.Millisecond, maxWorkerTimeout),
		BreakerFailures: p.intIn("BREAKER_FAILURES", 5, 1, 1000),
		BreakerCooldown: p.duration("BREAKER_COOLDOWN", 10*time.Second, time.Millisecond, maxBreakerCooldown),
		ShutdownDrain:   p.duration("SHUTDOWN_DRAIN", 5*time.Second, 0, maxShutdownPhase),
		ShutdownTimeout: p.duration("SHUTDOWN_TIMEOUT", 10*time.Second, time.Millisecond, maxShutdownPhase),
		LogLevel:        p.logLevel("LOG_LEVEL", slog.LevelInfo),
		MaxBodyBytes:    int64(p.intIn("MAX_BODY_BYTES", 65536, 1, maxBodyBytesLimit)),
	}
	if cfg.CatalogPath == "" {
		p.fail("CATALOG_PATH", "must not be empty")
	}
	if strings.ContainsAny(cfg.WorkerAPIToken, "\r\n") {
		// Reported without the value: it is a secret.
		p.fail("WORKER_API_TOKEN", "must not contain line breaks")
	}
	if len(p.problems) > 0 {
		return Config{}, fmt.Errorf("invalid configuration: %s", strings.Join(p.problems, "; "))
	}
	return cfg, nil
}

// envParser collects problems instead of stopping at the first one.
type envParser struct {
	getenv   func(string) string
	problems []string
}

func (p *envParser) fail(name, reason string) {
	p.problems = append(p.problems, name+" "+reason)
}

func (p *envParser) failValue(name, value, reason string) {
	p.problems = append(p.problems, fmt.Sprintf("%s=%q %s", name, value, reason))
}

func (p *envParser) str(name, def string) string {
	if v := strings.TrimSpace(p.getenv(name)); v != "" {
		return v
	}
	return def
}

func (p *envParser) intIn(name string, def, lo, hi int) int {
	raw := strings.TrimSpace(p.getenv(name))
	if raw == "" {
		return def
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < lo || n > hi {
		p.failValue(name, raw, fmt.Sprintf("must be an integer from %d to %d", lo, hi))
		return def
	}
	return n
}

func (p *envParser) duration(name string, def, lo, hi time.Duration) time.Duration {
	raw := strings.TrimSpace(p.getenv(name))
	if raw == "" {
		return def
	}
	d, err := time.ParseDuration(raw)
	if err != nil {
		p.failValue(name, raw, `must be a Go duration such as "500ms" or "5s"`)
		return def
	}
	if d < lo || d > hi {
		p.failValue(name, raw, fmt.Sprintf("must be from %s to %s", lo, hi))
		return def
	}
	return d
}

func (p *envParser) logLevel(name string, def slog.Level) slog.Level {
	raw := strings.TrimSpace(p.getenv(name))
	switch strings.ToLower(raw) {
	case "":
		return def
	case "debug":
		return slog.LevelDebug
	case "info":
		return slog.LevelInfo
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	p.failValue(name, raw, "must be one of debug, info, warn, error")
	return def
}

func (p *envParser) workerURL(name string) string {
	raw := strings.TrimSpace(p.getenv(name))
	if raw == "" {
		return ""
	}
	if err := checkWorkerURL(raw); err != nil {
		p.failValue(name, raw, err.Error())
		return ""
	}
	return strings.TrimRight(raw, "/")
}

func checkWorkerURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("is not a URL")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("must be an http:// or https:// URL")
	case u.Host == "":
		return errors.New("must name a host")
	case u.User != nil:
		return errors.New("must not carry credentials (use WORKER_API_TOKEN)")
	case u.RawQuery != "" || u.Fragment != "":
		return errors.New("must not have a query or fragment")
	}
	return nil
}
