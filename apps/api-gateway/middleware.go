package main

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"path"
	"regexp"
	"strings"
	"time"
)

// requestIDOf is the id of the request whose answer w writes: the one withRequestContext gave
// it (and sent as X-Request-Id). The id travels with the response writer rather than in the
// request's context, which would cost every request a copy of its *http.Request and a context.
// Empty for a writer that did not come through withRequestContext.
func requestIDOf(w http.ResponseWriter) string {
	for {
		switch v := w.(type) {
		case *statusRecorder:
			return v.id
		case interface{ Unwrap() http.ResponseWriter }:
			w = v.Unwrap()
		default:
			return ""
		}
	}
}

// saneRequestID accepts an incoming X-Request-Id only if it matches the contract's RequestId
// pattern: short, and made of characters that cannot break a log line or a header.
func saneRequestID(id string) bool { return requestIDPattern.MatchString(id) }

var requestIDPattern = regexp.MustCompile(RequestIdPattern)

// newRequestID is 128 random bits in hex. An id correlates an answer with its log lines and
// is no secret (a caller may choose its own), so it comes from math/rand/v2's generator
// (ChaCha8, seeded by the operating system) without crypto/rand's system call per request.
func newRequestID() string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64()) // #nosec G404 -- a correlation id, no secret: see above
	binary.LittleEndian.PutUint64(b[8:], rand.Uint64()) // #nosec G404 -- a correlation id, no secret: see above
	var text [32]byte
	hex.Encode(text[:], b[:])
	return string(text[:]) // the id's one allocation
}

// statusClientClosedRequest is nginx's code for a request whose client closed the connection
// before the answer: what the metrics and the access log record for it.
const statusClientClosedRequest = 499

// clientWentAway tells a request the client abandoned (its connection closed) from one the
// gateway cut short itself while shutting down.
func clientWentAway(ctx context.Context) bool {
	return errors.Is(ctx.Err(), context.Canceled) && !errors.Is(context.Cause(ctx), errShuttingDown)
}

// statusRecorder remembers what a handler wrote, for the access log, and carries the
// request's id (see requestIDOf).
type statusRecorder struct {
	http.ResponseWriter
	id     string
	status int
	bytes  int
	// idHeader backs the X-Request-Id header's value, in the same allocation as the recorder.
	idHeader [1]string
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// maxLoggedPathBytes bounds the path in a log line: a hostile client may send a path of
// tens of kilobytes, and the log should not echo it.
const maxLoggedPathBytes = 256

func loggedPath(p string) string {
	if len(p) <= maxLoggedPathBytes {
		return p
	}
	return fmt.Sprintf("%s...(%d bytes)", strings.ToValidUTF8(p[:maxLoggedPathBytes], ""), len(p))
}

// routable tells whether the mux should see r at all. net/http's ServeMux answers a path
// that is not clean ("/../x", "//v1/modules", "/v1/./modules") with a redirect to the cleaned
// path, and a CONNECT (whose target is a host, not a path) with a plain-text 404; the gateway
// has no use for either and answers them with the contract's JSON 404 instead.
func routable(r *http.Request) bool {
	p := r.URL.Path
	if r.Method == http.MethodConnect || !strings.HasPrefix(p, "/") {
		return false
	}
	clean := path.Clean(p)
	return clean == p || clean+"/" == p && clean != "/"
}

// withRequestContext gives every request an id (the caller's X-Request-Id when sane),
// echoes it in the response, turns a handler panic into a JSON 500, and writes one
// access-log line per request.
func withRequestContext(logger *slog.Logger, access *accessLog, metrics *Metrics, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		metrics.RequestStarted()
		id := r.Header.Get("X-Request-Id")
		if id == "" || !saneRequestID(id) {
			id = newRequestID()
		}
		rec := &statusRecorder{ResponseWriter: w, id: id}
		rec.idHeader[0] = id
		w.Header()["X-Request-Id"] = rec.idHeader[:] // the canonical key

		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				logger.Error("handler panic", "request_id", id, "panic", v)
				if rec.status == 0 {
					writeError(rec, r, http.StatusInternalServerError, ErrorDetailCodeInternal, "internal error")
				}
			}
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			if status >= 500 && clientWentAway(r.Context()) {
				// Nobody read this answer: the caller hung up first. Counted and logged as
				// nginx does (499), not as the gateway's error: a client's timeout is no outage.
				status = statusClientClosedRequest
			}
			metrics.RequestFinished()
			end := time.Now()
			metrics.RequestServed(r.Pattern, r.Method, status, end.Sub(start))
			access.write(r.Context(), accessLine{end: end, id: id, method: r.Method, path: r.URL.Path,
				remote: r.RemoteAddr, status: status, bytes: rec.bytes, took: end.Sub(start)})
		}()
		if !routable(r) {
			writeError(rec, r, http.StatusNotFound, ErrorDetailCodeNotFound, "no such route")
			return
		}
		next.ServeHTTP(rec, r)
	})
}
