package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// runningGateway is run started in-process on a free port, as main starts it.
type runningGateway struct {
	addr string
	logs *syncBuffer
	stop context.CancelFunc // what a SIGTERM does inside run
	done chan error
}

func startRun(t *testing.T, env map[string]string) *runningGateway {
	t.Helper()
	port := freePort(t)
	all := map[string]string{"PORT": fmt.Sprint(port), "CATALOG_PATH": "catalog.json", "SHUTDOWN_DRAIN": "0s"}
	for k, v := range env {
		all[k] = v
	}
	ctx, cancel := context.WithCancel(t.Context())
	g := &runningGateway{addr: fmt.Sprintf("127.0.0.1:%d", port), logs: &syncBuffer{}, stop: cancel, done: make(chan error, 1)}
	go func() { g.done <- run(ctx, []string{"api-gateway"}, envFrom(all), g.logs) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-g.done:
		case <-time.After(15 * time.Second):
			t.Error("run did not return")
		}
	})
	waitForReady(t, "http://"+g.addr+"/readyz", 5*time.Second)
	return g
}

// waitForCleanExit waits for run to return after stop, and fails the test unless it returns nil
// within timeout.
func (g *runningGateway) waitForCleanExit(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case err := <-g.done:
		if err != nil {
			t.Fatalf("run: %v, want a clean exit", err)
		}
		g.done <- nil // for the cleanup
	case <-time.After(timeout):
		t.Fatal("run did not return")
	}
}

// rawExchange sends raw bytes on a new connection and reads the answer until the server
// closes the connection or the answer is complete.
func rawExchange(t *testing.T, addr, request string) *http.Response {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no HTTP answer to %q: %v", request[:min(len(request), 60)], err)
	}
	return resp
}

// wantJSONError checks a raw answer is the contract's Error with the given status and code,
// and returns its request id.
func wantJSONError(t *testing.T, resp *http.Response, status int, code ErrorDetailCode) string {
	t.Helper()
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d (%s)", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json: %s", ct, body)
	}
	rec := httptest.NewRecorder()
	rec.Code = resp.StatusCode
	for k, v := range resp.Header {
		rec.Header()[k] = v
	}
	rec.Body.Write(body)
	if got := errorCode(t, rec); got != code {
		t.Errorf("code %q, want %q", got, code)
	}
	return resp.Header.Get("X-Request-Id")
}

