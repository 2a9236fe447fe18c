//go:build tools

// Package tools pins act, the runner that executes the workflows in .github/ on this machine
// (tests/e2e/test_workflows_act.py): built from its upstream module at the version go.mod
// names, its hash checked by go.sum.
package tools

import _ "github.com/nektos/act"
