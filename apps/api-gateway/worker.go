package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// Errors the worker client returns; handleComplete maps each to one contract error code.
var (
	errWorkerNotConfigured = errors.New("no AI Worker is configured (WORKER_URL is empty)")
	errBreakerOpen         = errors.New("circuit breaker is open after repeated AI Worker failures")
)

// upstreamError is a failed call to the Worker: a connection error, a 5xx or a garbled
// answer (Timeout false), or a call that ran out of time (Timeout true).
type upstreamError struct {
	Timeout bool
	Err     error
}

func (e *upstreamError) Error() string { return "AI Worker call failed: " + e.Err.Error() }
func (e *upstreamError) Unwrap() error { return e.Err }

// workerResponse is a Worker answer the gateway relays: a 2xx body or a 4xx error.
type workerResponse struct {
	Status int
	Body   []byte
}

// maxWorkerResponseBytes bounds how much of a Worker answer is read into memory.
const maxWorkerResponseBytes = 1 << 20

// WorkerClient calls the AI Worker's POST /v1/complete with a per-call timeout behind a
// circuit breaker.
type WorkerClient struct {
	endpoint string // "" when no Worker is configured
	token    string
	timeout  time.Duration
	client   *http.Client
	breaker  *breaker
	metrics  *Metrics
}

// NewWorkerClient builds the client for cfg. The transport is pooled and every phase of a
// call is bounded, so a slow or black-holed Worker can never hang a request.
func NewWorkerClient(cfg Config, b *breaker, metrics *Metrics) *WorkerClient {
	phase := min(cfg.WorkerTimeout, 5*time.Second)
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: phase, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   phase,
		ResponseHeaderTimeout: cfg.WorkerTimeout,
		ExpectContinueTimeout: time.Second,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	endpoint := ""
	if cfg.WorkerURL != "" {
		endpoint = cfg.WorkerURL + "/v1/complete"
	}
	return &WorkerClient{
		endpoint: endpoint,
		token:    cfg.WorkerAPIToken,
		timeout:  cfg.WorkerTimeout,
		// Client.Timeout backs up the per-call context; redirects are not followed because
		// they would resend the bearer token somewhere else.
		client: &http.Client{
			Transport:     transport,
			Timeout:       cfg.WorkerTimeout + time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		breaker: b,
		metrics: metrics,
	}
}

// Complete sends body (a validated CompletionRequest) to the Worker. It returns the
// Worker's 2xx or 4xx answer, or one of errWorkerNotConfigured, errBreakerOpen,
// *upstreamError, or the caller's context error when the caller went away.
func (c *WorkerClient) Complete(ctx context.Context, body []byte, requestID string) (workerResponse, error) {
	if c.endpoint == "" {
		return workerResponse{}, errWorkerNotConfigured
	}
	started := time.Now()
	done, ok := c.breaker.allow()
	if !ok {
		c.metrics.WorkerCall(workerOutcomeRejected, time.Since(started))
		return workerResponse{}, errBreakerOpen
	}
	resp, err := c.call(ctx, body, requestID)
	var up *upstreamError
	switch {
	case err == nil:
		done(outcomeSuccess)
		c.metrics.WorkerCall(workerOutcomeOK, time.Since(started))
	case ctx.Err() != nil:
		// The caller left: that says nothing about the Worker, so it is neither counted by
		// the breaker nor in the call metrics.
		done(outcomeIgnored)
		return workerResponse{}, fmt.Errorf("AI Worker call abandoned: %w", ctx.Err())
	case errors.As(err, &up) && up.Timeout:
		done(outcomeFailure)
		c.metrics.WorkerCall(workerOutcomeTimeout, time.Since(started))
	default:
		done(outcomeFailure)
		c.metrics.WorkerCall(workerOutcomeError, time.Since(started))
	}
	return resp, err
}

func (c *WorkerClient) call(ctx context.Context, body []byte, requestID string) (workerResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return workerResponse{}, &upstreamError{Err: fmt.Errorf("build request: %w", err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "api-gateway")
	req.Header.Set("X-Request-Id", requestID)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}

	resp, err := c.client.Do(req) // #nosec G704 -- the endpoint is WORKER_URL from config, validated at start-up; requests choose no part of it
	if err != nil {
		return workerResponse{}, classify(ctx, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxWorkerResponseBytes+1))
	if err != nil {
		return workerResponse{}, classify(ctx, fmt.Errorf("read response: %w", err))
	}
	switch {
	case len(data) > maxWorkerResponseBytes:
		return workerResponse{}, &upstreamError{Err: fmt.Errorf("response larger than %d bytes", maxWorkerResponseBytes)}
	case resp.StatusCode >= 500:
		return workerResponse{}, &upstreamError{Err: fmt.Errorf("status %d", resp.StatusCode)}
	case resp.StatusCode < 200 || resp.StatusCode >= 300 && resp.StatusCode < 400:
		return workerResponse{}, &upstreamError{Err: fmt.Errorf("unexpected status %d", resp.StatusCode)}
	case resp.StatusCode < 300 && !json.Valid(data):
		return workerResponse{}, &upstreamError{Err: fmt.Errorf("status %d with a body that is not JSON", resp.StatusCode)}
	}
	return workerResponse{Status: resp.StatusCode, Body: data}, nil
}

// classify tells a call that ran out of time from one that failed outright.
func classify(ctx context.Context, err error) error {
	var netErr net.Error
	timedOut := errors.Is(ctx.Err(), context.DeadlineExceeded) ||
		errors.Is(err, context.DeadlineExceeded) ||
		errors.As(err, &netErr) && netErr.Timeout()
	return &upstreamError{Timeout: timedOut, Err: err}
}
