package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// scrape reads /metrics through the gateway's own handler.
func (g *testGateway) scrape(t *testing.T) string {
	t.Helper()
	rec := g.do(t, "GET", "/metrics", "")
	if rec.Code != 200 {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q, want the Prometheus text format", ct)
	}
	return rec.Body.String()
}

// wantSample fails unless the exposition holds the sample line exactly (labels in the
// format's alphabetical order).
func wantSample(t *testing.T, exposition, sample string) {
	t.Helper()
	for _, line := range strings.Split(exposition, "\n") {
		if line == sample {
			return
		}
	}
	name, _, _ := strings.Cut(sample, "{")
	var related []string
	for _, line := range strings.Split(exposition, "\n") {
		if strings.HasPrefix(line, name) {
			related = append(related, line)
		}
	}
	t.Errorf("no sample %q; %s samples:\n%s", sample, name, strings.Join(related, "\n"))
}

func TestRequestsAreCountedByRoutePatternMethodAndCodeNeverByRawPath(t *testing.T) {
	g := newTestGateway(t, nil)
	g.do(t, "GET", "/v1/modules/summarize", "")
	g.do(t, "GET", "/v1/modules/summarize", "")
	g.do(t, "GET", "/v1/modules/no-such-module-qqq", "")
	g.do(t, "POST", "/healthz", "")
	g.do(t, "GET", "/some/random/path-zzz", "")
	g.do(t, "GET", "//v1/modules", "")
	g.do(t, "BREW", "/v1/modules", "")
	m := g.scrape(t)
	wantSample(t, m, `gateway_http_requests_total{code="200",method="GET",route="/v1/modules/{name}"} 2`)
	wantSample(t, m, `gateway_http_requests_total{code="404",method="GET",route="/v1/modules/{name}"} 1`)
	wantSample(t, m, `gateway_http_requests_total{code="405",method="POST",route="/healthz"} 1`)
	wantSample(t, m, `gateway_http_requests_total{code="404",method="GET",route="unmatched"} 2`)
	wantSample(t, m, `gateway_http_requests_total{code="405",method="OTHER",route="/v1/modules"} 1`)
	wantSample(t, m, `gateway_http_request_duration_seconds_count{code="200",method="GET",route="/v1/modules/{name}"} 2`)
	wantSample(t, m, `gateway_http_request_duration_seconds_bucket{code="200",method="GET",route="/v1/modules/{name}",le="+Inf"} 2`)
	// The scrape itself is in flight while the exposition is written.
	wantSample(t, m, `gateway_http_requests_in_flight 1`)
	for _, raw := range []string{"qqq", "zzz", "BREW", "//v1"} {
		if strings.Contains(m, raw) {
			t.Errorf("the raw request leaks into a label: %q", raw)
		}
	}
}

func TestWorkerCallsAreCountedByOutcomeWithTheirLatency(t *testing.T) {
	var answer atomic.Pointer[http.HandlerFunc]
	worker := newFakeWorker(t, func(w http.ResponseWriter, r *http.Request) { (*answer.Load())(w, r) })
	// A timeout long enough that an answered call never times out on a loaded machine (the
	// cut-off call below waits for it to pass, whatever its length).
	g := newTestGateway(t, map[string]string{"WORKER_URL": worker.URL, "WORKER_TIMEOUT": "2s", "BREAKER_FAILURES": "2"})
	complete := func(a http.HandlerFunc) {
		answer.Store(&a)
		g.do(t, "POST", "/v1/ai/complete", validCompletion)
	}
	complete(answerJSON(200, workerAnswer))
	complete(answerJSON(404, `{"error":{"code":"not_found","message":"x"}}`)) // answered: ok
	complete(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(30 * time.Second):
		}
	})
	complete(answerJSON(500, `{}`)) // second consecutive failure: the breaker opens
	complete(answerJSON(200, workerAnswer))
	m := g.scrape(t)
	wantSample(t, m, `gateway_worker_calls_total{outcome="ok"} 2`)
	wantSample(t, m, `gateway_worker_calls_total{outcome="timeout"} 1`)
	wantSample(t, m, `gateway_worker_calls_total{outcome="error"} 1`)
	wantSample(t, m, `gateway_worker_calls_total{outcome="rejected"} 1`)
	wantSample(t, m, `gateway_worker_call_duration_seconds_count{outcome="timeout"} 1`)
	// The timed-out call took at least its 2s: it is not in the 1 s bucket.
	wantSample(t, m, `gateway_worker_call_duration_seconds_bucket{outcome="timeout",le="1"} 0`)
	wantSample(t, m, `gateway_circuit_breaker_state 2`)
	wantSample(t, m, `gateway_circuit_breaker_transitions_total{from="closed",to="open"} 1`)
	wantSample(t, m, `gateway_circuit_breaker_transitions_total{from="half-open",to="closed"} 0`)

	g.clock.Advance(10 * time.Second) // the cool-down has passed: the next call probes
	// Until a call probes, the breaker is still open (a dead Worker must not read half-open).
	wantSample(t, g.scrape(t), `gateway_circuit_breaker_state 2`)
	complete(answerJSON(200, workerAnswer))
	m = g.scrape(t)
	wantSample(t, m, `gateway_circuit_breaker_state 0`)
	wantSample(t, m, `gateway_circuit_breaker_transitions_total{from="open",to="half-open"} 1`)
	wantSample(t, m, `gateway_circuit_breaker_transitions_total{from="half-open",to="closed"} 1`)
}

