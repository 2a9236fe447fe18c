package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
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
	WorkerAuth      string        // WORKER_AUTH: "bearer" (a token is required) or "none"
	WorkerAPIToken  string        // WORKER_API_TOKEN_FILE's content, or WORKER_API_TOKEN; secret, never logged
	WorkerTimeout   time.Duration // WORKER_TIMEOUT
	BreakerFailures int           // BREAKER_FAILURES
	BreakerCooldown time.Duration // BREAKER_COOLDOWN
	ShutdownDrain   time.Duration // SHUTDOWN_DRAIN
	ShutdownTimeout time.Duration // SHUTDOWN_TIMEOUT
	LogLevel        slog.Level    // LOG_LEVEL
	MaxBodyBytes    int64         // MAX_BODY_BYTES
	MaxConnections  int           // MAX_CONNECTIONS
	MetricsEnabled  bool          // METRICS_ENABLED: serve /metrics and record them
}

// Values of WORKER_AUTH.
const (
	workerAuthBearer = "bearer"
	workerAuthNone   = "none"
)

// Upper bounds keep a typo (an extra zero, "5h" for "5s") from producing a service that
// looks healthy but hangs or buffers without limit.
const (
	maxWorkerTimeout   = 5 * time.Minute
	maxBreakerCooldown = 1 * time.Hour
	maxShutdownPhase   = 10 * time.Minute
	maxBodyBytesLimit  = 16 << 20
	maxTokenFileBytes  = 64 << 10
)

// defaultMaxBodyBytes fits the largest request the contract allows: a prompt of 8000
// characters outside the Basic Multilingual Plane, each \u-escaped as a surrogate pair
// (12 bytes), is 96,000 bytes of JSON, as Python's json.dumps writes it by default.
const defaultMaxBodyBytes = 128 << 10

// loadConfig reads and validates the configuration. It reports every bad variable at
// once, in a single line, so an operator fixes them in one go.
func loadConfig(getenv func(string) string) (Config, error) {
	p := envParser{getenv: getenv}
	cfg := Config{
		Port:            p.intIn("PORT", 8080, 0, 65535),
		CatalogPath:     p.str("CATALOG_PATH", "/etc/api-gateway/catalog.json"),
		WorkerURL:       p.workerURL("WORKER_URL"),
		WorkerAuth:      p.oneOf("WORKER_AUTH", workerAuthBearer, workerAuthBearer, workerAuthNone),
		WorkerAPIToken:  p.secret("WORKER_API_TOKEN"),
		WorkerTimeout:   p.duration("WORKER_TIMEOUT", 5*time.Second, time.Millisecond, maxWorkerTimeout),
		BreakerFailures: p.intIn("BREAKER_FAILURES", 5, 1, 1000),
		BreakerCooldown: p.duration("BREAKER_COOLDOWN", 10*time.Second, time.Millisecond, maxBreakerCooldown),
		ShutdownDrain:   p.duration("SHUTDOWN_DRAIN", 5*time.Second, 0, maxShutdownPhase),
		ShutdownTimeout: p.duration("SHUTDOWN_TIMEOUT", 10*time.Second, time.Millisecond, maxShutdownPhase),
		LogLevel:        p.logLevel("LOG_LEVEL", slog.LevelInfo),
		MaxBodyBytes:    int64(p.intIn("MAX_BODY_BYTES", defaultMaxBodyBytes, 1, maxBodyBytesLimit)),
		MaxConnections:  p.intIn("MAX_CONNECTIONS", 1024, 1, 1_000_000),
		MetricsEnabled:  p.boolean("METRICS_ENABLED", true),
	}
	if cfg.CatalogPath == "" {
		p.fail("CATALOG_PATH", "must not be empty")
	}
	if strings.ContainsAny(cfg.WorkerAPIToken, "\r\n") {
		// Reported without the value: it is a secret.
		p.fail("WORKER_API_TOKEN", "must not contain line breaks")
	}
	// Fail closed: a gateway that would call the Worker without its token is refused unless
	// the operator said so explicitly.
	switch {
	case cfg.WorkerURL != "" && cfg.WorkerAuth == workerAuthBearer && cfg.WorkerAPIToken == "":
		p.fail("WORKER_API_TOKEN_FILE", "(or WORKER_API_TOKEN) is required when WORKER_URL is set; "+
			"set WORKER_AUTH=none to call the Worker without a token")
	case cfg.WorkerAuth == workerAuthNone && cfg.WorkerAPIToken != "":
		p.fail("WORKER_AUTH", "is none but a Worker token is set; drop one of them")
	}
	// A Worker call must be able to finish inside the shutdown window, or a completion still
	// running at SIGTERM is cut off by design.
	if budget := cfg.ShutdownDrain + cfg.ShutdownTimeout; cfg.WorkerTimeout > budget {
		p.fail("WORKER_TIMEOUT", fmt.Sprintf("(%s) must not exceed SHUTDOWN_DRAIN + SHUTDOWN_TIMEOUT (%s)",
			cfg.WorkerTimeout, budget))
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

// secret reads a secret from the file named by NAME_FILE (what the platform mounts) or from
// NAME itself (local runs); setting both is an error. A file's trailing newline is dropped.
// Problems name the variable and the file, never the value.
func (p *envParser) secret(name string) string {
	path := strings.TrimSpace(p.getenv(name + "_FILE"))
	value := p.getenv(name)
	switch {
	case path != "" && value != "":
		p.fail(name+"_FILE", "and "+name+" are both set; set only one")
		return ""
	case path == "":
		return value
	}
	data, err := readSmallFile(path, maxTokenFileBytes)
	if err != nil {
		p.fail(name+"_FILE", fmt.Sprintf("cannot be read: %s", err))
		return ""
	}
	secret := strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
	if secret == "" {
		p.fail(name+"_FILE", fmt.Sprintf("names an empty file %s", path))
	}
	return secret
}

// readSmallFile reads path, refusing files larger than limit.
func readSmallFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path) // #nosec G304 -- the path is the operator's config (a <NAME>_FILE the platform mounts), never request input
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data := make([]byte, limit+1)
	n, err := io.ReadFull(f, data)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(n) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return data[:n], nil
}

func (p *envParser) oneOf(name, def string, allowed ...string) string {
	raw := strings.ToLower(strings.TrimSpace(p.getenv(name)))
	if raw == "" {
		return def
	}
	for _, a := range allowed {
		if raw == a {
			return raw
		}
	}
	p.failValue(name, raw, "must be one of "+strings.Join(allowed, ", "))
	return def
}

func (p *envParser) boolean(name string, def bool) bool {
	raw := strings.TrimSpace(p.getenv(name))
	if raw == "" {
		return def
	}
	b, err := strconv.ParseBool(raw)
	if err != nil {
		p.failValue(name, raw, "must be true or false")
		return def
	}
	return b
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
		// The value may carry credentials: it is shown redacted.
		p.failValue(name, redactURL(raw), err.Error())
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

// redactURL shows a URL without its secrets: userinfo and query values become "REDACTED", the
// fragment is dropped. Text that does not parse as a URL is not shown at all.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL, not shown)"
	}
	if u.User != nil {
		u.User = url.User("REDACTED")
	}
	if u.RawQuery != "" {
		query := u.Query()
		for key := range query {
			query[key] = []string{"REDACTED"}
		}
		u.RawQuery = query.Encode()
	}
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}
