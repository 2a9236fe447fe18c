package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeWorker stands in for the AI Worker's POST /v1/complete.
type fakeWorker struct {
	*httptest.Server
	calls    atomic.Int32
	lastReq  atomic.Pointer[http.Request]
	lastBody atomic.Pointer[string]
}

func newFakeWorker(t *testing.T, answer http.HandlerFunc) *fakeWorker {
	t.Helper()
	f := &fakeWorker{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/complete" {
			http.Error(w, "wrong route "+r.Method+" "+r.URL.Path, http.StatusTeapot)
			return
		}
		body, _ := io.ReadAll(r.Body)
		s := string(body)
		f.lastBody.Store(&s)
		f.lastReq.Store(r.Clone(r.Context()))
		f.calls.Add(1)
		answer(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func answerJSON(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

const (
	validCompletion = `{"module":"summarize","prompt":"Summarize: the quick brown fox."}`
	workerAnswer    = `{"module":"summarize","model":"@cf/meta/llama-3.1-8b-instruct","output":"A fox is quick."}`
)

func TestCompleteRejectsInvalidRequestsWithoutCallingTheWorker(t *testing.T) {
	worker := newFakeWorker(t, answerJSON(200, workerAnswer))
	g := newTestGateway(t, map[string]string{"WORKER_URL": worker.URL, "MAX_BODY_BYTES": "1024"})
	tests := []struct {
		name       string
		body       string
		wantStatus int
		wantCode   ErrorDetailCode
		wantInMsg  string
	}{
		{"malformed JSON", `{"module":`, 400, ErrorDetailCodeBadRequest, "not valid JSON"},
		{"empty body", ``, 400, ErrorDetailCodeBadRequest, "empty"},
		{"array instead of object", `[]`, 400, ErrorDetailCodeBadRequest, "JSON object"},
		{"unknown field", `{"module":"summarize","prompt":"x","temperature":0.2}`, 400, ErrorDetailCodeBadRequest, `unknown field "temperature"`},
		{"missing prompt", `{"module":"summarize"}`, 400, ErrorDetailCodeBadRequest, "prompt"},
		{"empty prompt", `{"module":"summarize","prompt":""}`, 400, ErrorDetailCodeBadRequest, "prompt"},
		{"missing module", `{"prompt":"x"}`, 400, ErrorDetailCodeBadRequest, "module"},
		{"malformed module", `{"module":"Summarize","prompt":"x"}`, 400, ErrorDetailCodeBadRequest, "module"},
		{"module of wrong type", `{"module":7,"prompt":"x"}`, 400, ErrorDetailCodeBadRequest, `"module"`},
		{"two objects", validCompletion + validCompletion, 400, ErrorDetailCodeBadRequest, "single JSON object"},
		{"trailing garbage", validCompletion + `x`, 400, ErrorDetailCodeBadRequest, "single JSON object"},
		{"key in another case", `{"Module":"summarize","prompt":"x"}`, 400, ErrorDetailCodeBadRequest, `unknown field "Module"`},
		{"duplicate key", `{"module":"summarize","prompt":"x","prompt":"y"}`, 400, ErrorDetailCodeBadRequest, `duplicate field "prompt"`},
		{"null prompt", `{"module":"summarize","prompt":null}`, 400, ErrorDetailCodeBadRequest, "prompt"},
		{"unknown module", `{"module":"nope","prompt":"x"}`, 404, ErrorDetailCodeNotFound, "nope"},
		{"body over MAX_BODY_BYTES", `{"module":"summarize","prompt":"` + strings.Repeat("x", 2000) + `"}`, 413, ErrorDetailCodePayloadTooLarge, "1024"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := g.do(t, "POST", "/v1/ai/complete", tt.body)
			wantError(t, rec, tt.wantStatus, tt.wantCode, tt.wantInMsg)
		})
	}
	if n := worker.calls.Load(); n != 0 {
		t.Errorf("the Worker was called %d times for invalid requests", n)
	}
}

func TestCompleteRequiresAJSONContentType(t *testing.T) {
	worker := newFakeWorker(t, answerJSON(200, workerAnswer))
	g := newTestGateway(t, map[string]string{"WORKER_URL": worker.URL})
	for _, contentType := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "", "application/jsonx"} {
		t.Run(contentType, func(t *testing.T) {
			rec := g.do(t, "POST", "/v1/ai/complete", validCompletion, "Content-Type", contentType)
			wantError(t, rec, 415, ErrorDetailCodeUnsupportedMediaType, "application/json")
		})
	}
	if rec := g.do(t, "POST", "/v1/ai/complete", validCompletion, "Content-Type", "application/json; charset=utf-8"); rec.Code != 200 {
		t.Errorf("application/json with a charset: %d %s", rec.Code, rec.Body)
	}
	if n := worker.calls.Load(); n != 1 {
		t.Errorf("the Worker was called %d times, want once", n)
	}
}

func TestCompletePromptLengthCountsCharactersNotBytes(t *testing.T) {
	worker := newFakeWorker(t, answerJSON(200, workerAnswer))
	g := newTestGateway(t, map[string]string{"WORKER_URL": worker.URL})
	rec := g.do(t, "POST", "/v1/ai/complete", `{"module":"translate","prompt":"`+strings.Repeat("é", 8000)+`"}`)
	if rec.Code != 200 {
		t.Fatalf("8000 two-byte characters: status %d, want 200 (%s)", rec.Code, rec.Body)
	}
	rec = g.do(t, "POST", "/v1/ai/complete", `{"module":"translate","prompt":"`+strings.Repeat("é", 8001)+`"}`)
	if rec.Code != 400 {
		t.Fatalf("8001 characters: status %d, want 400 (%s)", rec.Code, rec.Body)
	}
}

func TestCompleteForwardsToTheWorkerAndRelaysItsAnswer(t *testing.T) {
	worker := newFakeWorker(t, answerJSON(200, workerAnswer))
	g := newTestGateway(t, map[string]string{"WORKER_URL": worker.URL + "/", "WORKER_API_TOKEN": "tok-123"})

	rec := g.do(t, "POST", "/v1/ai/complete", validCompletion, "X-Request-Id", "trace-7", "Content-Type", "application/json")
	if rec.Code != 200 {
		t.Fatalf("status %d, want 200 (%s)", rec.Code, rec.Body)
	}
	if rec.Header().Get("Content-Type") != "application/json" || rec.Body.String() != workerAnswer {
		t.Errorf("relayed %q %s, want the Worker's body %s", rec.Header().Get("Content-Type"), rec.Body, workerAnswer)
	}
	req := worker.lastReq.Load()
	if got := req.Header.Get("Authorization"); got != "Bearer tok-123" {
		t.Errorf("Authorization = %q, want Bearer tok-123", got)
	}
	if got := req.Header.Get("X-Request-Id"); got != "trace-7" {
		t.Errorf("X-Request-Id to the Worker = %q, want trace-7", got)
	}
	if got := req.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type to the Worker = %q", got)
	}
	var sent, original map[string]any
	_ = json.Unmarshal([]byte(*worker.lastBody.Load()), &sent)
	_ = json.Unmarshal([]byte(validCompletion), &original)
	if sent["module"] != original["module"] || sent["prompt"] != original["prompt"] || len(sent) != 2 {
		t.Errorf("forwarded body %s, want %s", *worker.lastBody.Load(), validCompletion)
	}
	if strings.Contains(g.logs.String(), "tok-123") {
		t.Error("the Worker token appears in the logs")
	}
}

