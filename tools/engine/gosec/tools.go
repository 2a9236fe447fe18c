//go:build tools

// Package tools pins the Go security scanner this module builds.
package tools

import _ "github.com/securego/gosec/v2/cmd/gosec"
