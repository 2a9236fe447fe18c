// Command bench is a small keep-alive load generator. It starts the gateway binary twice (with
// its Prometheus metrics on, and off) and a bare net/http hello server, as separate processes
// on loopback, drives each with the same number of concurrent workers in interleaved rounds,
// and prints requests/s, p50/p99 latency and each server's CPU time per request side by side,
// plus the gateway binary's size.
//
// Usage: go run ./bench -gateway bin/api-gateway [-duration 10s] [-rounds 10] [-concurrency 8]
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
	serveHello  string
}

func run(args []string, stdout io.Writer) error {
	var opt options
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.StringVar(&opt.gateway, "gateway", "bin/api-gateway", "gateway binary to measure")
	fs.StringVar(&opt.catalog, "catalog", "catalog.json", "catalog file for the gateway")
	fs.DurationVar(&opt.duration, "duration", 10*time.Second, "measured time per target, over all rounds")
	fs.DurationVar(&opt.warmup, "warmup", time.Second, "unmeasured warm-up per target")
	fs.IntVar(&opt.concurrency, "concurrency", 8, "concurrent keep-alive workers")
	fs.IntVar(&opt.rounds, "rounds", 10, "rounds; each runs every target for duration/rounds, in turn")
	fs.StringVar(&opt.serveHello, "serve-hello", "", "internal: serve the bare hello server on this address")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if opt.serveHello != "" {
		return serveHello(opt.serveHello)
	}
	if opt.concurrency < 1 || opt.duration <= 0 || opt.warmup < 0 || opt.rounds < 1 {
		return errors.New("-concurrency and -rounds must be at least 1 and -duration positive")
	}
	return benchmark(opt, stdout)
}

// serveHello is the baseline: the least a net/http server can do for a JSON answer.
func serveHello(addr string) error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok"}`+"\n")
	})
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

	ports := make([]int, 3)
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return err
		}
	}
	gatewayEnv := func(port int, metrics string) []string {
		return []string{fmt.Sprintf("PORT=%d", port), "CATALOG_PATH=" + catalog, "SHUTDOWN_DRAIN=0s",
			"LOG_LEVEL=info", "METRICS_ENABLED=" + metrics}
	}
	gwOn, gwOff := exec.Command(opt.gateway), exec.Command(opt.gateway) // #nosec G204 -- the benchmark runs the gateway binary its operator names
	gwOn.Env, gwOff.Env = gatewayEnv(ports[0], "true"), gatewayEnv(ports[1], "false")
	hello := exec.Command(self, "-serve-hello", fmt.Sprintf("127.0.0.1:%d", ports[2])) // #nosec G204 -- runs its own binary
	for _, c := range []*exec.Cmd{gwOn, gwOff, hello} {
		if err := c.Start(); err != nil {
			return fmt.Errorf("start %s: %w", c.Path, err)
		}
		defer func() {
			_ = c.Process.Signal(syscall.SIGTERM)
			_ = c.Wait()
		}()
	}
	onBase := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	offBase := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	helloBase := fmt.Sprintf("http://127.0.0.1:%d", ports[2])
	for _, u := range []string{onBase + "/readyz", offBase + "/readyz", helloBase + "/"} {
		if err := waitReady(u, 10*time.Second); err != nil {
			return err
		}
	}

	// Each gateway route runs with metrics off, then on, back to back, so the two are
	// measured under the same background load.
	type target struct {
		name, url  string
		server     *exec.Cmd
		metricsOff bool // the row the next one (metrics on) is compared with
	}
	targets := []target{{name: "bare net/http hello", url: helloBase + "/", server: hello}}
	for _, route := range []struct{ name, path string }{
		{"GET /healthz", "/healthz"},
		{"GET /v1/modules", "/v1/modules"},
		{"GET /v1/modules/{name}", "/v1/modules/summarize"},
	} {
		targets = append(targets,
			target{name: "gateway " + route.name + " (metrics off)", url: offBase + route.path, server: gwOff, metricsOff: true},
			target{name: "gateway " + route.name + " (metrics on)", url: onBase + route.path, server: gwOn})
	}
	fmt.Fprintf(stdout, "api-gateway binary: %s, %.2f MiB (%d bytes)\n", opt.gateway, float64(info.Size())/(1<<20), info.Size())
	fmt.Fprintf(stdout, "load: %d keep-alive workers, %s per target in %d interleaved rounds after %s warm-up; "+
		"client and servers share this machine's cores\n", opt.concurrency, opt.duration, opt.rounds, opt.warmup)
	fmt.Fprintf(stdout, "req/s: median over the rounds; vs hello, on vs off: median of the ratios within each round; "+
		"cpu/req: the server process's CPU time per request\n\n")

	// Every round runs every target in turn, so a change in the machine's background load
	// hits all of them alike, and ratios are taken within a round.
	for _, tg := range targets {
		if opt.warmup > 0 {
			load(tg.url, opt.concurrency, opt.warmup)
		}
	}
	perRound := opt.duration / time.Duration(opt.rounds)
	rps := make([][]float64, len(targets)) // [target][round]
	cpu := make([]time.Duration, len(targets))
	all := make([]result, len(targets))
	for range opt.rounds {
		for i, tg := range targets {
			before := processCPU(tg.server.Process.Pid)
			r := load(tg.url, opt.concurrency, perRound)
			cpu[i] += processCPU(tg.server.Process.Pid) - before
			rps[i] = append(rps[i], r.rps)
			all[i].latencies = append(all[i].latencies, r.latencies...)
			all[i].errors += r.errors
		}
	}

	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\treq/s\tp50\tp99\terrors\tcpu/req\tvs hello\ton vs off\t")
	for i, tg := range targets {
		slices.Sort(all[i].latencies)
		versusOff := ""
		if i > 0 && !tg.metricsOff {
			versusOff = fmt.Sprintf("%.2fx", medianRatio(rps[i], rps[i-1]))
		}
		cpuPerRequest := float64(cpu[i].Microseconds()) / float64(max(len(all[i].latencies), 1))
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%d\t%.1fµs\t%.2fx\t%s\t\n", tg.name, median(rps[i]),
			fmtDur(percentile(all[i].latencies, 0.50)), fmtDur(percentile(all[i].latencies, 0.99)),
			all[i].errors, cpuPerRequest, medianRatio(rps[i], rps[0]), versusOff)
	}
	return tw.Flush()
}

type result struct {
	rps       float64
	latencies []time.Duration // unsorted
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
	return result{rps: float64(len(latencies)) / elapsed.Seconds(), latencies: latencies, errors: errs}
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