func TestMetricsIncludeTheGoRuntimeAndTheProcess(t *testing.T) {
	m := newTestGateway(t, nil).scrape(t)
	for _, name := range []string{"go_goroutines ", "go_memstats_alloc_bytes ", "process_cpu_seconds_total ",
		"process_resident_memory_bytes ", "process_open_fds "} {
		if !strings.Contains(m, "\n"+name) {
			t.Errorf("no %s in the exposition", strings.TrimSpace(name))
		}
	}
}

func TestMetricsCanBeSwitchedOff(t *testing.T) {
	g := startRun(t, map[string]string{"METRICS_ENABLED": "false"})
	resp, err := http.Get("http://" + g.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || strings.Contains(string(body), "gateway_") {
		t.Errorf("GET /metrics with metrics off: %d %s", resp.StatusCode, body)
	}
}

func TestTheRealServerExposesMetricsOnItsPort(t *testing.T) {
	g := startRun(t, nil)
	rawExchange(t, g.addr, "GET /v1/modules HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 40<<10)+"\r\n\r\n").Body.Close()
	resp, err := http.Get("http://" + g.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// A request the server rejects before any route is counted apart: the client's fault.
	wantSample(t, string(body), `gateway_http_malformed_requests_total{code="431"} 1`)
	wantSample(t, string(body), `gateway_http_requests_total{code="200",method="GET",route="/readyz"} 1`)
	if strings.Contains(string(body), `code="431",method="OTHER"`) {
		t.Error("a request net/http could not parse is counted among the answered requests")
	}
}

func TestMalformedRequestsAreNeitherErrorsNorZeroLatencyAnswers(t *testing.T) {
	g := startRun(t, nil)
	// net/http answers these itself, with a 5xx: an unknown transfer encoding (501) and a
	// protocol version it does not speak (505). Neither is the service failing.
	rawExchange(t, g.addr, "POST /v1/ai/complete HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n").Body.Close()
	rawExchange(t, g.addr, "GET /v1/modules HTTP/2.5\r\nHost: x\r\n\r\n").Body.Close()
	resp, err := http.Get("http://" + g.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := string(body)
	wantSample(t, m, `gateway_http_malformed_requests_total{code="501"} 1`)
	wantSample(t, m, `gateway_http_malformed_requests_total{code="505"} 1`)
	for _, line := range strings.Split(m, "\n") {
		if strings.HasPrefix(line, "gateway_http_request") && strings.Contains(line, `code="50`) {
			t.Errorf("a malformed request counted as the service's error: %s", line)
		}
	}
}

func TestAConnectionOverTheCapIsAnErrorWithoutAZeroLatency(t *testing.T) {
	m := NewMetrics()
	m.RequestServed("", "-", http.StatusServiceUnavailable, 0) // what the listener reports
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	wantSample(t, rec.Body.String(), `gateway_http_requests_total{code="503",method="OTHER",route="unmatched"} 1`)
	if strings.Contains(rec.Body.String(), `gateway_http_request_duration_seconds_count{code="503"`) {
		t.Error("a refused connection's 0 s is observed as a latency")
	}
}

func TestAClientThatHangsUpIsCountedAs499NotAsTheGatewaysError(t *testing.T) {
	called := make(chan struct{})
	worker := newFakeWorker(t, func(w http.ResponseWriter, r *http.Request) {
		close(called)
		<-r.Context().Done() // the Worker is slow; the caller gives up first
	})
	g := newTestGateway(t, map[string]string{"WORKER_URL": worker.URL, "WORKER_TIMEOUT": "10s"})
	ctx, hangUp := context.WithCancel(context.Background())
	req := httptest.NewRequest("POST", "/v1/ai/complete", strings.NewReader(validCompletion)).WithContext(ctx)
	req.Header.Set("Content-Type", "application/json")
	go func() {
		<-called
		hangUp()
	}()
	g.handler.ServeHTTP(httptest.NewRecorder(), req)

	m := g.scrape(t)
	wantSample(t, m, `gateway_http_requests_total{code="499",method="POST",route="/v1/ai/complete"} 1`)
	if strings.Contains(m, `code="503",method="POST",route="/v1/ai/complete"`) {
		t.Errorf("a caller that hung up is counted as a 503 of the gateway:\n%s", m)
	}
	if !strings.Contains(g.logs.String(), `"path":"/v1/ai/complete","status":499`) {
		t.Errorf("the access log does not record 499 for the abandoned request:\n%s", g.logs.String())
	}
}
