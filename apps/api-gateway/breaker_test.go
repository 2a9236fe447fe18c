package main

import (
	"sync"
	"testing"
	"time"
)

// fakeClock is a manually advanced clock for the breaker.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func callWith(t *testing.T, b *breaker, out outcome) {
	t.Helper()
	done, ok := b.allow()
	if !ok {
		t.Fatalf("call refused in state %s", b.State())
	}
	done(out)
}

func TestBreakerOpensAfterConsecutiveFailures(t *testing.T) {
	clock := &fakeClock{now: time.Unix(0, 0)}
	b := newBreaker(3, 10*time.Second, clock.Now)

	callWith(t, b, outcomeFailure)
	callWith(t, b, outcomeFailure)
	callWith(t, b, outcomeSuccess) // resets the count
	callWith(t, b, outcomeFailure)
	callWith(t, b, outcomeFailure)
	if got := b.State(); got != breakerClosed {
		t.Fatalf("after non-consecutive failures: %s, want closed", got)
	}
	callWith(t, b, outcomeFailure)
	if got := b.State(); got != breakerOpen {
		t.Fatalf("after 3 consecutive failures: %s, want open", got)
	}
	if _, ok := b.allow(); ok {
		t.Fatal("open breaker let a call through")
	}
}

func TestBreakerHalfOpenLetsOneProbeThrough(t *testing.T) {
	tests := []struct {
		name      string
		probe     outcome
		wantState breakerState
	}{
		{"probe success closes", outcomeSuccess, breakerClosed},
		{"probe failure re-opens", outcomeFailure, breakerOpen},
		{"abandoned probe stays half-open", outcomeIgnored, breakerHalfOpen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{now: time.Unix(0, 0)}
			b := newBreaker(1, 10*time.Second, clock.Now)
			callWith(t, b, outcomeFailure)

			clock.Advance(9 * time.Second)
			if _, ok := b.allow(); ok {
				t.Fatal("call let through before the cool-down ended")
			}
			clock.Advance(time.Second)
			if got := b.State(); got != breakerOpen {
				t.Fatalf("after cool-down, before any call: %s, want open (no probe yet)", got)
			}
			done, ok := b.allow()
			if !ok {
				t.Fatal("probe refused")
			}
			if got := b.State(); got != breakerHalfOpen {
				t.Fatalf("with the probe in flight: %s, want half-open", got)
			}
			if _, ok := b.allow(); ok {
				t.Fatal("second call let through while the probe is in flight")
			}
			done(tt.probe)
			done(outcomeFailure) // reporting twice must not count twice
			if got := b.State(); got != tt.wantState {
				t.Fatalf("after probe: %s, want %s", got, tt.wantState)
			}
		})
	}
}

func TestBreakerIgnoresLateResultsOnceTripped(t *testing.T) {
	clock := &fakeClock{now: time.Unix(0, 0)}
	b := newBreaker(1, time.Second, clock.Now)
	slow, _ := b.allow() // admitted while closed, finishes after the trip
	callWith(t, b, outcomeFailure)
	slow(outcomeSuccess)
	if got := b.State(); got != breakerOpen {
		t.Fatalf("late success changed the state to %s", got)
	}
}

func TestBreakerReportsTransitions(t *testing.T) {
	clock := &fakeClock{now: time.Unix(0, 0)}
	b := newBreaker(1, time.Second, clock.Now)
	var seen []string
	b.onChange = func(from, to breakerState) { seen = append(seen, from.String()+"->"+to.String()) }
	callWith(t, b, outcomeFailure)
	clock.Advance(time.Second)
	callWith(t, b, outcomeSuccess)
	want := []string{"closed->open", "open->half-open", "half-open->closed"}
	if len(seen) != len(want) {
		t.Fatalf("transitions %v, want %v", seen, want)
	}
	for i := range want {
		if seen[i] != want[i] {
			t.Fatalf("transitions %v, want %v", seen, want)
		}
	}
}

func TestBreakerIsSafeForConcurrentUse(t *testing.T) {
	b := newBreaker(5, time.Millisecond, time.Now)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				if done, ok := b.allow(); ok {
					if (i+j)%3 == 0 {
						done(outcomeFailure)
					} else {
						done(outcomeSuccess)
					}
				}
				_ = b.State()
			}
		})
	}
	wg.Wait()
}
