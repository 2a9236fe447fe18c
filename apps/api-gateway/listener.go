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

// guardedListener is the gateway's listener. It caps the number of open connections and gives
// every connection a cannedReplyConn, so that the answers net/http writes on its own, before
// any handler runs (431 for oversized headers, 400 for a malformed request, 501 for an unknown
// transfer encoding, 505 for an unknown protocol version), are the contract's JSON errors with
// an access-log line too.
//
// At the cap, a new connection takes the place of the connection that has been idle longest
// between two requests (an idle keep-alive connection): that one is closed, as its client must
// expect of any idle connection. Only when none is idle, every connection being busy with a
// request (or opened and not yet through its first one, which ReadHeaderTimeout bounds), is the
// new connection refused, with a JSON 503.
type guardedListener struct {
	net.Listener
	max    int64
	open   atomic.Int64
	logger *slog.Logger
	// headerTimeout is how long a refused connection gets to send its request head: the
	// server's ReadHeaderTimeout.
	headerTimeout time.Duration
	// epoch is the origin of the connections' idle times.
	epoch time.Time
	// onReject, when set, is told of every answer given outside the handler.
	onReject func(method string, status int)
	// onIdleClosed, when set, is told of every idle connection closed to make room.
	onIdleClosed func()
	// rejecting bounds the goroutines answering connections over the cap.
	rejecting atomic.Int64

	mu     sync.Mutex
	conns  map[*cannedReplyConn]struct{} // the open connections, to find the idle ones at the cap
	closed bool                          // Close has run: a connection accepted after it is dropped
}

func newGuardedListener(ln net.Listener, maxConnections int, headerTimeout time.Duration, logger *slog.Logger) *guardedListener {
	return &guardedListener{Listener: ln, max: int64(maxConnections), headerTimeout: headerTimeout,
		logger: logger, epoch: time.Now(), conns: map[*cannedReplyConn]struct{}{}}
}

func (l *guardedListener) Accept() (net.Conn, error) {
	for {
		conn, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if !l.makeRoom() {
			l.refuse(conn)
			continue
		}
		c := &cannedReplyConn{Conn: conn, listener: l, started: time.Now()}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			_ = conn.Close()
			return nil, net.ErrClosed
		}
		l.conns[c] = struct{}{}
		l.mu.Unlock()
		// Only this goroutine adds to open: once makeRoom has seen it under the cap, it is.
		l.open.Add(1)
		return c, nil
	}
}

// makeRoom tells whether one more connection fits under the cap, closing the longest-idle
// connection if that is what it takes.
func (l *guardedListener) makeRoom() bool {
	// A connection picked may start on a request before it is claimed: then pick again.
	for range 3 {
		if l.open.Load() < l.max {
			return true
		}
		oldest, since := l.longestIdle()
		if oldest == nil {
			return false
		}
		if oldest.idleSince.CompareAndSwap(since, notIdle) {
			_ = oldest.Close() // out of the count when Close returns
			if l.onIdleClosed != nil {
				l.onIdleClosed()
			}
		}
	}
	return l.open.Load() < l.max
}

// longestIdle is the connection idle longest between two requests, and since when; nil when
// none is idle. It scans every connection, but only at the cap: what serving a request costs
// stays two atomic stores.
func (l *guardedListener) longestIdle() (oldest *cannedReplyConn, since int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		if s := c.idleSince.Load(); s != notIdle && (oldest == nil || s < since) {
			oldest, since = c, s
		}
	}
	return oldest, since
}

// trackState is the server's ConnState hook: it notes when a connection goes idle between
// two requests, and when it is busy again.
func (l *guardedListener) trackState(conn net.Conn, state http.ConnState) {
	c, ok := conn.(*cannedReplyConn)
	if !ok {
		return
	}
	switch state {
	case http.StateIdle:
		// Monotonic, and never notIdle.
		c.idleSince.Store(int64(time.Since(l.epoch)) + 1)
	case http.StateActive, http.StateHijacked:
		c.idleSince.Store(notIdle)
	}
}

// Close stops accepting connections, then closes those that have not sent a byte since they
// were opened. The server closes its idle keep-alive connections when it shuts down, and one
// that never sent a request is just as idle (a client's pool keeps a connection dialled for a
// request that another one served, and a load balancer may open some ahead of need); net/http
// would wait for it until its first request head is five seconds late, past a short
// SHUTDOWN_TIMEOUT, and the shutdown would end by cutting off requests when none was running.
// As with an idle keep-alive connection, a client that sends on it at this very moment sees it
// closed; the drain before the close is what keeps traffic away by then.
func (l *guardedListener) Close() error {
	err := l.Listener.Close()
	l.mu.Lock()
	l.closed = true
	var silent []*cannedReplyConn
	for c := range l.conns {
		if !c.heard.Load() {
			silent = append(silent, c)
		}
	}
	l.mu.Unlock()
	for _, c := range silent {
		_ = c.Close()
	}
	if len(silent) > 0 {
		l.logger.Info("shutdown: closed connections that never sent a request", "count", len(silent))
	}
	return err
}

