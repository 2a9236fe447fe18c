package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// keepAlive is a client connection that has sent one request, read its answer and stays open.
type keepAlive struct {
	conn   net.Conn
	reader *bufio.Reader
}

// get sends GET path on the connection and reads the whole answer.
func (k *keepAlive) get(path string) (*http.Response, error) {
	_ = k.conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(k.conn, "GET %s HTTP/1.1\r\nHost: gateway\r\n\r\n", path); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(k.reader, nil)
	if err != nil {
		return nil, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, err
}

func openKeepAlive(t *testing.T, addr string) *keepAlive {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &keepAlive{conn: conn, reader: bufio.NewReader(conn)}
}

// The cap used to count connections that had finished their request and sat idle: a cap's
// worth of them locked every new client out until IdleTimeout. Now the longest-idle one is
// closed to make room.
func TestIdleKeepAliveConnectionsGiveWayToANewClient(t *testing.T) {
	const maxConnections = 8
	g := startRun(t, map[string]string{"MAX_CONNECTIONS": fmt.Sprint(maxConnections)})
	idle := make([]*keepAlive, maxConnections)
	for i := range idle {
		idle[i] = openKeepAlive(t, g.addr)
		if resp, err := idle[i].get("/healthz"); err != nil || resp.StatusCode != 200 {
			t.Fatalf("keep-alive connection %d: %v %v", i, resp, err)
		}
	}

	// A connection is marked idle just after its answer is written: a new client may come a
	// moment too early and be refused, and then it retries, as told by Retry-After.
	deadline := time.Now().Add(time.Second)
	for {
		resp := rawExchange(t, g.addr, "GET /v1/modules HTTP/1.1\r\nHost: x\r\n\r\n")
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			break
		}
		if resp.StatusCode != 503 || time.Now().After(deadline) {
			t.Fatalf("a new client with %d idle keep-alive connections open: %d %s, want 200 within a second",
				maxConnections, resp.StatusCode, body)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Exactly one idle connection made room; the others still serve.
	closed := 0
	for i, k := range idle {
		resp, err := k.get("/healthz")
		switch {
		case err != nil:
			closed++
		case resp.StatusCode != 200:
			t.Errorf("idle connection %d answered %d", i, resp.StatusCode)
		}
	}
	if closed != 1 {
		t.Errorf("%d idle connections were closed for one new client, want 1", closed)
	}

	// The scrape's own connection makes room too; before it, the readiness poll's connection
	// may have.
	resp, err := http.Get("http://" + g.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	wantSample(t, string(body), fmt.Sprintf("gateway_connections_open %d", maxConnections))
	var closedTotal int
	for _, line := range strings.Split(string(body), "\n") {
		fmt.Sscanf(line, "gateway_idle_connections_closed_total %d", &closedTotal)
	}
	if closedTotal < 2 || closedTotal > 3 {
		t.Errorf("gateway_idle_connections_closed_total %d, want 2 or 3", closedTotal)
	}
}

// busyGateway runs the gateway with MAX_CONNECTIONS connections each holding a completion the
// Worker has not answered yet; the Worker answers them all when the test ends.
func busyGateway(t *testing.T, maxConnections int) *runningGateway {
	t.Helper()
	release := make(chan struct{})
	arrived := make(chan struct{}, maxConnections)
	worker := newFakeWorker(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		answerJSON(200, workerAnswer)(w, r)
	})
	g := startRun(t, map[string]string{
		"MAX_CONNECTIONS": fmt.Sprint(maxConnections),
		"WORKER_URL":      worker.URL, "WORKER_API_TOKEN": "t", "WORKER_TIMEOUT": "20s",
		"SHUTDOWN_DRAIN": "0s", "SHUTDOWN_TIMEOUT": "20s",
	})
	var inFlight sync.WaitGroup
	t.Cleanup(func() {
		close(release)
		inFlight.Wait()
	})
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for range maxConnections {
		inFlight.Go(func() {
			resp, err := client.Post("http://"+g.addr+"/v1/ai/complete", "application/json", strings.NewReader(validCompletion))
			if err != nil {
				t.Errorf("a held completion failed: %v", err)
				return
			}
			resp.Body.Close()
		})
	}
	timeout := time.After(10 * time.Second)
	for range maxConnections {
		select {
		case <-arrived:
		case <-timeout:
			t.Fatal("the completions did not all reach the Worker")
		}
	}
	return g
}

// With a request in flight on every connection there is nothing to make room with: a new
// client gets the JSON 503 with Retry-After, however fast or slow it sends its request.
func TestANewClientIsRefusedWithAJSON503WhenEveryConnectionIsBusy(t *testing.T) {
	g := busyGateway(t, 8)
	clients := []struct {
		name string
		send func(conn net.Conn) error
	}{
		{"fast", func(conn net.Conn) error {
			_, err := io.WriteString(conn, "GET /v1/modules HTTP/1.1\r\nHost: x\r\n\r\n")
			return err
		}},
		// Past the two seconds the answer used to be given up after.
		{"late by 2.5 s", func(conn net.Conn) error {
			<-time.After(2500 * time.Millisecond) // the client's own pace
			_, err := io.WriteString(conn, "GET /v1/modules HTTP/1.1\r\nHost: x\r\n\r\n")
			return err
		}},
		{"trickling its head", func(conn net.Conn) error {
			for _, part := range []string{"GET /v1/mod", "ules HTTP/1.1\r\n", "Host: x\r\n", "\r\n"} {
				<-time.After(700 * time.Millisecond) // the client's own pace
				if _, err := io.WriteString(conn, part); err != nil {
					return err
				}
			}
			return nil
		}},
		// Never sends a request: answered when the server's header timeout (5 s) is up.
		{"silent", func(net.Conn) error { return nil }},
	}
	t.Run("clients", func(t *testing.T) {
		for _, c := range clients {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				conn, err := net.Dial("tcp", g.addr)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
				if err := c.send(conn); err != nil {
					t.Fatalf("send: %v", err)
				}
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err != nil {
					t.Fatalf("no HTTP answer: %v", err)
				}
				if resp.Header.Get("Retry-After") == "" {
					t.Error("no Retry-After on the 503")
				}
				id := wantJSONError(t, resp, 503, ErrorDetailCodeUnavailable)
				if entry := accessLogFor(t, g.logs, id); entry["reason"] != "connection limit reached" {
					t.Errorf("access log %v", entry)
				}
			})
		}
	})
}

