package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
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
	waitWithin(t, url+" to answer 200", timeout, func() bool {
		resp, err := client.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
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

// waitForDraining polls base's /readyz until it answers 503 "draining", failing the test if it
// has not within the given time of shutdown starting.
func waitForDraining(t *testing.T, base string, within time.Duration) {
	t.Helper()
	waitWithin(t, "readiness to answer 503 draining after shutdown began", within, func() bool {
		status, body := getStatus(t, base+"/readyz")
		return status == 503 && body["status"] == "draining"
	})
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
	waitForDraining(t, base, 300*time.Millisecond)
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

// A load balancer keeps idle connections to a backend and may send on one at any moment until
// it sees the backend unready. Closing idle connections when the drain starts races with such
// a request (the client's write meets a closed socket: a reset, a failed POST); during the
// drain an idle connection must keep serving, each answer asking the client to close it.
func TestAnIdleKeepAliveConnectionKeepsServingDuringTheDrain(t *testing.T) {
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	env := map[string]string{
		"PORT": fmt.Sprint(port), "CATALOG_PATH": "catalog.json",
		"SHUTDOWN_DRAIN": "1s", "SHUTDOWN_TIMEOUT": "2s", "WORKER_TIMEOUT": "2s",
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"api-gateway"}, envFrom(env), &syncBuffer{}) }()
	waitForReady(t, base+"/readyz", 5*time.Second)

	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	reader := bufio.NewReader(conn)
	get := func(path string) (*http.Response, error) {
		if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: gateway\r\n\r\n", path); err != nil {
			return nil, err
		}
		conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		resp, err := http.ReadResponse(reader, nil)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return resp, err
	}
	if resp, err := get("/v1/modules"); err != nil || resp.StatusCode != 200 || resp.Close {
		t.Fatalf("before the drain: %v %v (close %v)", err, resp, resp != nil && resp.Close)
	}

	cancel() // what a SIGTERM does inside run: the drain starts, the connection sits idle
	waitForDraining(t, base, 500*time.Millisecond)
	time.Sleep(100 * time.Millisecond) // the balancer has not polled yet; its idle connection is reused
	resp, err := get("/v1/modules")
	if err != nil {
		t.Fatalf("a request on an idle keep-alive connection during the drain failed: %v", err)
	}
	if resp.StatusCode != 200 || !resp.Close {
		t.Fatalf("during the drain: %d, Connection: close %v; want 200 and close", resp.StatusCode, resp.Close)
	}
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}

// A load balancer or a client's connection pool may open a connection and never send on it
// (Go's Transport keeps a connection dialled for a request that another one served). At the
// end of the drain such a connection is as idle as an idle keep-alive one: it must be closed
// with them, not waited for until net/http gives up on it (five seconds) or SHUTDOWN_TIMEOUT
// ends and the gateway reports requests cut off that never were. During the drain it is
// served like any other.
func TestAConnectionThatNeverSentARequestDoesNotHoldTheShutdown(t *testing.T) {
	// A drain long enough for the steps below on a loaded machine.
	g := startRun(t, map[string]string{"SHUTDOWN_DRAIN": "2s", "SHUTDOWN_TIMEOUT": "2s", "WORKER_TIMEOUT": "2s"})
	dial := func() net.Conn {
		conn, err := net.Dial("tcp", g.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	usedInTheDrain, silent := dial(), dial()
	// Connections are accepted in order: once a later one is answered, both are open.
	if status, _ := getStatus(t, "http://"+g.addr+"/v1/modules"); status != 200 {
		t.Fatalf("GET /v1/modules: %d", status)
	}

	g.stop() // what a SIGTERM does inside run
	waitForDraining(t, "http://"+g.addr, time.Second)
	if _, err := io.WriteString(usedInTheDrain, "GET /v1/modules HTTP/1.1\r\nHost: gateway\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = usedInTheDrain.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(usedInTheDrain), nil)
	if err != nil || resp.StatusCode != 200 || !resp.Close {
		t.Fatalf("a first request during the drain on a connection opened before it: %v %v", resp, err)
	}

	// The server closes the silent one once the drain is over: the client reads EOF.
	_ = silent.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := silent.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("the silent connection: read %d bytes, %v; want EOF", n, err)
	}
	g.waitForCleanExit(t, 10*time.Second)
	if strings.Contains(g.logs.String(), "cut off") {
		t.Errorf("no request was in flight, yet the shutdown timeout was reached:\n%s", g.logs)
	}
	if !strings.Contains(g.logs.String(), `"msg":"shutdown: closed connections that never sent a request","count":1`) {
		t.Errorf("the closed silent connection is not logged:\n%s", g.logs)
	}
}
