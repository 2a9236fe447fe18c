// Command bench is a small keep-alive load generator. It starts the gateway binary twice (with
// its Prometheus metrics on, and off) and a bare net/http hello server, as separate processes
// on loopback, drives each with the same number of concurrent workers for a fixed duration,
// and prints requests/s and p50/p99 latency side by side, plus the gateway binary's size.
//
// Usage: go run ./bench -gateway bin/api-gateway [-duration 5s] [-concurrency 8]
package main

import (
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
	serveHello  string
}

func run(args []string, stdout io.Writer) error {
	var opt options
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.StringVar(&opt.gateway, "gateway", "bin/api-gateway", "gateway binary to measure")
	fs.StringVar(&opt.catalog, "catalog", "catalog.json", "catalog file for the gateway")
	fs.DurationVar(&opt.duration, "duration", 5*time.Second, "measured time per target")
	fs.DurationVar(&opt.warmup, "warmup", time.Second, "unmeasured warm-up per target")
	fs.IntVar(&opt.concurrency, "concurrency", 8, "concurrent keep-alive workers")
	fs.StringVar(&opt.serveHello, "serve-hello", "", "internal: serve the bare hello server on this address")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if opt.serveHello != "" {
		return serveHello(opt.serveHello)
	}
	if opt.concurrency < 1 || opt.duration <= 0 || opt.warmup < 0 {
		return errors.New("-concurrency must be at least 1 and -duration positive")
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
		metricsOff bool // the row the next one (metrics on) is compared with
	}
	targets := []target{{name: "bare net/http hello", url: helloBase + "/"}}
	for _, route := range []struct{ name, path string }{
		{"GET /healthz", "/healthz"},
		{"GET /v1/modules", "/v1/modules"},
		{"GET /v1/modules/{name}", "/v1/modules/summarize"},
	} {
		targets = append(targets,
			target{name: "gateway " + route.name + " (metrics off)", url: offBase + route.path, metricsOff: true},
			target{name: "gateway " + route.name + " (metrics on)", url: onBase + route.path})
	}
	fmt.Fprintf(stdout, "api-gateway binary: %s, %.2f MiB (%d bytes)\n", opt.gateway, float64(info.Size())/(1<<20), info.Size())
	fmt.Fprintf(stdout, "load: %d keep-alive workers, %s per target after %s warm-up; client and servers share this machine's cores\n\n",
		opt.concurrency, opt.duration, opt.warmup)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\treq/s\tp50\tp99\terrors\tvs hello\ton vs off\t")
	var baseline, off float64
	for i, tg := range targets {
		if opt.warmup > 0 {
			load(tg.url, opt.concurrency, opt.warmup)
		}
		r := load(tg.url, opt.concurrency, opt.duration)
		if i == 0 {
			baseline = r.rps
		}
		versusOff := ""
		if tg.metricsOff {
			off = r.rps
		} else if i > 0 {
			versusOff = fmt.Sprintf("%.2fx", r.rps/off)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%d\t%.2fx\t%s\t\n", tg.name, r.rps, fmtDur(r.p50), fmtDur(r.p99), r.errors, r.rps/baseline, versusOff)
	}
	return tw.Flush()
}

type result struct {
	rps      float64
	p50, p99 time.Duration
	errors   int
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
	slices.Sort(latencies)
	return result{
		rps:    float64(len(latencies)) / elapsed.Seconds(),
		p50:    percentile(latencies, 0.50),
		p99:    percentile(latencies, 0.99),
		errors: errs,
	}
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
