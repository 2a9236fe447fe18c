package main

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is the gateway's Prometheus instrumentation, on a registry of its own (no global
// state). Its names are an interface: alerts and dashboards are written against them. A nil
// *Metrics (METRICS_ENABLED=false) records nothing.
type Metrics struct {
	registry           *prometheus.Registry
	requests           *prometheus.CounterVec
	requestDuration    *prometheus.HistogramVec
	inFlight           prometheus.Gauge
	workerCalls        *prometheus.CounterVec
	workerCallDuration *prometheus.HistogramVec
	breakerTransitions *prometheus.CounterVec
	malformed          *prometheus.CounterVec
	idleClosed         prometheus.Counter
	// requestSeries caches the two series of each (route, method, code): looking a series up by
	// its label values hashes them, on every request.
	requestSeries sync.Map // requestLabels -> requestSeries
}

// requestLabels are the label values of a request's series.
type requestLabels struct {
	route, method string
	code          int
}

// requestSeries are the series a request is recorded in.
type requestSeries struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

// Outcomes of a Worker call, the values of gateway_worker_calls_total's outcome label.
const (
	workerOutcomeOK       = "ok"       // the Worker answered: 2xx, or a 4xx relayed to the caller
	workerOutcomeError    = "error"    // connection error, 5xx, redirect or garbled answer
	workerOutcomeTimeout  = "timeout"  // no answer within WORKER_TIMEOUT
	workerOutcomeRejected = "rejected" // not sent: the circuit breaker is open
)

// routeUnmatched is the route label of a request no route pattern matched (404s, and what the
// server rejects before routing): a raw path never becomes a label value.
const routeUnmatched = "unmatched"

// Latency buckets from 0.5 ms (a catalog read) to 30 s (past any WORKER_TIMEOUT worth having).
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// NewMetrics registers the gateway's metrics and the Go runtime and process collectors.
func NewMetrics() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_http_requests_total",
			Help: "HTTP requests answered, by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gateway_http_request_duration_seconds",
			Help:    "Time from a request's arrival to its handler's return, by route pattern, method and status code.",
			Buckets: latencyBuckets,
		}, []string{"route", "method", "code"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gateway_http_requests_in_flight",
			Help: "HTTP requests being served right now.",
		}),
		workerCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_worker_calls_total",
			Help: "Calls to the AI Worker by outcome: ok, error, timeout, rejected (circuit open).",
		}, []string{"outcome"}),
		workerCallDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gateway_worker_call_duration_seconds",
			Help:    "Duration of calls to the AI Worker by outcome.",
			Buckets: latencyBuckets,
		}, []string{"outcome"}),
		malformed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_http_malformed_requests_total",
			Help: "Requests the server could not parse, refused before any handler ran (400, 431, 501, 505), by status code: the client's fault, so not in gateway_http_requests_total.",
		}, []string{"code"}),
		breakerTransitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_circuit_breaker_transitions_total",
			Help: "Circuit breaker state changes, by from and to state; to=\"open\" counts its openings (trips and failed probes).",
		}, []string{"from", "to"}),
		idleClosed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gateway_idle_connections_closed_total",
			Help: "Idle keep-alive connections closed at MAX_CONNECTIONS to make room for a new client.",
		}),
	}
	m.registry.MustRegister(m.requests, m.requestDuration, m.inFlight, m.workerCalls,
		m.workerCallDuration, m.breakerTransitions, m.malformed, m.idleClosed,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Every series an alert divides by or rates exists from the start, at zero.
	for _, outcome := range []string{workerOutcomeOK, workerOutcomeError, workerOutcomeTimeout, workerOutcomeRejected} {
		m.workerCalls.WithLabelValues(outcome)
		m.workerCallDuration.WithLabelValues(outcome)
	}
	for _, t := range [][2]breakerState{{breakerClosed, breakerOpen}, {breakerOpen, breakerHalfOpen},
		{breakerHalfOpen, breakerClosed}, {breakerHalfOpen, breakerOpen}} {
		m.breakerTransitions.WithLabelValues(t[0].String(), t[1].String())
	}
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// WatchBreaker exports b's state as gateway_circuit_breaker_state (0 closed, 1 half-open,
// 2 open), read at scrape time. A breaker around a dependency that stays down cycles open,
// half-open, open: the alert reads "not closed" with gateway_circuit_breaker_transitions_total
// {to="open"} (its openings), never the gauge alone.
func (m *Metrics) WatchBreaker(b *breaker) {
	if m == nil {
		return
	}
	m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "gateway_circuit_breaker_state",
		Help: "State of the circuit breaker around the AI Worker: 0 closed, 1 half-open (a probe in flight), 2 open.",
	}, func() float64 { return breakerStateValue(b.State()) }))
}

