package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// buildBinary compiles the real gateway the way the Dockerfile does.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "api-gateway")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestBinaryDrainsWithoutFailedRequestsOnSIGTERM plays a rolling restart against the real
// binary: clients hammer the catalog, SIGTERM arrives mid-load, readiness turns 503, the
// "load balancer" (the clients) stops routing here a little later, and a slow completion
// is still in flight when the listener closes. Not one request may fail.
func TestBinaryDrainsWithoutFailedRequestsOnSIGTERM(t *testing.T) {
	const (
		drain           = 2 * time.Second
		shutdownTimeout = 5 * time.Second
		// How long after readiness turns 503 the clients keep sending new requests,
		// standing in for endpoint-removal propagation; it must be shorter than the drain.
		propagation = 300 * time.Millisecond
		workerDelay = time.Second
		clients     = 8
	)
	bin := buildBinary(t)
	catalog, err := filepath.Abs("catalog.json")
	if err != nil {
		t.Fatal(err)
	}
	worker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(workerDelay)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, workerAnswer)
	}))
	defer worker.Close()

	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	logPath := filepath.Join(t.TempDir(), "gateway.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin)
	cmd.Env = []string{
		"PORT=" + fmt.Sprint(port),
		"CATALOG_PATH=" + catalog,
		"WORKER_URL=" + worker.URL,
		"WORKER_API_TOKEN=test-token",
		"SHUTDOWN_DRAIN=" + drain.String(),
		"SHUTDOWN_TIMEOUT=" + shutdownTimeout.String(),
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	waitForReady(t, base+"/readyz", 10*time.Second)

	client := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients + 4},
	}
	defer client.CloseIdleConnections()

	var (
		ok, failed, servedAfterSignal atomic.Int64
		signalledAt                   atomic.Int64 // unix nanos; 0 before SIGTERM
		failuresMu                    sync.Mutex
		failures                      []string
		stopLoad                      = make(chan struct{})
		readinessFlipped              = make(chan struct{})
		wg                            sync.WaitGroup
	)
	fail := func(format string, args ...any) {
		failed.Add(1)
		failuresMu.Lock()
		defer failuresMu.Unlock()
		if len(failures) < 10 {
			failures = append(failures, fmt.Sprintf(format, args...))
		}
	}
	get := func(path string) (int, error) {
		resp, err := client.Get(base + path)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		_, err = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, err
	}

	for range clients {
		wg.Go(func() {
			for {
				select {
				case <-stopLoad:
					return
				default:
				}
				started := time.Now().UnixNano()
				status, err := get("/v1/modules")
				switch {
				case err != nil:
					fail("GET /v1/modules: %v", err)
				case status != http.StatusOK:
					fail("GET /v1/modules: status %d", status)
				default:
					ok.Add(1)
					if s := signalledAt.Load(); s != 0 && started > s {
						servedAfterSignal.Add(1)
					}
				}
			}
		})
	}
	// The readiness prober, as the kubelet would run it.
	wg.Go(func() {
		for {
			select {
			case <-stopLoad:
				return
			case <-time.After(20 * time.Millisecond):
			}
			status, err := get("/readyz")
			if err != nil {
				fail("GET /readyz: %v", err)
				continue
			}
			if status == http.StatusServiceUnavailable {
				close(readinessFlipped)
				return
			}
		}
	})

	time.Sleep(400 * time.Millisecond) // load before the signal
	signalledAt.Store(time.Now().UnixNano())
	sentAt := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}

	// A slow completion that is still running when the drain ends and the listener closes.
	inFlight := make(chan error, 1)
	go func() {
		time.Sleep(drain - workerDelay/2)
		resp, err := client.Post(base+"/v1/ai/complete", "application/json", strings.NewReader(validCompletion))
		if err != nil {
			inFlight <- err
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || string(body) != workerAnswer {
			inFlight <- fmt.Errorf("status %d body %s", resp.StatusCode, body)
			return
		}
		inFlight <- nil
	}()

	select {
	case <-readinessFlipped:
	case <-time.After(drain):
		t.Error("readiness never turned 503 during the drain")
	}
	time.Sleep(propagation)
	close(stopLoad)
	wg.Wait()

	var exitErr error
	select {
	case exitErr = <-exited:
	case <-time.After(drain + shutdownTimeout + 2*time.Second):
		t.Fatal("the gateway did not exit within drain + shutdown timeout")
	}
	elapsed := time.Since(sentAt)
	if err := <-inFlight; err != nil {
		t.Errorf("in-flight completion across the shutdown failed: %v", err)
	}

	logs, _ := os.ReadFile(logPath)
	if exitErr != nil {
		t.Fatalf("exit: %v\n%s", exitErr, logs)
	}
	if elapsed < drain || elapsed > drain+shutdownTimeout {
		t.Errorf("exited %s after SIGTERM, want between the drain (%s) and drain+timeout (%s)", elapsed, drain, drain+shutdownTimeout)
	}
	if n := failed.Load(); n != 0 {
		t.Errorf("%d failed requests, want 0: %v", n, failures)
	}
	if ok.Load() < 100 {
		t.Errorf("only %d requests succeeded: the load did not run", ok.Load())
	}
	if servedAfterSignal.Load() == 0 {
		t.Error("no request sent after SIGTERM was served: the drain must keep serving")
	}
	for _, phase := range []string{"shutdown: draining", "shutdown: closing listener", "shutdown: complete"} {
		if !strings.Contains(string(logs), phase) {
			t.Errorf("log has no %q phase", phase)
		}
	}
	t.Logf("%d requests served (%d sent after SIGTERM), 0 failed; exit %s after SIGTERM",
		ok.Load(), servedAfterSignal.Load(), elapsed.Round(time.Millisecond))
}
