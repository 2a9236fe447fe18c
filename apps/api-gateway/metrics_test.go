package main

import (
	"io"
	"net/http"
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
	g := newTestGateway(t, map[string]string{"WORKER_URL": worker.URL, "WORKER_TIMEOUT": "100ms", "BREAKER_FAILURES": "2"})
	complete := func(a http.HandlerFunc) {
		answer.Store(&a)
		g.do(t, "POST", "/v1/ai/complete", validCompletion)
	}
	complete(answerJSON(200, workerAnswer))
	complete(answerJSON(404, `{"error":{"code":"not_found","message":"x"}}`)) // answered: ok
	complete(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(time.Second):
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
	// The timed-out call took at least its 100ms: it is not in the 0.05 s bucket.
	wantSample(t, m, `gateway_worker_call_duration_seconds_bucket{outcome="timeout",le="0.05"} 0`)
	wantSample(t, m, `gateway_circuit_breaker_state 2`)
	wantSample(t, m, `gateway_circuit_breaker_transitions_total{from="closed",to="open"} 1`)
	wantSample(t, m, `gateway_circuit_breaker_transitions_total{from="half-open",to="closed"} 0`)

	g.clock.Advance(10 * time.Second) // the cool-down has passed: the next call probes
	wantSample(t, g.scrape(t), `gateway_circuit_breaker_state 1`)
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
	// A request the server rejects before any route is counted too.
	wantSample(t, string(body), `gateway_http_requests_total{code="431",method="OTHER",route="unmatched"} 1`)
	wantSample(t, string(body), `gateway_http_requests_total{code="200",method="GET",route="/readyz"} 1`)
}
