package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// guardedListener is the gateway's listener. It caps the number of open connections (one
// past the cap gets a JSON 503 and is closed) and gives every connection a cannedReplyConn, so
// that the answers net/http writes on its own, before any handler runs (431 for oversized
// headers, 400 for a malformed request, 501 for an unknown transfer encoding, 505 for an
// unknown protocol version), are the contract's JSON errors with an access-log line too.
type guardedListener struct {
	net.Listener
	max    int64
	open   atomic.Int64
	logger *slog.Logger
	// onReject, when set, is told of every answer given outside the handler.
	onReject func(method string, status int)
	// rejecting bounds the goroutines answering connections over the cap.
	rejecting atomic.Int64
}

func newGuardedListener(ln net.Listener, maxConnections int, logger *slog.Logger) *guardedListener {
	return &guardedListener{Listener: ln, max: int64(maxConnections), logger: logger}
}

func (l *guardedListener) Accept() (net.Conn, error) {
	for {
		conn, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) > l.max {
			l.open.Add(-1)
			l.refuse(conn)
			continue
		}
		return &cannedReplyConn{Conn: conn, listener: l, started: time.Now()}, nil
	}
}

// OpenConnections reports how many accepted connections are still open.
func (l *guardedListener) OpenConnections() int64 { return l.open.Load() }

// maxRefusing bounds how many over-the-cap connections are answered at once; beyond it they
// are closed without an answer, so a connection flood cannot grow goroutines without limit.
const maxRefusing = 64

// refuse answers a connection over the cap with a JSON 503 after reading its request head
// (answering before reading would make the kernel reset the connection under a client that is
// still writing), then closes it.
func (l *guardedListener) refuse(conn net.Conn) {
	if l.rejecting.Add(1) > maxRefusing {
		l.rejecting.Add(-1)
		_ = conn.Close()
		return
	}
	go func() {
		defer l.rejecting.Add(-1)
		defer conn.Close()
		started := time.Now()
		_ = conn.SetDeadline(started.Add(2 * time.Second))
		method, path := "-", "-"
		if req, err := http.ReadRequest(bufio.NewReaderSize(conn, 4096)); err == nil {
			method, path = req.Method, req.URL.Path
			_, _ = io.CopyN(io.Discard, req.Body, 64<<10)
		}
		id := newRequestID()
		reply := jsonReply(http.StatusServiceUnavailable, ErrorDetailCodeUnavailable,
			"too many open connections; retry shortly", id, "Retry-After: 1\r\n")
		// Logged and counted before it is sent, so that whoever reads the answer finds both.
		l.logRejected(id, method, path, http.StatusServiceUnavailable, len(reply), started, conn.RemoteAddr(),
			"connection limit reached")
		_, _ = conn.Write(reply)
	}()
}

func (l *guardedListener) logRejected(id, method, path string, status, bytes int, started time.Time, remote net.Addr, reason string) {
	if l.onReject != nil {
		l.onReject(method, status)
	}
	l.logger.LogAttrs(context.Background(), slog.LevelInfo, "request",
		slog.String("request_id", id),
		slog.String("method", method),
		slog.String("path", path),
		slog.Int("status", status),
		slog.Int("bytes", bytes),
		slog.Float64("duration_ms", float64(time.Since(started).Microseconds())/1000),
		slog.String("remote", remote.String()),
		slog.String("rejected_by", "server"),
		slog.String("reason", reason),
	)
}

// jsonReply is a whole HTTP/1.1 response carrying the contract's Error body; the connection
// closes after it.
func jsonReply(status int, code ErrorDetailCode, message, requestID, extraHeaders string) []byte {
	body, _ := json.Marshal(Error{Error: ErrorDetail{Code: code, Message: message, RequestId: requestID}})
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"+
		"X-Request-Id: %s\r\nConnection: close\r\n%s\r\n", status, http.StatusText(status), len(body), requestID, extraHeaders)
	b.Write(body)
	return b.Bytes()
}

// cannedReplyConn replaces the plain-text answers net/http writes by itself when it cannot
// parse a request. net/http writes each of them with one unbuffered Write of exactly the shape
// cannedReply matches (status line, text/plain, "Connection: close", no Date header), which
// no response of a handler has: those always carry a Date and go through the server's
// buffered writer. A test sends each hostile request to the real server, so a Go release that
// changes the shape fails the tests instead of leaking plain text.
type cannedReplyConn struct {
	net.Conn
	listener  *guardedListener
	started   time.Time
	closeOnce sync.Once
}

var cannedReply = regexp.MustCompile(`^HTTP/1\.1 (\d{3}) [^\r\n]*\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n(.*)$`)

func (c *cannedReplyConn) Write(p []byte) (int, error) {
	if len(p) > 256 || !bytes.HasPrefix(p, []byte("HTTP/1.1 ")) {
		return c.Conn.Write(p)
	}
	m := cannedReply.FindSubmatch(p)
	if m == nil {
		return c.Conn.Write(p)
	}
	status, _ := strconv.Atoi(string(m[1]))
	id := newRequestID()
	code := ErrorDetailCodeBadRequest
	switch status {
	case http.StatusRequestHeaderFieldsTooLarge:
		code = ErrorDetailCodeHeadersTooLarge
	case http.StatusNotImplemented, http.StatusHTTPVersionNotSupported:
		code = ErrorDetailCodeNotImplemented
	}
	reply := jsonReply(status, code, string(m[2]), id, "")
	// Logged and counted before it is sent, so that whoever reads the answer finds both.
	c.listener.logRejected(id, "-", "-", status, len(reply), c.started, c.RemoteAddr(), string(m[2]))
	if _, err := c.Conn.Write(reply); err != nil {
		return 0, err
	}
	// net/http checks that its whole reply was written.
	return len(p), nil
}

func (c *cannedReplyConn) Close() error {
	c.closeOnce.Do(func() { c.listener.open.Add(-1) })
	return c.Conn.Close()
}
