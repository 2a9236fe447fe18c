//go:build tools

// Package tools pins the promtool command this module builds: it unit-tests the alert rules
// (`promtool test rules`) and checks every rendered stack's rules (`promtool check rules`).
package tools

import _ "github.com/prometheus/prometheus/cmd/promtool"
