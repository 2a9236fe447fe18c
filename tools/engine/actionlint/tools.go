//go:build tools

// Package tools pins actionlint, the checker of the GitHub Actions workflows in .github/:
// built from its upstream module at the version go.mod names, its hash checked by go.sum.
package tools

import _ "github.com/rhysd/actionlint/cmd/actionlint"
