// Command bench is a small keep-alive load generator. It starts the gateway binary as deployed
// (metrics on, the access log written to a pipe that the bench reads, as a container runtime
// does) and a bare net/http server that answers each route with the very bytes the gateway
// answers it with, as separate processes on loopback. It drives both with the same number of
// concurrent keep-alive workers in interleaved rounds, and prints requests/s, p50/p99 latency
// and each server's CPU time per request side by side, plus the gateway binary's size. With
// -hey, each round also runs rakyll/hey (an independent client, not part of this module) at
// every target, right after its own load.
//
// Usage: go run ./bench -gateway bin/api-gateway [-duration 10s] [-rounds 10] [-concurrency 8] [-hey /path/to/hey]
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"
)

func main() {
	if err := run(os.Args, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %s\n", err)
		os.Exit(1)
	}
}

type options struct {
	gateway     string
	catalog     string
	duration    time.Duration
	warmup      time.Duration
	concurrency int
	rounds      int
	hey         string
	serveBare   string
	copyFrom    string
}

// routes are the read routes measured, by name and path.
var routes = []struct{ name, path string }{
	{"GET /healthz", "/healthz"},
	{"GET /v1/modules", "/v1/modules"},
	{"GET /v1/modules/{name}", "/v1/modules/summarize"},
}

func run(args []string, stdout io.Writer) error {
	var opt options
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.StringVar(&opt.gateway, "gateway", "bin/api-gateway", "gateway binary to measure")
	fs.StringVar(&opt.catalog, "catalog", "catalog.json", "catalog file for the gateway")
	fs.DurationVar(&opt.duration, "duration", 10*time.Second, "measured time per target and client, over all rounds")
	fs.DurationVar(&opt.warmup, "warmup", time.Second, "unmeasured warm-up per target")
	fs.IntVar(&opt.concurrency, "concurrency", 8, "concurrent keep-alive workers")
	fs.IntVar(&opt.rounds, "rounds", 10, "rounds; each runs every target for duration/rounds, in turn")
	fs.StringVar(&opt.hey, "hey", "", "rakyll/hey binary: measure every target with it too, in the same rounds")
	fs.StringVar(&opt.serveBare, "serve-bare", "", "internal: serve the bare server on this address")
	fs.StringVar(&opt.copyFrom, "copy-from", "", "internal: the gateway whose answers the bare server copies")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if opt.serveBare != "" {
		return serveBare(opt.serveBare, opt.copyFrom)
	}
	if opt.concurrency < 1 || opt.duration <= 0 || opt.warmup < 0 || opt.rounds < 1 {
		return errors.New("-concurrency and -rounds must be at least 1 and -duration positive")
	}
	return benchmark(opt, stdout)
}

// serveBare is the baseline: the least a net/http server can do to give each route's answer.
// It fetches the gateway's answer to each route once, and serves those bytes, with the same
// Content-Type, from memory.
func serveBare(addr, gateway string) error {
	mux := http.NewServeMux()
	for _, route := range routes {
		resp, err := http.Get(gateway + route.path)
		if err != nil {
			return fmt.Errorf("copy %s: %w", route.path, err)
		}
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return fmt.Errorf("copy %s: %d %v", route.path, resp.StatusCode, err)
		}
		contentType := resp.Header.Get("Content-Type")
		mux.HandleFunc("GET "+route.path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", contentType)
			_, _ = w.Write(body)
		})
	}
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	return srv.ListenAndServe()
}

