package main

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestTheBatchedLogKeepsEveryLineWholeAndInOrder(t *testing.T) {
	out := &syncBuffer{}
	w := newBatchedWriter(out)
	const writers, lines = 4, 2000
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			for j := range lines {
				fmt.Fprintf(w, "{\"writer\":%d,\"line\":%d,\"pad\":%q}\n", i, j, strings.Repeat("x", j%300))
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	next := make([]int, writers)
	for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		var i, j int
		if _, err := fmt.Sscanf(line, "{\"writer\":%d,\"line\":%d,", &i, &j); err != nil || !strings.HasSuffix(line, "\"}") {
			t.Fatalf("a broken line: %.120q", line)
		}
		if j != next[i] {
			t.Fatalf("writer %d: line %d after line %d", i, j, next[i]-1)
		}
		next[i]++
	}
	for i, n := range next {
		if n != lines {
			t.Errorf("writer %d: %d lines written, want %d", i, n, lines)
		}
	}
	// After Close the log is written straight through.
	fmt.Fprintln(w, "late")
	if !strings.HasSuffix(out.String(), "late\n") {
		t.Error("a line written after Close is missing")
	}
}

func TestABatchedLogLineIsWrittenWithoutWaitingForMore(t *testing.T) {
	out := &syncBuffer{}
	w := newBatchedWriter(out)
	defer w.Close()
	fmt.Fprintln(w, `{"msg":"request"}`)
	waitFor(t, "the line to be written", func() bool { return out.String() == "{\"msg\":\"request\"}\n" })
}