// OpenConnections reports how many accepted connections are still open.
func (l *guardedListener) OpenConnections() int64 { return l.open.Load() }

// forget takes a closing connection out of the count.
func (l *guardedListener) forget(c *cannedReplyConn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
	l.open.Add(-1)
}

// maxRefusing bounds how many over-the-cap connections are answered after their request head
// has been read; past it they are answered at once, so that a connection flood cannot grow
// goroutines without limit.
const maxRefusing = 64

const (
	// maxRefusedHeadBytes bounds what is read of a refused connection's request head (the
	// server's MaxHeaderBytes, with room for the request line).
	maxRefusedHeadBytes = 36 << 10
	// refusalWriteTimeout bounds the write of the 503.
	refusalWriteTimeout = time.Second
	// lingerTimeout and maxLingerBytes bound what is read of a refused connection after its
	// answer (see lingerClose).
	lingerTimeout  = time.Second
	maxLingerBytes = 256 << 10
)

// refuse answers a connection over the cap with a JSON 503, then closes it. The answer waits
// for the request head (up to the server's header timeout), so that the log names the method
// and path and the client is not reset while it is still writing; a client that has not sent
// its head by then is answered all the same.
func (l *guardedListener) refuse(conn net.Conn) {
	if l.rejecting.Add(1) > maxRefusing {
		l.rejecting.Add(-1)
		_ = conn.SetWriteDeadline(time.Now().Add(refusalWriteTimeout))
		l.answerOverCap(conn, "-", "-", time.Now())
		_ = conn.Close()
		return
	}
	go func() {
		defer l.rejecting.Add(-1)
		defer conn.Close()
		started := time.Now()
		_ = conn.SetReadDeadline(started.Add(l.headerTimeout))
		method, path := "-", "-"
		if req, err := http.ReadRequest(bufio.NewReaderSize(io.LimitReader(conn, maxRefusedHeadBytes), 4096)); err == nil {
			method, path = req.Method, loggedPath(req.URL.Path)
		}
		_ = conn.SetWriteDeadline(time.Now().Add(refusalWriteTimeout))
		l.answerOverCap(conn, method, path, started)
		lingerClose(conn)
	}()
}

// answerOverCap writes the 503 of a connection over the cap.
func (l *guardedListener) answerOverCap(conn net.Conn, method, path string, started time.Time) {
	id := newRequestID()
	reply := jsonReply(http.StatusServiceUnavailable, ErrorDetailCodeUnavailable,
		"every connection is busy; retry shortly", id, "Retry-After: 1\r\n")
	// Counted and logged before it is sent, so that whoever reads the answer finds the count,
	// and the log line once its batch is written (within logBatchDelay).
	l.logRejected(id, method, path, http.StatusServiceUnavailable, len(reply), started, conn.RemoteAddr(),
		"connection limit reached")
	_, _ = conn.Write(reply)
}

// lingerClose half-closes conn, then reads and drops what the client still sends (the rest
// of its request, or a request sent late) for a moment before closing: closing a socket with
// unread input resets the connection, and a reset can destroy the answer before the client
// has read it.
func lingerClose(conn net.Conn) {
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.CloseWrite()
	}
	_ = conn.SetReadDeadline(time.Now().Add(lingerTimeout))
	_, _ = io.CopyN(io.Discard, conn, maxLingerBytes)
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
	// idleSince is when the connection went idle between two requests, in nanoseconds from
	// the listener's epoch, or notIdle while it is busy (from its first byte of a request to
	// the end of its answer) and before its first request.
	idleSince atomic.Int64
	// heard is whether the client has sent a byte yet.
	heard atomic.Bool
}

// notIdle is cannedReplyConn.idleSince of a connection that is not idle.
const notIdle = 0

// Read marks the connection busy as soon as a request starts arriving on it, before net/http
// has read the whole head and calls it active, and heard from its first byte.
func (c *cannedReplyConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		if c.idleSince.Load() != notIdle {
			c.idleSince.Store(notIdle)
		}
		if !c.heard.Load() {
			c.heard.Store(true)
		}
	}
	return n, err
}

var cannedReplyHeader = []byte("\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n")

var cannedReply = regexp.MustCompile(`^HTTP/1\.1 (\d{3}) [^\r\n]*\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n(.*)$`)

func (c *cannedReplyConn) Write(p []byte) (int, error) {
	// Checks cheap enough for every response before the pattern, which only canned ones pass.
	if len(p) > 256 || !bytes.HasPrefix(p, []byte("HTTP/1.1 ")) || !bytes.Contains(p, cannedReplyHeader) {
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
	// Counted and logged before it is sent, so that whoever reads the answer finds the count,
	// and the log line once its batch is written (within logBatchDelay).
	c.listener.logRejected(id, "-", "-", status, len(reply), c.started, c.RemoteAddr(), string(m[2]))
	if _, err := c.Conn.Write(reply); err != nil {
		return 0, err
	}
	// net/http checks that its whole reply was written.
	return len(p), nil
}

func (c *cannedReplyConn) Close() error {
	c.closeOnce.Do(func() { c.listener.forget(c) })
	return c.Conn.Close()
}
