package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func envFrom(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadConfigDefaults(t *testing.T) {
	cfg, err := loadConfig(envFrom(nil))
	if err != nil {
		t.Fatalf("loadConfig: %v", err)
	}
	want := Config{
		Port:            8080,
		CatalogPath:     "/etc/api-gateway/catalog.json",
		WorkerAuth:      "bearer",
		WorkerTimeout:   5 * time.Second,
		BreakerFailures: 5,
		BreakerCooldown: 10 * time.Second,
		ShutdownDrain:   5 * time.Second,
		ShutdownTimeout: 10 * time.Second,
		LogLevel:        slog.LevelInfo,
		MaxBodyBytes:    131072,
		MaxConnections:  1024,
		MetricsEnabled:  true,
	}
	if cfg != want {
		t.Errorf("defaults:\n got %+v\nwant %+v", cfg, want)
	}
}

func TestLoadConfigReadsEveryVariable(t *testing.T) {
	cfg, err := loadConfig(envFrom(map[string]string{
		"PORT":             "9090",
		"CATALOG_PATH":     "/tmp/c.json",
		"WORKER_URL":       "https://ai.example.com/base/",
		"WORKER_API_TOKEN": "s3cret",
		"WORKER_TIMEOUT":   "750ms",
		"BREAKER_FAILURES": "3",
		"BREAKER_COOLDOWN": "30s",
		"SHUTDOWN_DRAIN":   "0s",
		"SHUTDOWN_TIMEOUT": "20s",
		"LOG_LEVEL":        "DEBUG",
		"MAX_BODY_BYTES":   "1024",
		"MAX_CONNECTIONS":  "50",
		"METRICS_ENABLED":  "false",
	}))
	if err != nil {
		t.Fatalf("loadConfig: %v", err)
	}
	want := Config{
		Port:            9090,
		CatalogPath:     "/tmp/c.json",
		WorkerURL:       "https://ai.example.com/base",
		WorkerAuth:      "bearer",
		WorkerAPIToken:  "s3cret",
		WorkerTimeout:   750 * time.Millisecond,
		BreakerFailures: 3,
		BreakerCooldown: 30 * time.Second,
		ShutdownDrain:   0,
		ShutdownTimeout: 20 * time.Second,
		LogLevel:        slog.LevelDebug,
		MaxBodyBytes:    1024,
		MaxConnections:  50,
		MetricsEnabled:  false,
	}
	if cfg != want {
		t.Errorf("config:\n got %+v\nwant %+v", cfg, want)
	}
}

func TestLoadConfigRejectsBadValues(t *testing.T) {
	tests := []struct {
		name, key, value string
		wantInError      string
	}{
		{"port not a number", "PORT", "http", `PORT="http" must be an integer`},
		{"port too large", "PORT", "70000", "from 0 to 65535"},
		{"negative port", "PORT", "-1", "PORT"},
		{"worker url without scheme", "WORKER_URL", "ai.example.com", "http:// or https://"},
		{"worker url with other scheme", "WORKER_URL", "ftp://ai.example.com", "http:// or https://"},
		{"worker url without host", "WORKER_URL", "http://", "must name a host"},
		{"worker url with credentials", "WORKER_URL", "https://u:p@ai.example.com", "credentials"},
		{"max connections zero", "MAX_CONNECTIONS", "0", "MAX_CONNECTIONS"},
		{"worker url with query", "WORKER_URL", "https://ai.example.com/?a=b", "query"},
		{"timeout without unit", "WORKER_TIMEOUT", "5", "Go duration"},
		{"timeout zero", "WORKER_TIMEOUT", "0s", "WORKER_TIMEOUT"},
		{"timeout absurd", "WORKER_TIMEOUT", "5h", "from 1ms to 5m0s"},
		{"breaker failures zero", "BREAKER_FAILURES", "0", "BREAKER_FAILURES"},
		{"breaker failures text", "BREAKER_FAILURES", "five", "BREAKER_FAILURES"},
		{"breaker cooldown negative", "BREAKER_COOLDOWN", "-1s", "BREAKER_COOLDOWN"},
		{"drain negative", "SHUTDOWN_DRAIN", "-5s", "SHUTDOWN_DRAIN"},
		{"shutdown timeout zero", "SHUTDOWN_TIMEOUT", "0", "SHUTDOWN_TIMEOUT"},
		{"unknown log level", "LOG_LEVEL", "verbose", "debug, info, warn, error"},
		{"body limit zero", "MAX_BODY_BYTES", "0", "MAX_BODY_BYTES"},
		{"body limit huge", "MAX_BODY_BYTES", "1000000000", "MAX_BODY_BYTES"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig(envFrom(map[string]string{tt.key: tt.value}))
			if err == nil {
				t.Fatalf("%s=%q accepted", tt.key, tt.value)
			}
			if !strings.Contains(err.Error(), tt.wantInError) {
				t.Errorf("error %q does not contain %q", err, tt.wantInError)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans several lines: %q", err)
			}
		})
	}
}

func TestLoadConfigReportsAllProblemsOnOneLine(t *testing.T) {
	_, err := loadConfig(envFrom(map[string]string{"PORT": "x", "LOG_LEVEL": "loud", "SHUTDOWN_DRAIN": "soon"}))
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, name := range []string{"PORT", "LOG_LEVEL", "SHUTDOWN_DRAIN"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error spans several lines: %q", err)
	}
}

