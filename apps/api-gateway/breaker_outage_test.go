package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// The alert on the breaker (tests/alerts/circuit_breaker.test.yaml) is tested by promtool on
// the series these tests record: the real breaker and the real metrics, driven through a
// Worker outage on a simulated clock and scraped every 30 seconds as Prometheus would. The
// recordings live in testdata/; `go test -run TestBreakerMetrics -update` rewrites them, and
// tests/test_alert_rules.py checks the promtool test feeds exactly what they hold.
var updateRecordings = flag.Bool("update", false, "rewrite testdata/breaker_*.series")

const scrapeInterval = 30 * time.Second

// outageScenario is traffic to /v1/ai/complete while the Worker is healthy, then down (every
// call times out), then, optionally, healthy again.
type outageScenario struct {
	name       string
	every      time.Duration // one completion request per `every`
	downFrom   time.Duration
	downUntil  time.Duration // 0: down to the end
	length     time.Duration
	timeout    time.Duration // WORKER_TIMEOUT: how long a call to the dead Worker takes
	healthyFor time.Duration // how long a call to the healthy Worker takes
}

var outageScenarios = []outageScenario{
	// One request a minute: each one after the trip is a probe that fails.
	{name: "low_traffic", every: time.Minute, downFrom: time.Minute, length: 20 * time.Minute,
		timeout: 5 * time.Second, healthyFor: 200 * time.Millisecond},
	// Twenty a second: a probe after every cool-down, in flight for the whole timeout. With a
	// 4 s timeout the 14 s cycle of cool-down and probe drifts through the 30 s scrapes, so
	// about one scrape in four reads half-open, as a real Prometheus would see it.
	{name: "high_traffic", every: 50 * time.Millisecond, downFrom: time.Minute, length: 20 * time.Minute,
		timeout: 4 * time.Second, healthyFor: 200 * time.Millisecond},
	// Down for two minutes, then the first probe succeeds and the breaker closes.
	{name: "recovery", every: 50 * time.Millisecond, downFrom: time.Minute, downUntil: 3 * time.Minute,
		length: 20 * time.Minute, timeout: 5 * time.Second, healthyFor: 200 * time.Millisecond},
}

type inFlightCall struct {
	ends time.Time
	done func(outcome)
	out  outcome
}

// record runs the scenario and returns each breaker series as scraped, one value per scrape.
func (s outageScenario) record(t *testing.T) map[string][]float64 {
	t.Helper()
	clock := &fakeClock{now: time.Unix(0, 0)}
	start := clock.Now()
	metrics := NewMetrics()
	cfg := Config{BreakerFailures: 5, BreakerCooldown: 10 * time.Second} // the defaults
	b := newLoggedBreaker(cfg, clock.Now, slog.New(slog.NewJSONHandler(io.Discard, nil)), metrics)
	metrics.WatchBreaker(b)

	series := map[string][]float64{}
	var calls []inFlightCall
	const tick = 10 * time.Millisecond
	nextRequest, nextScrape := time.Duration(0), time.Duration(0)
	for elapsed := time.Duration(0); elapsed <= s.length; elapsed += tick {
		clock.now = start.Add(elapsed)
		kept := calls[:0]
		for _, c := range calls {
			if clock.now.Before(c.ends) {
				kept = append(kept, c)
				continue
			}
			c.done(c.out)
		}
		calls = kept
		if elapsed >= nextScrape {
			for name, value := range breakerSamples(t, metrics) {
				series[name] = append(series[name], value)
			}
			nextScrape += scrapeInterval
		}
		if elapsed >= nextRequest {
			nextRequest += s.every
			done, ok := b.allow()
			if !ok {
				continue // rejected at once: the breaker is open
			}
			down := elapsed >= s.downFrom && (s.downUntil == 0 || elapsed < s.downUntil)
			if down {
				calls = append(calls, inFlightCall{ends: clock.now.Add(s.timeout), done: done, out: outcomeFailure})
			} else {
				calls = append(calls, inFlightCall{ends: clock.now.Add(s.healthyFor), done: done, out: outcomeSuccess})
			}
		}
	}
	return series
}

// breakerSamples is what a scrape of the registry reads of the breaker: its state, and its
// transitions into open by the state they left.
func breakerSamples(t *testing.T, m *Metrics) map[string]float64 {
	t.Helper()
	families, err := m.registry.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	samples := map[string]float64{}
	for _, f := range families {
		switch f.GetName() {
		case "gateway_circuit_breaker_state":
			samples[f.GetName()] = f.GetMetric()[0].GetGauge().GetValue()
		case "gateway_circuit_breaker_transitions_total":
			for _, metric := range f.GetMetric() {
				labels := map[string]string{}
				for _, l := range metric.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				if labels["to"] == "open" {
					name := fmt.Sprintf(`%s{from="%s",to="open"}`, f.GetName(), labels["from"])
					samples[name] = metric.GetCounter().GetValue()
				}
			}
		}
	}
	return samples
}

// recording is the series as the testdata file holds them: one line per series, its name and
// its values in promtool's input notation (space-separated, one per scrape).
func recording(series map[string][]float64) string {
	names := make([]string, 0, len(series))
	for name := range series {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, name := range names {
		values := make([]string, len(series[name]))
		for i, v := range series[name] {
			values[i] = fmt.Sprint(v)
		}
		fmt.Fprintf(&b, "%s %s\n", name, strings.Join(values, " "))
	}
	return b.String()
}

func TestBreakerMetricsThroughAWorkerOutage(t *testing.T) {
	for _, s := range outageScenarios {
		t.Run(s.name, func(t *testing.T) {
			series := s.record(t)
			state := series["gateway_circuit_breaker_state"]
			firstScrapeDown := int(s.downFrom / scrapeInterval)
			tripped := -1
			for i, v := range state {
				if v == breakerStateValue(breakerOpen) {
					tripped = i
					break
				}
			}
			if tripped < firstScrapeDown {
				t.Fatalf("the breaker never opened while the Worker was down: %v", state)
			}
			if s.downUntil == 0 {
				// Down to the end: from the trip on, no scrape reads closed, and the breaker
				// opens again (a probe fails) within every 10 minutes, whatever the traffic.
				for i := tripped; i < len(state); i++ {
					if state[i] == breakerStateValue(breakerClosed) {
						t.Fatalf("scrape %d reads closed while the Worker is still down: %v", i, state)
					}
				}
				window := int(10 * time.Minute / scrapeInterval)
				openings := make([]float64, len(state))
				for name, values := range series {
					if strings.HasSuffix(name, `to="open"}`) {
						for i, v := range values {
							openings[i] += v
						}
					}
				}
				for i := tripped + window; i < len(openings); i++ {
					if openings[i] <= openings[i-window] {
						t.Fatalf("no opening in the 10 minutes before scrape %d: %v", i, openings)
					}
				}
			} else {
				// Recovered: the first probe after the outage closes the breaker for good.
				last := state[len(state)-1]
				if last != breakerStateValue(breakerClosed) {
					t.Fatalf("still %v after the Worker recovered: %v", last, state)
				}
			}

			path := filepath.Join("testdata", "breaker_"+s.name+".series")
			got := recording(series)
			if *updateRecordings {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (record it: go test -run TestBreakerMetrics -update)", err)
			}
			if got != string(want) {
				t.Errorf("the breaker's series differ from %s, which the promtool test of the "+
					"alert feeds: record them again (go test -run TestBreakerMetrics -update) and "+
					"copy them into tests/alerts/circuit_breaker.test.yaml\ngot:\n%s", path, got)
			}
		})
	}
}
