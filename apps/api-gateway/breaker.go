package main

import (
	"sync"
	"time"
)

// breakerState is the classic three-state circuit breaker.
type breakerState int

const (
	breakerClosed   breakerState = iota // calls flow; consecutive failures are counted
	breakerOpen                         // calls are refused until the cool-down has passed
	breakerHalfOpen                     // one probe call is let through to test the upstream
)

func (s breakerState) String() string {
	switch s {
	case breakerClosed:
		return "closed"
	case breakerOpen:
		return "open"
	default:
		return "half-open"
	}
}

// outcome is what a guarded call reports back to the breaker.
type outcome int

const (
	outcomeSuccess outcome = iota // the upstream answered sanely (2xx-4xx)
	outcomeFailure                // connection error, timeout or 5xx
	outcomeIgnored                // the caller went away: says nothing about the upstream
)

// breaker opens after `threshold` consecutive failures, refuses calls for `cooldown`,
// then lets a single probe through: its success closes the breaker, its failure re-opens it.
type breaker struct {
	threshold int
	cooldown  time.Duration
	now       func() time.Time
	// onChange, when set, is called (under the lock, so keep it cheap) on every transition.
	onChange func(from, to breakerState)

	mu       sync.Mutex
	state    breakerState
	failures int
	openedAt time.Time
	probing  bool
}

func newBreaker(threshold int, cooldown time.Duration, now func() time.Time) *breaker {
	return &breaker{threshold: threshold, cooldown: cooldown, now: now}
}

// allow asks whether a call may go ahead. When it may, the caller must report the call's
// outcome through done exactly once.
func (b *breaker) allow() (done func(outcome), ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case breakerOpen:
		if b.now().Sub(b.openedAt) < b.cooldown {
			return nil, false
		}
		b.setState(breakerHalfOpen)
		fallthrough
	case breakerHalfOpen:
		if b.probing {
			return nil, false
		}
		b.probing = true
		return b.once(b.probeDone), true
	default:
		return b.once(b.callDone), true
	}
}

// State reports the current state. An open breaker whose cool-down has passed stays open
// until a call is let through as its probe: only then is it half-open. (Reporting half-open as
// soon as the cool-down ends made a breaker around a dead Worker read half-open most of the
// time at low traffic, which looks like recovery and restarts the alert's clock.)
func (b *breaker) State() breakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}

func (b *breaker) once(f func(outcome)) func(outcome) {
	var o sync.Once
	return func(out outcome) { o.Do(func() { f(out) }) }
}

func (b *breaker) callDone(out outcome) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state != breakerClosed {
		// A call admitted while closed finished after the breaker tripped: the probe decides.
		return
	}
	switch out {
	case outcomeSuccess:
		b.failures = 0
	case outcomeFailure:
		b.failures++
		if b.failures >= b.threshold {
			b.trip()
		}
	}
}

func (b *breaker) probeDone(out outcome) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probing = false
	switch out {
	case outcomeSuccess:
		b.failures = 0
		b.setState(breakerClosed)
	case outcomeFailure:
		b.trip()
	}
	// outcomeIgnored leaves the breaker half-open so the next call probes instead.
}

func (b *breaker) trip() {
	b.openedAt = b.now()
	b.failures = 0
	b.setState(breakerOpen)
}

func (b *breaker) setState(to breakerState) {
	if b.state == to {
		return
	}
	from := b.state
	b.state = to
	if b.onChange != nil {
		b.onChange(from, to)
	}
}
