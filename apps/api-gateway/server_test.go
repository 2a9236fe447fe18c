package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testGateway is the real handler wired as run wires it, with a controllable clock.
type testGateway struct {
	handler   http.Handler
	readiness *Readiness
	clock     *fakeClock
	breaker   *breaker
	metrics   *Metrics
	logs      *syncBuffer
}

func newTestGateway(t *testing.T, env map[string]string) *testGateway {
	t.Helper()
	env2 := map[string]string{"CATALOG_PATH": "catalog.json", "LOG_LEVEL": "debug"}
	for k, v := range env {
		env2[k] = v
	}
	// The gateway refuses to call a Worker without a token unless told WORKER_AUTH=none.
	if env2["WORKER_URL"] != "" && env2["WORKER_API_TOKEN"] == "" && env2["WORKER_AUTH"] == "" {
		env2["WORKER_API_TOKEN"] = "test-token"
	}
	cfg, err := loadConfig(envFrom(env2))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	catalog, err := loadCatalog(cfg.CatalogPath)
	if err != nil {
		t.Fatalf("catalog: %v", err)
	}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: cfg.LogLevel}))
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	metrics := NewMetrics()
	brk := newLoggedBreaker(cfg, clock.Now, logger, metrics)
	metrics.WatchBreaker(brk)
	readiness := &Readiness{}
	return &testGateway{
		handler:   NewServer(logger, newAccessLog(logs, cfg.LogLevel), catalog, NewWorkerClient(cfg, brk, metrics), readiness, cfg.MaxBodyBytes, metrics),
		metrics:   metrics,
		readiness: readiness,
		clock:     clock,
		breaker:   brk,
		logs:      logs,
	}
}

func (g *testGateway) do(t *testing.T, method, target, body string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json") // unless header says otherwise
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	g.handler.ServeHTTP(rec, req)
	return rec
}

// decodeJSON checks the response is JSON and decodes it into a generic map.
func decodeJSON(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q, want application/json (body %s)", ct, rec.Body)
	}
	var v map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, rec.Body)
	}
	return v
}

// errorCode returns the contract error code, failing unless the body is a well-formed
// Error carrying the response's request id.
func errorCode(t *testing.T, rec *httptest.ResponseRecorder) ErrorDetailCode {
	t.Helper()
	code, _ := errorOf(t, rec)
	return code
}

// errorOf is errorCode that also returns the message.
func errorOf(t *testing.T, rec *httptest.ResponseRecorder) (code ErrorDetailCode, message string) {
	t.Helper()
	var body Error // generated from the contract
	dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		t.Fatalf("not an Error body: %v: %s", err, rec.Body)
	}
	if body.Error.Message == "" {
		t.Errorf("error without message: %s", rec.Body)
	}
	if !body.Error.Code.Valid() {
		t.Errorf("error code %q is not in the contract's enum", body.Error.Code)
	}
	if id := rec.Header().Get("X-Request-Id"); body.Error.RequestId != id || id == "" {
		t.Errorf("error request_id %q, header X-Request-Id %q", body.Error.RequestId, id)
	}
	return body.Error.Code, body.Error.Message
}

func TestRoutes(t *testing.T) {
	g := newTestGateway(t, nil)
	tests := []struct {
		name       string
		method     string
		target     string
		wantStatus int
		wantBody   string          // exact JSON, compared after a round trip; "" to skip
		wantCode   ErrorDetailCode // contract error code; "" for success
	}{
		{"liveness", "GET", "/healthz", 200, `{"status":"ok"}`, ""},
		{"liveness HEAD", "HEAD", "/healthz", 200, "", ""},
		{"readiness", "GET", "/readyz", 200, `{"status":"ready"}`, ""},
		{"one module", "GET", "/v1/modules/summarize", 200,
			`{"name":"summarize","description":"Condenses a document into a short, faithful summary of its key points.","model":"@cf/meta/llama-3.1-8b-instruct","version":"1.2.0"}`, ""},
		{"malformed module name", "GET", "/v1/modules/Summarize", 400, "", ErrorDetailCodeBadRequest},
		{"module name with underscore", "GET", "/v1/modules/sum_marize", 400, "", ErrorDetailCodeBadRequest},
		{"module name too long", "GET", "/v1/modules/" + strings.Repeat("a", 64), 400, "", ErrorDetailCodeBadRequest},
		{"unknown module", "GET", "/v1/modules/nope", 404, "", ErrorDetailCodeNotFound},
		{"unknown path", "GET", "/v2/things", 404, "", ErrorDetailCodeNotFound},
		{"root", "GET", "/", 404, "", ErrorDetailCodeNotFound},
		{"nested module path", "GET", "/v1/modules/summarize/extra", 404, "", ErrorDetailCodeNotFound},
		{"POST healthz", "POST", "/healthz", 405, "", ErrorDetailCodeMethodNotAllowed},
		{"DELETE readyz", "DELETE", "/readyz", 405, "", ErrorDetailCodeMethodNotAllowed},
		{"POST modules", "POST", "/v1/modules", 405, "", ErrorDetailCodeMethodNotAllowed},
		{"PUT module", "PUT", "/v1/modules/summarize", 405, "", ErrorDetailCodeMethodNotAllowed},
		{"GET complete", "GET", "/v1/ai/complete", 405, "", ErrorDetailCodeMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := g.do(t, tt.method, tt.target, "")
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d (body %s)", rec.Code, tt.wantStatus, rec.Body)
			}
			if rec.Header().Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id in the response")
			}
			if tt.method == "HEAD" {
				return
			}
			body := decodeJSON(t, rec)
			if tt.wantCode != "" {
				if got := errorCode(t, rec); got != tt.wantCode {
					t.Errorf("error code %q, want %q", got, tt.wantCode)
				}
			}
			if tt.wantBody != "" {
				var want map[string]any
				if err := json.Unmarshal([]byte(tt.wantBody), &want); err != nil {
					t.Fatal(err)
				}
				gotJSON, _ := json.Marshal(body)
				wantJSON, _ := json.Marshal(want)
				if !bytes.Equal(gotJSON, wantJSON) {
					t.Errorf("body %s, want %s", gotJSON, wantJSON)
				}
			}
		})
	}
}