func TestCompleteSendsNoAuthorizationWithoutAToken(t *testing.T) {
	worker := newFakeWorker(t, answerJSON(200, workerAnswer))
	g := newTestGateway(t, map[string]string{"WORKER_URL": worker.URL, "WORKER_AUTH": "none"})
	if rec := g.do(t, "POST", "/v1/ai/complete", validCompletion, "Content-Type", "application/json"); rec.Code != 200 {
		t.Fatalf("status %d (%s)", rec.Code, rec.Body)
	}
	if got := worker.lastReq.Load().Header.Get("Authorization"); got != "" {
		t.Errorf("Authorization = %q, want none", got)
	}
}

func TestCompleteMapsWorkerAnswersToContractErrors(t *testing.T) {
	tests := []struct {
		name       string
		answer     http.HandlerFunc
		wantStatus int
		wantCode   ErrorDetailCode
		wantInMsg  string
	}{
		{"Worker 400 passes through", answerJSON(400, `{"error":{"code":"bad_request","message":"prompt rejected by the model"}}`), 400, ErrorDetailCodeBadRequest, "prompt rejected by the model"},
		{"Worker 404 passes through", answerJSON(404, `{"error":{"code":"not_found","message":"module summarize is unknown to the Worker"}}`), 404, ErrorDetailCodeNotFound, "unknown to the Worker"},
		{"Worker 413 passes through", answerJSON(413, `{"error":{"code":"payload_too_large","message":"too big"}}`), 413, ErrorDetailCodePayloadTooLarge, "too big"},
		{"Worker 400 without a JSON body", answerJSON(400, `nope`), 400, ErrorDetailCodeBadRequest, "400"},
		{"Worker 401 is the gateway's fault", answerJSON(401, `{"error":{"code":"unauthorized","message":"bad token"}}`), 502, ErrorDetailCodeUpstreamError, "credentials"},
		{"Worker 429 means unavailable", answerJSON(429, `{}`), 503, ErrorDetailCodeUpstreamUnavailable, "rate limiting"},
		{"Worker 418 is an upstream error", answerJSON(418, `{}`), 502, ErrorDetailCodeUpstreamError, "418"},
		{"Worker 500", answerJSON(500, `{"error":{"code":"internal","message":"x"}}`), 502, ErrorDetailCodeUpstreamError, "failed"},
		{"Worker 503", answerJSON(503, ``), 502, ErrorDetailCodeUpstreamError, "failed"},
		{"Worker redirect is not followed", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://127.0.0.1:1/elsewhere", http.StatusTemporaryRedirect)
		}, 502, ErrorDetailCodeUpstreamError, "failed"},
		{"Worker 200 that is not JSON", answerJSON(200, `<html>`), 502, ErrorDetailCodeUpstreamError, "failed"},
		{"Worker slower than WORKER_TIMEOUT", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}, 504, ErrorDetailCodeUpstreamTimeout, "in time"},
		{"Worker stalls mid-body", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(200)
			_, _ = io.WriteString(w, `{"module":`)
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}, 504, ErrorDetailCodeUpstreamTimeout, "in time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			worker := newFakeWorker(t, tt.answer)
			g := newTestGateway(t, map[string]string{"WORKER_URL": worker.URL, "WORKER_TIMEOUT": "200ms"})
			start := time.Now()
			rec := g.do(t, "POST", "/v1/ai/complete", validCompletion)
			if elapsed := time.Since(start); elapsed > 2*time.Second {
				t.Errorf("took %s: the gateway must never hang on the Worker", elapsed)
			}
			wantError(t, rec, tt.wantStatus, tt.wantCode, tt.wantInMsg)
		})
	}
}