func TestLoadConfigNeverEchoesTheWorkerToken(t *testing.T) {
	_, err := loadConfig(envFrom(map[string]string{"WORKER_API_TOKEN": "top\nsecret"}))
	if err == nil {
		t.Fatal("token with a line break accepted")
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error leaks the token: %q", err)
	}
}

func TestTheWorkerTokenIsReadFromTheFileThePlatformMounts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "WORKER_API_TOKEN")
	if err := os.WriteFile(path, []byte("from-a-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(envFrom(map[string]string{"WORKER_URL": "https://ai.example.com", "WORKER_API_TOKEN_FILE": path}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.WorkerAPIToken != "from-a-file" {
		t.Errorf("token %q, want the file's content without its newline", cfg.WorkerAPIToken)
	}
}

func TestTokenProblemsNameTheVariableAndNeverTheValue(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		env         map[string]string
		wantInError string
	}{
		{"missing file", map[string]string{"WORKER_API_TOKEN_FILE": filepath.Join(dir, "nope")}, "WORKER_API_TOKEN_FILE cannot be read"},
		{"a folder, not a file", map[string]string{"WORKER_API_TOKEN_FILE": dir}, "WORKER_API_TOKEN_FILE cannot be read"},
		{"empty file", map[string]string{"WORKER_API_TOKEN_FILE": empty}, "WORKER_API_TOKEN_FILE names an empty file"},
		{"file and value both", map[string]string{"WORKER_API_TOKEN_FILE": empty, "WORKER_API_TOKEN": "secret-value"}, "are both set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig(envFrom(tt.env))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tt.wantInError) || strings.Contains(err.Error(), "secret-value") {
				t.Errorf("error %q: want %q and no token value", err, tt.wantInError)
			}
		})
	}
}

func TestTheGatewayRefusesToCallTheWorkerWithoutATokenUnlessToldTo(t *testing.T) {
	url := map[string]string{"WORKER_URL": "https://ai.example.com"}
	if _, err := loadConfig(envFrom(url)); err == nil || !strings.Contains(err.Error(), "WORKER_AUTH=none") {
		t.Errorf("a Worker URL without a token: %v, want a refusal naming WORKER_AUTH=none", err)
	}
	cfg, err := loadConfig(envFrom(map[string]string{"WORKER_URL": "https://ai.example.com", "WORKER_AUTH": "none"}))
	if err != nil || cfg.WorkerAPIToken != "" {
		t.Errorf("WORKER_AUTH=none: %+v, %v", cfg, err)
	}
	_, err = loadConfig(envFrom(map[string]string{"WORKER_URL": "https://ai.example.com", "WORKER_AUTH": "none", "WORKER_API_TOKEN": "t"}))
	if err == nil || !strings.Contains(err.Error(), "WORKER_AUTH is none but a Worker token is set") {
		t.Errorf("WORKER_AUTH=none with a token: %v", err)
	}
	if _, err := loadConfig(envFrom(map[string]string{"WORKER_AUTH": "basic"})); err == nil {
		t.Error("WORKER_AUTH=basic accepted")
	}
	if _, err := loadConfig(envFrom(nil)); err != nil {
		t.Errorf("no Worker at all needs no token: %v", err)
	}
}

func TestAWorkerCallMustFitInTheShutdownWindow(t *testing.T) {
	_, err := loadConfig(envFrom(map[string]string{"WORKER_TIMEOUT": "20s", "SHUTDOWN_DRAIN": "5s", "SHUTDOWN_TIMEOUT": "10s"}))
	if err == nil || !strings.Contains(err.Error(), "WORKER_TIMEOUT (20s) must not exceed SHUTDOWN_DRAIN + SHUTDOWN_TIMEOUT (15s)") {
		t.Errorf("error %v", err)
	}
	if _, err := loadConfig(envFrom(map[string]string{"WORKER_TIMEOUT": "15s", "SHUTDOWN_DRAIN": "5s", "SHUTDOWN_TIMEOUT": "10s"})); err != nil {
		t.Errorf("a timeout equal to the window: %v", err)
	}
}

func TestABadWorkerURLIsShownWithoutItsSecrets(t *testing.T) {
	tests := []struct{ raw, shown string }{
		{"https://user:pa55word@ai.example.com/", `"https://REDACTED@ai.example.com/"`},
		{"https://ai.example.com/?token=pa55word&x=1", `"https://ai.example.com/?token=REDACTED&x=REDACTED"`},
		{"ftp://ai.example.com/#pa55word", `"ftp://ai.example.com/"`},
		{"https://ai.example.com/%zzpa55word", "(unparsable URL, not shown)"},
	}
	for _, tt := range tests {
		_, err := loadConfig(envFrom(map[string]string{"WORKER_URL": tt.raw, "WORKER_AUTH": "none"}))
		if err == nil {
			t.Fatalf("%s accepted", tt.raw)
		}
		if strings.Contains(err.Error(), "pa55word") || !strings.Contains(err.Error(), tt.shown) {
			t.Errorf("error %q: want %s and no secret", err, tt.shown)
		}
	}
}
