package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary serve as the bare server, which the bench starts by running
// its own executable with -serve-bare.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "-serve-bare" {
		if err := run(os.Args, os.Stdout); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// parseRecorded is hey's summary recorded in the file, parsed.
func parseRecorded(t *testing.T, path string) result {
	t.Helper()
	out, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := parseHey(out)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestParseHeyReadsItsSummary(t *testing.T) {
	r := parseRecorded(t, "testdata/hey-ok.txt")
	want := result{rps: 6046.8654, p50: 800 * time.Microsecond, p99: 8600 * time.Microsecond, requests: 72586}
	if r.rps != want.rps || r.requests != want.requests || r.errors != 0 ||
		r.p50.Round(time.Microsecond) != want.p50 || r.p99.Round(time.Microsecond) != want.p99 {
		t.Errorf("parsed %+v, want %+v", r, want)
	}
}

func TestParseHeyCountsRequestsWithoutAResponseAsErrors(t *testing.T) {
	r := parseRecorded(t, "testdata/hey-errors.txt")
	if r.errors != 965 || r.requests != 0 {
		t.Errorf("parsed %+v, want 965 errors and no responses", r)
	}
	if _, err := parseHey([]byte("hey: unknown flag\n")); err == nil {
		t.Error("an output without a summary was accepted")
	}
}

// The command the README shows, briefly: the real gateway beside the bare server.
func TestTheBenchMeasuresTheGatewayBesideTheBareServer(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "api-gateway")
	build := exec.Command("go", "build", "-o", bin, "..")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out := &strings.Builder{}
	args := []string{"bench", "-gateway", bin, "-catalog", "../catalog.json",
		"-duration", "300ms", "-rounds", "1", "-warmup", "0", "-concurrency", "2"}
	if err := run(args, out); err != nil {
		t.Fatalf("bench: %v\n%s", err, out)
	}
	for _, route := range routes {
		for _, server := range []string{"bare net/http", "gateway"} {
			row := regexp.MustCompile(regexp.QuoteMeta(route.name) + `\s+` + server + `\s+bench\s+\d+\s`)
			if !row.MatchString(out.String()) {
				t.Errorf("no row for %s on %s:\n%s", route.name, server, out)
			}
		}
	}
	if strings.Contains(out.String(), "access-log lines read from the gateway: 0\n") {
		t.Errorf("the gateway's access log was not read:\n%s", out)
	}
}
