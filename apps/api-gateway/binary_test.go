package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
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

// backend is one gateway process behind the balancer.
type backend struct {
	url     *url.URL
	cmd     *exec.Cmd
	exited  chan error
	logPath string
	ready   atomic.Bool // as the balancer last saw it
}

// balancer stands in for what sits in front of the pods (a kube-proxy/Service endpoint list
// fed by readiness, or a cloud load balancer's health checks): it polls every backend's
// /readyz each period, routes new requests round-robin to the backends it last saw ready, and
// stops routing to one from the poll that sees it answer anything but 200.
type balancer struct {
	period   time.Duration
	mu       sync.Mutex
	backends []*backend
	next     atomic.Uint64
	proxy    *httputil.ReverseProxy
	probe    *http.Client
}

func newBalancer(period time.Duration) *balancer {
	b := &balancer{period: period, probe: &http.Client{Timeout: period}}
	b.proxy = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(r.In.Context().Value(backendKey{}).(*backend).url)
		},
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, ResponseHeaderTimeout: 10 * time.Second},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			http.Error(w, "balancer: "+err.Error(), http.StatusBadGateway)
		},
	}
	return b
}

type backendKey struct{}

func (b *balancer) add(be *backend) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.backends = append(b.backends, be)
}

func (b *balancer) remove(be *backend) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, x := range b.backends {
		if x == be {
			b.backends = append(b.backends[:i], b.backends[i+1:]...)
			return
		}
	}
}

func (b *balancer) readyBackends() []*backend {
	b.mu.Lock()
	defer b.mu.Unlock()
	var ready []*backend
	for _, be := range b.backends {
		if be.ready.Load() {
			ready = append(ready, be)
		}
	}
	return ready
}

// pollForever checks every backend's readiness once per period until stop is closed.
func (b *balancer) pollForever(stop <-chan struct{}) {
	for {
		b.mu.Lock()
		backends := append([]*backend(nil), b.backends...)
		b.mu.Unlock()
		for _, be := range backends {
			resp, err := b.probe.Get(be.url.String() + "/readyz")
			ok := err == nil && resp.StatusCode == http.StatusOK
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			be.ready.Store(ok)
		}
		select {
		case <-stop:
			return
		case <-time.After(b.period):
		}
	}
}

func (b *balancer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ready := b.readyBackends()
	if len(ready) == 0 {
		http.Error(w, "balancer: no ready backend", http.StatusServiceUnavailable)
		return
	}
	be := ready[b.next.Add(1)%uint64(len(ready))]
	b.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), backendKey{}, be)))
}

// startBackend starts one gateway process on a free port.
func startBackend(t *testing.T, bin string, env []string) *backend {
	t.Helper()
	port := freePort(t)
	logPath := filepath.Join(t.TempDir(), "gateway.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = append([]string{fmt.Sprintf("PORT=%d", port)}, env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	be := &backend{url: &url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", port)}, cmd: cmd,
		exited: make(chan error, 1), logPath: logPath}
	go func() {
		be.exited <- cmd.Wait()
		logFile.Close()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})
	return be
}