func benchmark(opt options, stdout io.Writer) error {
	info, err := os.Stat(opt.gateway)
	if err != nil {
		return fmt.Errorf("gateway binary: %w (run make build first)", err)
	}
	catalog, err := filepath.Abs(opt.catalog)
	if err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	gwPort, err := freePort()
	if err != nil {
		return err
	}
	barePort, err := freePort()
	if err != nil {
		return err
	}
	gwBase := fmt.Sprintf("http://127.0.0.1:%d", gwPort)
	bareBase := fmt.Sprintf("http://127.0.0.1:%d", barePort)

	// As deployed: metrics on, one access-log line per request on stdout, which is a pipe that
	// another process reads (here this one, as the container runtime would).
	gw := exec.Command(opt.gateway) // #nosec G204 -- the benchmark runs the gateway binary its operator names
	gw.Env = []string{fmt.Sprintf("PORT=%d", gwPort), "CATALOG_PATH=" + catalog, "SHUTDOWN_DRAIN=0s",
		"LOG_LEVEL=info", "METRICS_ENABLED=true"}
	logs, err := gw.StdoutPipe()
	if err != nil {
		return err
	}
	var logLines countingWriter
	if err := start(gw); err != nil {
		return err
	}
	go func() { _, _ = io.Copy(&logLines, logs) }()
	if err := waitReady(gwBase+"/readyz", 10*time.Second); err != nil {
		return err
	}
	bare := exec.Command(self, "-serve-bare", fmt.Sprintf("127.0.0.1:%d", barePort), "-copy-from", gwBase) // #nosec G204 -- runs its own binary
	if err := start(bare); err != nil {
		return err
	}
	if err := waitReady(bareBase+routes[0].path, 10*time.Second); err != nil {
		return err
	}
	defer stopAll(gw, bare)

	type target struct {
		route, server, url string
		process            *exec.Cmd
	}
	var targets []target
	for _, route := range routes {
		targets = append(targets,
			target{route.name, "bare net/http", bareBase + route.path, bare},
			target{route.name, "gateway", gwBase + route.path, gw})
	}
	clients := []string{"bench"}
	if opt.hey != "" {
		clients = append(clients, "hey")
	}
	fmt.Fprintf(stdout, "api-gateway binary: %s, %.2f MiB (%d bytes)\n", opt.gateway, float64(info.Size())/(1<<20), info.Size())
	fmt.Fprintf(stdout, "load: %d keep-alive workers, %s per target and client in %d interleaved rounds after %s warm-up; "+
		"clients and servers share this machine's cores\n", opt.concurrency, opt.duration, opt.rounds, opt.warmup)
	fmt.Fprintf(stdout, "gateway as deployed: metrics on, access log on (a pipe read by the bench); "+
		"bare net/http: each route's answer, the gateway's bytes, from memory\n")
	fmt.Fprintf(stdout, "req/s: median over the rounds; vs bare: median of the ratios within each round; "+
		"cpu/req: the server process's CPU time per request; p50/p99: over all requests (bench), median over the rounds (hey)\n\n")

	for _, tg := range targets {
		if opt.warmup > 0 {
			load(tg.url, opt.concurrency, opt.warmup)
		}
	}
	// Every round runs every target with every client in turn, so a change in the machine's
	// background load hits them alike, and ratios are taken within a round.
	perRound := opt.duration / time.Duration(opt.rounds)
	type measured struct {
		rps        []float64 // per round
		p50s, p99s []time.Duration
		latencies  []time.Duration // the bench's own, unsorted
		requests   int
		errors     int
		cpu        time.Duration
	}
	results := make(map[[2]int]*measured) // [target][client]
	for i := range targets {
		for c := range clients {
			results[[2]int{i, c}] = &measured{}
		}
	}
	for range opt.rounds {
		for i, tg := range targets {
			for c, client := range clients {
				m := results[[2]int{i, c}]
				before := processCPU(tg.process.Process.Pid)
				var r result
				if client == "hey" {
					r, err = runHey(opt.hey, tg.url, opt.concurrency, perRound)
					if err != nil {
						return err
					}
				} else {
					r = load(tg.url, opt.concurrency, perRound)
					slices.Sort(r.latencies)
					r.p50, r.p99 = percentile(r.latencies, 0.50), percentile(r.latencies, 0.99)
				}
				m.cpu += processCPU(tg.process.Process.Pid) - before
				m.rps = append(m.rps, r.rps)
				m.p50s, m.p99s = append(m.p50s, r.p50), append(m.p99s, r.p99)
				m.latencies = append(m.latencies, r.latencies...)
				m.requests += r.requests
				m.errors += r.errors
			}
		}
	}

	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "route\tserver\tclient\treq/s\tp50\tp99\terrors\tcpu/req\tvs bare\t")
	for i, tg := range targets {
		for c, client := range clients {
			m := results[[2]int{i, c}]
			p50, p99 := medianDuration(m.p50s), medianDuration(m.p99s)
			if client == "bench" {
				slices.Sort(m.latencies)
				p50, p99 = percentile(m.latencies, 0.50), percentile(m.latencies, 0.99)
			}
			bareRPS := results[[2]int{i - i%2, c}].rps // the bare server's row of the same route
			cpuPerRequest := float64(m.cpu.Microseconds()) / float64(max(m.requests, 1))
			fmt.Fprintf(tw, "%s\t%s\t%s\t%.0f\t%s\t%s\t%d\t%.1fµs\t%.2fx\t\n", tg.route, tg.server, client,
				median(m.rps), fmtDur(p50), fmtDur(p99), m.errors, cpuPerRequest, medianRatio(m.rps, bareRPS))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\naccess-log lines read from the gateway: %d\n", logLines.lines())
	return nil
}

func start(c *exec.Cmd) error {
	if err := c.Start(); err != nil {
		return fmt.Errorf("start %s: %w", c.Path, err)
	}
	return nil
}

func stopAll(cmds ...*exec.Cmd) {
	for _, c := range cmds {
		_ = c.Process.Signal(syscall.SIGTERM)
	}
	for _, c := range cmds {
		_ = c.Wait()
	}
}

// countingWriter counts the lines written to it, and drops them.
type countingWriter struct {
	mu sync.Mutex
	n  int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.n += bytes.Count(p, []byte("\n"))
	w.mu.Unlock()
	return len(p), nil
}

func (w *countingWriter) lines() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

var (
	heyRPS     = regexp.MustCompile(`(?m)^\s*Requests/sec:\s+([0-9.]+)`)
	heyLatency = regexp.MustCompile(`(?m)^\s*(50|99)%+ in ([0-9.]+) secs`)
	heyStatus  = regexp.MustCompile(`(?m)^\s*\[(\d{3})\]\s+(\d+) responses`)
	heyErrors  = regexp.MustCompile(`(?m)^\s*\[(\d+)\]\s+Get `)
)

// runHey runs hey at url with workers keep-alive connections for d, and reads its summary.
func runHey(hey, url string, workers int, d time.Duration) (result, error) {
	out, err := exec.Command(hey, "-z", d.String(), "-c", strconv.Itoa(workers), url).Output() // #nosec G204 -- the operator's hey binary
	if err != nil {
		return result{}, fmt.Errorf("hey %s: %w", url, err)
	}
	r, err := parseHey(out)
	if err != nil {
		return result{}, fmt.Errorf("hey %s: %w", url, err)
	}
	return r, nil
}

// parseHey reads hey's summary: requests/s, the 50th and 99th latency percentiles, the
// responses by status (anything but 200 is an error) and the requests that got no response.
func parseHey(out []byte) (result, error) {
	var r result
	m := heyRPS.FindSubmatch(out)
	if m == nil {
		return result{}, fmt.Errorf("no Requests/sec in hey's output:\n%s", out)
	}
	r.rps, _ = strconv.ParseFloat(string(m[1]), 64)
	for _, m := range heyLatency.FindAllSubmatch(out, -1) {
		secs, _ := strconv.ParseFloat(string(m[2]), 64)
		if d := time.Duration(secs * float64(time.Second)); string(m[1]) == "50" {
			r.p50 = d
		} else {
			r.p99 = d
		}
	}
	for _, m := range heyStatus.FindAllSubmatch(out, -1) {
		n, _ := strconv.Atoi(string(m[2]))
		r.requests += n
		if string(m[1]) != "200" {
			r.errors += n
		}
	}
	for _, m := range heyErrors.FindAllSubmatch(out, -1) {
		n, _ := strconv.Atoi(string(m[1]))
		r.errors += n
	}
	return r, nil
}

func medianDuration(ds []time.Duration) time.Duration {
	sorted := slices.Clone(ds)
	slices.Sort(sorted)
	return sorted[len(sorted)/2]
}

type result struct {
	rps       float64
	latencies []time.Duration // the bench's own client only
	p50, p99  time.Duration
	requests  int
	errors    int
}

func median(xs []float64) float64 {
	sorted := slices.Clone(xs)
	slices.Sort(sorted)
	return sorted[len(sorted)/2]
}

// medianRatio is the median over rounds of a[round] / b[round].
func medianRatio(a, b []float64) float64 {
	ratios := make([]float64, len(a))
	for i := range a {
		ratios[i] = a[i] / b[i]
	}
	return median(ratios)
}

// processCPU is the user and system CPU time process pid has used so far (Linux /proc).
func processCPU(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	const clockTicksPerSecond = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / clockTicksPerSecond
}

// load runs `workers` goroutines that each send GET url back to back over one keep-alive
// connection until d has passed.
func load(url string, workers int, d time.Duration) result {
	client := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers},
	}
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()

	var (
		mu        sync.Mutex
		latencies []time.Duration
		errs      int
		wg        sync.WaitGroup
	)
	start := time.Now()
	for range workers {
		wg.Go(func() {
			own := make([]time.Duration, 0, 1<<16)
			ownErrs := 0
			for ctx.Err() == nil {
				t0 := time.Now()
				resp, err := client.Get(url)
				if err != nil {
					ownErrs++
					continue
				}
				_, err = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close() // a read body: nothing to lose on close
				if err != nil || resp.StatusCode != http.StatusOK {
					ownErrs++
					continue
				}
				own = append(own, time.Since(t0))
			}
			mu.Lock()
			latencies = append(latencies, own...)
			errs += ownErrs
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	return result{rps: float64(len(latencies)) / elapsed.Seconds(), latencies: latencies, requests: len(latencies), errors: errs}
}

func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(q*float64(len(sorted)-1))]
}

func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func waitReady(url string, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if resp, err := client.Get(url); err == nil {
			_ = resp.Body.Close() // a read body: nothing to lose on close
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %s", url, timeout)
}
