//go:build tools

// Package tools pins the Prometheus commands this module builds: promtool unit-tests the alert
// rules (`promtool test rules`) and checks every rendered stack's rules (`promtool check
// rules`); the server (`prometheus`) evaluates the same rendered rules over real scrapes in the
// rollout-analysis tests.
package tools

import (
	_ "github.com/prometheus/prometheus/cmd/prometheus"
	_ "github.com/prometheus/prometheus/cmd/promtool"
)