// accessLogFor finds the access-log line of request id.
func accessLogFor(t *testing.T, logs *syncBuffer, id string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		for _, line := range strings.Split(logs.String(), "\n") {
			var entry map[string]any
			if json.Unmarshal([]byte(line), &entry) == nil && entry["msg"] == "request" && entry["request_id"] == id {
				return entry
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no access-log line for request %s:\n%s", id, logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestEveryHostileRequestGetsAJSONErrorAndALogLine(t *testing.T) {
	g := startRun(t, nil)
	tests := []struct {
		name    string
		request string
		status  int
		code    ErrorDetailCode
	}{
		{"headers over the limit", "GET /v1/modules HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 40<<10) + "\r\n\r\n", 431, ErrorDetailCodeHeadersTooLarge},
		{"a Content-Length that is not a number", "POST /v1/ai/complete HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n", 400, ErrorDetailCodeBadRequest},
		{"two different Content-Lengths", "POST /v1/ai/complete HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400, ErrorDetailCodeBadRequest},
		{"no Host header", "GET /v1/modules HTTP/1.1\r\n\r\n", 400, ErrorDetailCodeBadRequest},
		{"a header name with a space", "GET /v1/modules HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n", 400, ErrorDetailCodeBadRequest},
		{"a garbled request line", "HELLO\r\n\r\n", 400, ErrorDetailCodeBadRequest},
		{"an unknown transfer encoding", "POST /v1/ai/complete HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501, ErrorDetailCodeNotImplemented},
		{"an unknown protocol version", "GET /v1/modules HTTP/2.0\r\nHost: x\r\n\r\n", 505, ErrorDetailCodeNotImplemented},
		{"CONNECT", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 404, ErrorDetailCodeNotFound},
		{"a path with dot-dot", "GET /v1/../v1/modules HTTP/1.1\r\nHost: x\r\n\r\n", 404, ErrorDetailCodeNotFound},
		{"a path climbing out of the root", "GET /../ HTTP/1.1\r\nHost: x\r\n\r\n", 404, ErrorDetailCodeNotFound},
		{"a double slash", "GET //v1/modules HTTP/1.1\r\nHost: x\r\n\r\n", 404, ErrorDetailCodeNotFound},
		{"a dot segment", "GET /v1/./modules HTTP/1.1\r\nHost: x\r\n\r\n", 404, ErrorDetailCodeNotFound},
		{"an encoded slash in a module name", "GET /v1/modules/..%2F..%2Fetc HTTP/1.1\r\nHost: x\r\n\r\n", 404, ErrorDetailCodeNotFound},
		{"an asterisk target", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 404, ErrorDetailCodeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := rawExchange(t, g.addr, tt.request)
			if loc := resp.Header.Get("Location"); loc != "" {
				t.Errorf("redirect to %q: the gateway must not redirect", loc)
			}
			id := wantJSONError(t, resp, tt.status, tt.code)
			entry := accessLogFor(t, g.logs, id)
			if entry["status"] != float64(tt.status) {
				t.Errorf("logged status %v, want %d", entry["status"], tt.status)
			}
		})
	}
}

func TestALongPathIsLoggedShortened(t *testing.T) {
	g := startRun(t, nil)
	resp := rawExchange(t, g.addr, "GET /"+strings.Repeat("p", 20000)+" HTTP/1.1\r\nHost: x\r\n\r\n")
	id := wantJSONError(t, resp, 404, ErrorDetailCodeNotFound)
	path, _ := accessLogFor(t, g.logs, id)["path"].(string)
	if len(path) > maxLoggedPathBytes+32 || !strings.Contains(path, "20001 bytes") {
		t.Errorf("logged path of %d bytes: %.80s...", len(path), path)
	}
}

func TestConnectionsOverTheCapGetAJSON503(t *testing.T) {
	g := startRun(t, map[string]string{"MAX_CONNECTIONS": "3"})
	for range 3 { // idle connections holding every slot
		conn, err := net.Dial("tcp", g.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
	}
	deadline := time.Now().Add(2 * time.Second)
	var resp *http.Response
	for {
		// The server counts a connection once it accepts it: retry until the three are in.
		resp = rawExchange(t, g.addr, "GET /v1/modules HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp.StatusCode == 503 || time.Now().After(deadline) {
			break
		}
		resp.Body.Close()
	}
	if resp.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After on the 503")
	}
	id := wantJSONError(t, resp, 503, ErrorDetailCodeUnavailable)
	entry := accessLogFor(t, g.logs, id)
	if entry["path"] != "/v1/modules" || entry["reason"] != "connection limit reached" {
		t.Errorf("access log %v", entry)
	}
}

func TestARequestStillRunningAtTheShutdownTimeoutGetsAJSON503(t *testing.T) {
	release := make(chan struct{})
	worker := newFakeWorker(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	// WORKER_TIMEOUT fits in drain + timeout, but a call that starts late in the drain
	// still runs past the end of the shutdown timeout.
	g := startRun(t, map[string]string{
		"WORKER_URL": worker.URL, "WORKER_API_TOKEN": "t", "WORKER_TIMEOUT": "1500ms",
		"SHUTDOWN_DRAIN": "1s", "SHUTDOWN_TIMEOUT": "500ms",
	})
	g.stop()
	time.Sleep(300 * time.Millisecond) // well inside the drain: the request is still served
	answered := make(chan *http.Response, 1)
	go func() {
		resp, err := http.Post("http://"+g.addr+"/v1/ai/complete", "application/json", strings.NewReader(validCompletion))
		if err != nil {
			t.Errorf("the in-flight request failed instead of getting an answer: %v", err)
			answered <- nil
			return
		}
		answered <- resp
	}()
	if resp := <-answered; resp != nil {
		id := wantJSONError(t, resp, 503, ErrorDetailCodeUnavailable)
		accessLogFor(t, g.logs, id)
	}
	g.waitForCleanExit(t, 5*time.Second)
	if !strings.Contains(g.logs.String(), "cut off with 503") {
		t.Errorf("the cut-off is not logged:\n%s", g.logs)
	}
}
