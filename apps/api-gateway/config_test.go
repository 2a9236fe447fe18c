package main

import (
	"log/slog"
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
		WorkerTimeout:   5 * time.Second,
		BreakerFailures: 5,
		BreakerCooldown: 10 * time.Second,
		ShutdownDrain:   5 * time.Second,
		ShutdownTimeout: 10 * time.Second,
		LogLevel:        slog.LevelInfo,
		MaxBodyBytes:    65536,
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
	}))
	if err != nil {
		t.Fatalf("loadConfig: %v", err)
	}
	want := Config{
		Port:            9090,
		CatalogPath:     "/tmp/c.json",
		WorkerURL:       "https://ai.example.com/base",
		WorkerAPIToken:  "s3cret",
		WorkerTimeout:   750 * time.Millisecond,
		BreakerFailures: 3,
		BreakerCooldown: 30 * time.Second,
		ShutdownDrain:   0,
		ShutdownTimeout: 20 * time.Second,
		LogLevel:        slog.LevelDebug,
		MaxBodyBytes:    1024,
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