func TestMethodNotAllowedNamesTheAllowedMethods(t *testing.T) {
	g := newTestGateway(t, nil)
	if got := g.do(t, "POST", "/v1/modules", "").Header().Get("Allow"); got != "GET, HEAD" {
		t.Errorf("Allow = %q, want GET, HEAD", got)
	}
	if got := g.do(t, "GET", "/v1/ai/complete", "").Header().Get("Allow"); got != "POST" {
		t.Errorf("Allow = %q, want POST", got)
	}
}

func TestListModulesIsSortedByName(t *testing.T) {
	g := newTestGateway(t, nil)
	rec := g.do(t, "GET", "/v1/modules", "")
	if rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	var body struct {
		Modules []Module `json:"modules"`
	}
	dec := json.NewDecoder(rec.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range body.Modules {
		names = append(names, m.Name)
	}
	if got := strings.Join(names, ","); got != "classify,summarize,translate" {
		t.Errorf("modules %s, want classify,summarize,translate", got)
	}
}

func TestReadinessTurnsUnavailableWhenDraining(t *testing.T) {
	g := newTestGateway(t, nil)
	g.readiness.Drain()
	rec := g.do(t, "GET", "/readyz", "")
	if rec.Code != 503 {
		t.Fatalf("status %d, want 503", rec.Code)
	}
	if got := decodeJSON(t, rec)["status"]; got != "draining" {
		t.Errorf("status %q, want draining", got)
	}
	if rec := g.do(t, "GET", "/healthz", ""); rec.Code != 200 {
		t.Errorf("liveness while draining: %d, want 200", rec.Code)
	}
}

func TestRequestIDIsHonouredWhenSaneAndGeneratedOtherwise(t *testing.T) {
	g := newTestGateway(t, nil)
	tests := []struct {
		name, incoming string
		keep           bool
	}{
		{"uuid", "0f8fad5b-d9cb-469f-a165-70867728950e", true},
		{"trace-like", "abc.DEF_123:4", true},
		{"none", "", false},
		{"spaces", "a b", false},
		{"log injection", `x","level":"ERROR`, false},
		{"too long", strings.Repeat("a", 129), false},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := g.do(t, "GET", "/v1/modules/nope", "", "X-Request-Id", tt.incoming)
			got := rec.Header().Get("X-Request-Id")
			if tt.keep && got != tt.incoming {
				t.Errorf("X-Request-Id %q, want the caller's %q", got, tt.incoming)
			}
			if !tt.keep && (got == tt.incoming || len(got) != 32 || seen[got]) {
				t.Errorf("X-Request-Id %q, want a fresh generated id", got)
			}
			seen[got] = true
			if errorCode(t, rec) != ErrorDetailCodeNotFound {
				t.Error("wrong error code")
			}
		})
	}
}

func TestEveryRequestIsAccessLoggedAsJSON(t *testing.T) {
	g := newTestGateway(t, nil)
	g.do(t, "GET", "/v1/modules/summarize", "", "X-Request-Id", "trace-42")
	var found bool
	for _, line := range strings.Split(strings.TrimSpace(g.logs.String()), "\n") {
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if entry["msg"] == "request" && entry["request_id"] == "trace-42" {
			found = true
			if entry["status"] != float64(200) || entry["path"] != "/v1/modules/summarize" || entry["method"] != "GET" {
				t.Errorf("access log %v", entry)
			}
			if _, ok := entry["duration_ms"]; !ok {
				t.Errorf("access log without duration: %v", entry)
			}
		}
	}
	if !found {
		t.Errorf("no access log line for the request:\n%s", g.logs)
	}
}

func TestPanicsBecomeJSONInternalErrors(t *testing.T) {
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	h := withRequestContext(logger, newAccessLog(logs, slog.LevelInfo), nil, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("boom")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 500 || errorCode(t, rec) != ErrorDetailCodeInternal {
		t.Fatalf("status %d body %s, want 500 internal", rec.Code, rec.Body)
	}
	if !strings.Contains(logs.String(), "handler panic") {
		t.Errorf("panic not logged: %s", logs)
	}
}
