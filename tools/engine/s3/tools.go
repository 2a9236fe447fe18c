//go:build tools

// Package tools pins the S3 gateway command this module builds.
package tools

import _ "github.com/versity/versitygw/cmd/versitygw"