// WatchConnections exports the listener's open connections as gateway_connections_open, read
// at scrape time.
func (m *Metrics) WatchConnections(l *guardedListener) {
	if m == nil {
		return
	}
	m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "gateway_connections_open",
		Help: "Client connections open, idle keep-alive ones included; MAX_CONNECTIONS at most.",
	}, func() float64 { return float64(l.OpenConnections()) }))
}

// IdleConnectionClosed counts one idle connection closed to make room for a new client.
func (m *Metrics) IdleConnectionClosed() {
	if m == nil {
		return
	}
	m.idleClosed.Inc()
}

func breakerStateValue(s breakerState) float64 {
	switch s {
	case breakerHalfOpen:
		return 1
	case breakerOpen:
		return 2
	}
	return 0
}

// BreakerChanged counts one transition.
func (m *Metrics) BreakerChanged(from, to breakerState) {
	if m == nil {
		return
	}
	m.breakerTransitions.WithLabelValues(from.String(), to.String()).Inc()
}

// WorkerCall records one call to the Worker.
func (m *Metrics) WorkerCall(outcome string, took time.Duration) {
	if m == nil {
		return
	}
	m.workerCalls.WithLabelValues(outcome).Inc()
	m.workerCallDuration.WithLabelValues(outcome).Observe(took.Seconds())
}

// RequestStarted counts a request in flight until RequestFinished.
func (m *Metrics) RequestStarted() {
	if m == nil {
		return
	}
	m.inFlight.Inc()
}

// RequestFinished counts a request started with RequestStarted out of those in flight.
func (m *Metrics) RequestFinished() {
	if m == nil {
		return
	}
	m.inFlight.Dec()
}

// RequestServed records one answered request. pattern is the mux pattern that matched
// ("GET /v1/modules/{name}"), empty when none did. An answer the server gave before any
// handler ran (the listener's) comes with no pattern and took 0: a request net/http could not
// parse is the client's fault, counted apart (its 501 or 505 would otherwise be an error of the
// service); a connection refused over the cap is the gateway's (overload) and is counted, but
// its latency is not observed (it would pull the latency down under overload).
func (m *Metrics) RequestServed(pattern, method string, status int, took time.Duration) {
	if m == nil {
		return
	}
	if pattern == "" && took == 0 {
		if status != http.StatusServiceUnavailable {
			m.malformed.WithLabelValues(strconv.Itoa(status)).Inc()
			return
		}
		m.requests.WithLabelValues(routeUnmatched, methodLabel(method), strconv.Itoa(status)).Inc()
		return
	}
	// The labels' values are few (the routes, the standard methods, the codes the gateway
	// answers), so the cache stays small.
	labels := requestLabels{route: routeLabel(pattern), method: methodLabel(method), code: status}
	cached, ok := m.requestSeries.Load(labels)
	if !ok {
		code := strconv.Itoa(status)
		cached, _ = m.requestSeries.LoadOrStore(labels, requestSeries{
			count:    m.requests.WithLabelValues(labels.route, labels.method, code),
			duration: m.requestDuration.WithLabelValues(labels.route, labels.method, code),
		})
	}
	series := cached.(requestSeries)
	series.count.Inc()
	series.duration.Observe(took.Seconds())
}

// routeLabel is the path part of a mux pattern; the catch-all "/" and no pattern at all are
// routeUnmatched.
func routeLabel(pattern string) string {
	if _, path, ok := strings.Cut(pattern, " "); ok {
		pattern = path
	}
	if pattern == "" || pattern == "/" {
		return routeUnmatched
	}
	return pattern
}

// methodLabel keeps the label's values few: a method outside the standard ones is OTHER.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return "OTHER"
}
