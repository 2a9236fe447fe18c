//go:build tools

// Package tools pins the image commands this module builds, one module for all four because
// their dependencies agree (ko and cosign both build on go-containerregistry and sigstore):
// ko builds each Go service under apps/ into an OCI image without a Docker daemon, crane
// copies and inspects images, registry is an in-memory OCI registry for loopback tests, and
// cosign signs and attests what is pushed and verifies it.
package tools

import (
	_ "github.com/google/go-containerregistry/cmd/crane"
	_ "github.com/google/go-containerregistry/cmd/registry"
	_ "github.com/google/ko"
	_ "github.com/sigstore/cosign/v3/cmd/cosign"
)
