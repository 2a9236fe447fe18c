package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"unicode/utf8"
)

// The read routes answer from the catalog, which does not change while the process runs:
// their bodies are encoded once, when the routes are built.

func handleHealthz() http.Handler {
	ok := encodedJSON(Status{Status: StatusStatusOk})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, ok)
	})
}

func handleReadyz(readiness *Readiness) http.Handler {
	ready, draining := encodedJSON(Status{Status: StatusStatusReady}), encodedJSON(Status{Status: StatusStatusDraining})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if readiness.Draining() {
			writeJSON(w, http.StatusServiceUnavailable, draining)
			return
		}
		writeJSON(w, http.StatusOK, ready)
	})
}

func handleListModules(catalog *Catalog) http.Handler {
	type response struct {
		Modules []Module `json:"modules"`
	}
	list := encodedJSON(response{Modules: catalog.List()})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, list)
	})
}

func handleGetModule(catalog *Catalog) http.Handler {
	modules := map[string]jsonBody{}
	for _, m := range catalog.List() {
		modules[m.Name] = encodedJSON(m)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		// Every name in the catalog matches the pattern (loadCatalog checks), so a name found
		// needs no pattern match: only one that is not found is told invalid (400) from unknown
		// (404).
		if m, ok := modules[name]; ok {
			writeJSON(w, http.StatusOK, m)
			return
		}
		if !validModuleName(name) {
			writeError(w, r, http.StatusBadRequest, ErrorDetailCodeBadRequest,
				"module name must match "+ModuleNamePattern)
			return
		}
		writeError(w, r, http.StatusNotFound, ErrorDetailCodeNotFound, fmt.Sprintf("no module named %q", name))
	})
}

// Valid checks a CompletionRequest (generated from the contract) against the contract's rules.
func (c CompletionRequest) Valid() map[string]string {
	problems := map[string]string{}
	if !validModuleName(c.Module) {
		problems["module"] = "must match " + ModuleNamePattern
	}
	if n := utf8.RuneCountInString(c.Prompt); n < CompletionRequestPromptMinLength || n > CompletionRequestPromptMaxLength {
		problems["prompt"] = fmt.Sprintf("must be %d to %d characters", CompletionRequestPromptMinLength, CompletionRequestPromptMaxLength)
	}
	return problems
}

// handleComplete validates a CompletionRequest, checks the module against the catalog and
// relays the AI Worker's answer. Upstream failures map to contract codes: connection
// error or 5xx → 502 upstream_error, breaker open or no Worker → 503 upstream_unavailable,
// timeout → 504 upstream_timeout.
func handleComplete(logger *slog.Logger, catalog *Catalog, worker *WorkerClient, maxBodyBytes int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isJSON(r.Header.Get("Content-Type")) {
			writeError(w, r, http.StatusUnsupportedMediaType, ErrorDetailCodeUnsupportedMediaType,
				"Content-Type must be application/json")
			return
		}
		req, err := decodeValid[CompletionRequest](w, r, maxBodyBytes)
		if err != nil {
			var tooLarge errBodyTooLarge
			if errors.As(err, &tooLarge) {
				writeError(w, r, http.StatusRequestEntityTooLarge, ErrorDetailCodePayloadTooLarge, err.Error())
				return
			}
			writeError(w, r, http.StatusBadRequest, ErrorDetailCodeBadRequest, err.Error())
			return
		}
		// Fail fast on a module the catalog does not know: no point asking the Worker.
		if _, ok := catalog.Get(req.Module); !ok {
			writeError(w, r, http.StatusNotFound, ErrorDetailCodeNotFound, fmt.Sprintf("no module named %q", req.Module))
			return
		}
		body, err := json.Marshal(req)
		if err != nil {
			writeError(w, r, http.StatusInternalServerError, ErrorDetailCodeInternal, "internal error")
			return
		}

		id := requestIDOf(w)
		resp, err := worker.Complete(r.Context(), body, id)
		if err != nil {
			status, code, message := upstreamFailure(r.Context(), err)
			logger.Warn("AI Worker call failed", "request_id", id, "status", status, "error", err.Error())
			writeError(w, r, status, code, message)
			return
		}
		if resp.Status >= 400 {
			status, code, message := relayedWorkerError(resp)
			writeError(w, r, status, code, message)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(resp.Status)
		_, _ = w.Write(resp.Body)
	})
}

// upstreamFailure maps a WorkerClient error to status, contract code and message.
func upstreamFailure(ctx context.Context, err error) (int, ErrorDetailCode, string) {
	var up *upstreamError
	switch {
	case errors.Is(context.Cause(ctx), errShuttingDown):
		return http.StatusServiceUnavailable, ErrorDetailCodeUnavailable, "the gateway is shutting down; retry"
	case errors.Is(err, errWorkerNotConfigured):
		return http.StatusServiceUnavailable, ErrorDetailCodeUpstreamUnavailable, "the AI Worker is not configured"
	case errors.Is(err, errBreakerOpen):
		return http.StatusServiceUnavailable, ErrorDetailCodeUpstreamUnavailable,
			"the AI Worker is failing; calls are paused by the circuit breaker"
	case errors.As(err, &up) && up.Timeout:
		return http.StatusGatewayTimeout, ErrorDetailCodeUpstreamTimeout, "the AI Worker did not answer in time"
	case errors.As(err, &up):
		return http.StatusBadGateway, ErrorDetailCodeUpstreamError, "the AI Worker call failed"
	}
	// The caller went away; whatever is written here is most likely never read.
	return http.StatusServiceUnavailable, ErrorDetailCodeUpstreamUnavailable, "request cancelled"
}

// relayedWorkerError maps a Worker 4xx to what the gateway answers. The caller's own
// mistakes (400, 404, 413) pass through with the Worker's code and message; a Worker that
// rejects the gateway's credentials is the platform's fault, not the caller's (502), and a
// Worker shedding load is unavailable (503).
func relayedWorkerError(resp workerResponse) (int, ErrorDetailCode, string) {
	var body Error
	_ = json.Unmarshal(resp.Body, &body)
	message := body.Error.Message
	passThrough := map[int]ErrorDetailCode{
		http.StatusBadRequest:            ErrorDetailCodeBadRequest,
		http.StatusNotFound:              ErrorDetailCodeNotFound,
		http.StatusRequestEntityTooLarge: ErrorDetailCodePayloadTooLarge,
	}
	if code, ok := passThrough[resp.Status]; ok {
		if message == "" {
			message = fmt.Sprintf("the AI Worker answered %d", resp.Status)
		}
		return resp.Status, code, message
	}
	switch resp.Status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return http.StatusBadGateway, ErrorDetailCodeUpstreamError, "the AI Worker rejected the gateway's credentials"
	case http.StatusTooManyRequests:
		return http.StatusServiceUnavailable, ErrorDetailCodeUpstreamUnavailable, "the AI Worker is rate limiting"
	}
	return http.StatusBadGateway, ErrorDetailCodeUpstreamError, fmt.Sprintf("the AI Worker answered %d", resp.Status)
}

func handleMethodNotAllowed(allow string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, r, http.StatusMethodNotAllowed, ErrorDetailCodeMethodNotAllowed,
			fmt.Sprintf("method %s is not allowed here; use %s", r.Method, allow))
	})
}

func handleNotFound() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, http.StatusNotFound, ErrorDetailCodeNotFound, "no such route")
	})
}
