package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// freePort asks the kernel for a port nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitForReady polls url until it answers 200 or the timeout passes.
func waitForReady(t *testing.T, url string, timeout time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s not ready after %s", url, timeout)
}

func getStatus(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("GET %s: body is not JSON: %v", url, err)
	}
	return resp.StatusCode, body
}

func TestRunServesAndShutsDownGracefully(t *testing.T) {
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	env := map[string]string{
		"PORT":             fmt.Sprint(port),
		"CATALOG_PATH":     "catalog.json",
		"SHUTDOWN_DRAIN":   "400ms",
		"SHUTDOWN_TIMEOUT": "2s",
		"WORKER_TIMEOUT":   "2s",
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"api-gateway"}, envFrom(env), logs) }()

	waitForReady(t, base+"/readyz", 5*time.Second)
	if status, body := getStatus(t, base+"/v1/modules/classify"); status != 200 || body["name"] != "classify" {
		t.Fatalf("GET /v1/modules/classify: %d %v", status, body)
	}

	// Cancelling the context is what a SIGTERM does inside run.
	cancelledAt := time.Now()
	cancel()
	deadline := time.Now().Add(300 * time.Millisecond)
	for {
		status, body := getStatus(t, base+"/readyz")
		if status == 503 && body["status"] == "draining" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readiness still %d %v after shutdown began", status, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if status, _ := getStatus(t, base+"/v1/modules"); status != 200 {
		t.Errorf("new request during drain: %d, want 200", status)
	}

	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return after shutdown")
	}
	if elapsed := time.Since(cancelledAt); elapsed < 400*time.Millisecond {
		t.Errorf("run returned after %s, before the 400ms drain", elapsed)
	}
	for _, phase := range []string{"listening", "shutdown: draining", "shutdown: closing listener", "shutdown: complete"} {
		if !strings.Contains(logs.String(), phase) {
			t.Errorf("log has no %q phase:\n%s", phase, logs)
		}
	}
}

func TestRunRefusesToStartWithBadConfig(t *testing.T) {
	tests := []struct {
		name        string
		args        []string
		env         map[string]string
		wantInError string
	}{
		{"bad variables", nil, map[string]string{"PORT": "eighty", "WORKER_TIMEOUT": "forever"}, "invalid configuration: PORT"},
		{"missing catalog", nil, map[string]string{"CATALOG_PATH": "does-not-exist.json"}, "does-not-exist.json"},
		{"stray argument", []string{"--port=80"}, nil, `unexpected argument "--port=80"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := &syncBuffer{}
			err := run(t.Context(), append([]string{"api-gateway"}, tt.args...), envFrom(tt.env), out)
			if err == nil {
				t.Fatal("run started")
			}
			if !strings.Contains(err.Error(), tt.wantInError) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q: want one line containing %q", err, tt.wantInError)
			}
		})
	}
}

func TestRunHelpListsEveryVariable(t *testing.T) {
	out := &syncBuffer{}
	if err := run(t.Context(), []string{"api-gateway", "-help"}, envFrom(nil), out); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"PORT", "CATALOG_PATH", "WORKER_URL", "WORKER_API_TOKEN", "WORKER_TIMEOUT",
		"BREAKER_FAILURES", "BREAKER_COOLDOWN", "SHUTDOWN_DRAIN", "SHUTDOWN_TIMEOUT", "LOG_LEVEL", "MAX_BODY_BYTES"} {
		if !strings.Contains(out.String(), name) {
			t.Errorf("help does not mention %s", name)
		}
	}
}