// TestRollingRestartsThroughABalancerLoseNoRequest plays ten rolling restarts of the real
// binary as a load balancer sees them: clients send a steady load through the balancer the
// whole time, a new backend joins once its readiness says so, the old one gets SIGTERM while
// slow completions are running on it, the balancer takes it out at its next readiness poll
// (the period is at most half of SHUTDOWN_DRAIN), and the old one drains, finishes what it
// holds and exits 0. Not one request may fail, and every slow completion must complete.
func TestRollingRestartsThroughABalancerLoseNoRequest(t *testing.T) {
	const (
		drain           = time.Second
		poll            = drain / 4 // at most half of the drain, as readinessProbe.periodSeconds must be
		shutdownTimeout = 3 * time.Second
		workerDelay     = 700 * time.Millisecond
		restarts        = 10
		readers         = 4
		completers      = 2
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
	env := []string{
		"CATALOG_PATH=" + catalog,
		"WORKER_URL=" + worker.URL,
		"WORKER_API_TOKEN=test-token",
		"WORKER_TIMEOUT=3s",
		"SHUTDOWN_DRAIN=" + drain.String(),
		"SHUTDOWN_TIMEOUT=" + shutdownTimeout.String(),
	}

	lb := newBalancer(poll)
	front := httptest.NewServer(lb)
	defer front.Close()
	stopPolling := make(chan struct{})
	polling := make(chan struct{})
	go func() { lb.pollForever(stopPolling); close(polling) }()
	defer func() { close(stopPolling); <-polling }()

	waitUntilRouted := func(be *backend) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !be.ready.Load() {
			if time.Now().After(deadline) {
				logs, _ := os.ReadFile(be.logPath)
				t.Fatalf("backend %s never became ready:\n%s", be.url.Host, logs)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	current := startBackend(t, bin, env)
	lb.add(current)
	waitUntilRouted(current)

	var (
		reads, completions, failed atomic.Int64
		failuresMu                 sync.Mutex
		failures                   []string
		stopLoad                   = make(chan struct{})
		wg                         sync.WaitGroup
	)
	fail := func(format string, args ...any) {
		failed.Add(1)
		failuresMu.Lock()
		defer failuresMu.Unlock()
		if len(failures) < 10 {
			failures = append(failures, fmt.Sprintf(format, args...))
		}
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: readers + completers}}
	defer client.CloseIdleConnections()
	send := func(method, body string, counter *atomic.Int64) {
		var resp *http.Response
		var err error
		if method == http.MethodPost {
			resp, err = client.Post(front.URL+"/v1/ai/complete", "application/json", strings.NewReader(body))
		} else {
			resp, err = client.Get(front.URL + "/v1/modules")
		}
		if err != nil {
			fail("%s: %v", method, err)
			return
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		switch {
		case err != nil:
			fail("%s: reading the answer: %v", method, err)
		case resp.StatusCode != http.StatusOK:
			fail("%s: status %d %s", method, resp.StatusCode, data)
		case method == http.MethodPost && string(data) != workerAnswer:
			fail("POST: answer %s", data)
		default:
			counter.Add(1)
		}
	}
	for range readers {
		wg.Go(func() {
			for {
				select {
				case <-stopLoad:
					return
				case <-time.After(2 * time.Millisecond):
				}
				send(http.MethodGet, "", &reads)
			}
		})
	}
	for range completers {
		wg.Go(func() {
			for {
				select {
				case <-stopLoad:
					return
				default:
				}
				send(http.MethodPost, validCompletion, &completions)
			}
		})
	}

	for i := range restarts {
		next := startBackend(t, bin, env)
		lb.add(next)
		waitUntilRouted(next)
		old := current
		current = next
		time.Sleep(workerDelay / 2) // slow completions are running on the old backend
		signalled := time.Now()
		if err := old.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-old.exited:
			logs, _ := os.ReadFile(old.logPath)
			if err != nil {
				t.Fatalf("restart %d: the old backend exited with %v:\n%s", i+1, err, logs)
			}
			if took := time.Since(signalled); took < drain || took > drain+shutdownTimeout {
				t.Errorf("restart %d: exited %s after SIGTERM, want within drain..drain+timeout", i+1, took)
			}
			if !strings.Contains(string(logs), "shutdown: complete") {
				t.Errorf("restart %d: no clean shutdown in the log:\n%s", i+1, logs)
			}
		case <-time.After(drain + shutdownTimeout + 2*time.Second):
			t.Fatalf("restart %d: the old backend did not exit", i+1)
		}
		lb.remove(old)
	}
	close(stopLoad)
	wg.Wait()

	if n := failed.Load(); n != 0 {
		t.Errorf("%d failed requests across %d SIGTERMs, want 0: %v", n, restarts, failures)
	}
	if reads.Load() < 500 || completions.Load() < restarts*completers {
		t.Errorf("only %d reads and %d completions succeeded: the load did not run", reads.Load(), completions.Load())
	}
	t.Logf("%d SIGTERMs: %d reads and %d slow completions through the balancer, 0 failed",
		restarts, reads.Load(), completions.Load())
}