func TestCompleteWithoutAWorkerIsUnavailable(t *testing.T) {
	g := newTestGateway(t, nil)
	rec := g.do(t, "POST", "/v1/ai/complete", validCompletion)
	if rec.Code != 503 || errorCode(t, rec) != ErrorDetailCodeUpstreamUnavailable {
		t.Fatalf("status %d (%s), want 503 upstream_unavailable", rec.Code, rec.Body)
	}
}

func TestCompleteWithAnUnreachableWorkerIsAnUpstreamError(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	url := closed.URL
	closed.Close() // nothing listens there any more: connection refused
	g := newTestGateway(t, map[string]string{"WORKER_URL": url})
	rec := g.do(t, "POST", "/v1/ai/complete", validCompletion)
	if rec.Code != 502 || errorCode(t, rec) != ErrorDetailCodeUpstreamError {
		t.Fatalf("status %d (%s), want 502 upstream_error", rec.Code, rec.Body)
	}
}

func TestCircuitBreakerAroundTheWorker(t *testing.T) {
	var healthy atomic.Bool
	worker := newFakeWorker(t, func(w http.ResponseWriter, r *http.Request) {
		if healthy.Load() {
			answerJSON(200, workerAnswer)(w, r)
			return
		}
		answerJSON(500, `{}`)(w, r)
	})
	g := newTestGateway(t, map[string]string{
		"WORKER_URL": worker.URL, "BREAKER_FAILURES": "3", "BREAKER_COOLDOWN": "30s",
	})
	expect := func(step string, wantStatus int, wantCalls int32) {
		t.Helper()
		rec := g.do(t, "POST", "/v1/ai/complete", validCompletion)
		if rec.Code != wantStatus {
			t.Fatalf("%s: status %d, want %d (%s)", step, rec.Code, wantStatus, rec.Body)
		}
		if got := worker.calls.Load(); got != wantCalls {
			t.Fatalf("%s: the Worker has seen %d calls, want %d", step, got, wantCalls)
		}
	}

	// Closed: failures reach the Worker and map to 502 until the threshold.
	expect("1st failure", 502, 1)
	expect("2nd failure", 502, 2)
	expect("3rd failure opens the breaker", 502, 3)
	if g.breaker.State() != breakerOpen {
		t.Fatalf("breaker %s, want open", g.breaker.State())
	}
	// Open: refused without touching the Worker.
	expect("while open", 503, 3)
	g.clock.Advance(29 * time.Second)
	expect("just before the cool-down ends", 503, 3)

	// Half-open: one probe; its failure re-opens the breaker for another cool-down.
	g.clock.Advance(time.Second)
	expect("failing probe", 502, 4)
	expect("re-opened", 503, 4)

	// A successful probe closes it again and traffic flows.
	healthy.Store(true)
	g.clock.Advance(30 * time.Second)
	expect("successful probe", 200, 5)
	if g.breaker.State() != breakerClosed {
		t.Fatalf("breaker %s, want closed", g.breaker.State())
	}
	expect("closed again", 200, 6)

	rec := g.do(t, "GET", "/healthz", "")
	if rec.Code != 200 {
		t.Error("liveness must not depend on the Worker")
	}
	if !strings.Contains(g.logs.String(), `"to":"open"`) {
		t.Error("breaker transitions are not logged")
	}
}

func TestWorkerClientErrorsAreNotCountedWhenTheCallerLeaves(t *testing.T) {
	worker := newFakeWorker(t, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	g := newTestGateway(t, map[string]string{"WORKER_URL": worker.URL, "BREAKER_FAILURES": "1", "WORKER_TIMEOUT": "5s"})
	req := httptest.NewRequest("POST", "/v1/ai/complete", strings.NewReader(validCompletion))
	req.Header.Set("Content-Type", "application/json")
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	rec := httptest.NewRecorder()
	g.handler.ServeHTTP(rec, req.WithContext(ctx))
	if g.breaker.State() != breakerClosed {
		t.Errorf("a caller hanging up opened the breaker (state %s)", g.breaker.State())
	}
}

// wantError checks an error response: its status, its code and what its message mentions.
func wantError(t *testing.T, rec *httptest.ResponseRecorder, status int, code ErrorDetailCode, inMessage string) {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status %d, want %d (body %s)", rec.Code, status, rec.Body)
	}
	gotCode, message := errorOf(t, rec)
	if gotCode != code {
		t.Errorf("code %q, want %q", gotCode, code)
	}
	if !strings.Contains(message, inMessage) {
		t.Errorf("message %q does not mention %q", message, inMessage)
	}
}