// acceptInBackground serves l's connections by handing them to accepted until l is closed.
func acceptInBackground(t *testing.T, l *guardedListener) <-chan net.Conn {
	t.Helper()
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- conn
		}
	}()
	t.Cleanup(func() {
		l.Close()
		for {
			select {
			case conn := <-accepted:
				conn.Close()
			default:
				return
			}
		}
	})
	return accepted
}

func dialed(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// closedByPeer tells whether the server side of conn has been closed (a read meets EOF or a
// reset), waiting at most a few seconds for it.
func closedByPeer(conn net.Conn) bool {
	_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err := conn.Read(make([]byte, 1))
	var netErr net.Error
	return err != nil && !(errors.As(err, &netErr) && netErr.Timeout())
}

func TestTheLongestIdleConnectionIsClosedFirst(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := newGuardedListener(tcp, 3, 5*time.Second, slog.New(slog.DiscardHandler))
	accepted := acceptInBackground(t, l)
	clients, servers := make([]net.Conn, 3), make([]net.Conn, 3)
	for i := range clients {
		clients[i] = dialed(t, tcp.Addr().String())
		servers[i] = <-accepted
	}
	// As net/http reports them: the second connection went idle first, then the third; the
	// first has a request in flight.
	l.trackState(servers[0], http.StateActive)
	l.trackState(servers[1], http.StateIdle)
	l.trackState(servers[2], http.StateIdle)

	dialed(t, tcp.Addr().String())
	<-accepted
	if !closedByPeer(clients[1]) {
		t.Fatal("the longest-idle connection was not closed for the new one")
	}
	if got := l.OpenConnections(); got != 3 {
		t.Errorf("%d open connections, want 3", got)
	}
	// A connection that is reading its next request is no longer idle.
	_, _ = io.WriteString(clients[2], "G")
	buf := make([]byte, 1)
	if _, err := servers[2].Read(buf); err != nil {
		t.Fatal(err)
	}
	resp := rawExchange(t, tcp.Addr().String(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	wantJSONError(t, resp, 503, ErrorDetailCodeUnavailable)
}

// A flood of connections over the cap that send nothing ties up at most maxRefusing answering
// goroutines; the connections past those are still answered, at once.
func TestConnectionsOverTheCapAreAnsweredEvenInAFlood(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := newGuardedListener(tcp, 1, time.Minute, slog.New(slog.DiscardHandler))
	accepted := acceptInBackground(t, l)
	dialed(t, tcp.Addr().String()) // holds the only slot: never idle
	<-accepted
	for range maxRefusing {
		dialed(t, tcp.Addr().String())
	}
	waitFor(t, "the silent connections to be taken in", func() bool { return l.rejecting.Load() == maxRefusing })
	conn := dialed(t, tcp.Addr().String())
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer past the answering goroutines: %v", err)
	}
	wantJSONError(t, resp, 503, ErrorDetailCodeUnavailable)
}

// waitFor polls cond until it holds, for at most five seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitWithin(t, what, 5*time.Second, cond)
}

// waitWithin polls cond until it holds, failing the test if it has not within the given time.
func waitWithin(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
