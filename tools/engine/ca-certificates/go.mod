// Writes the NSS root certificates of Go's x509roots/fallback module as a PEM bundle for the images.
module platform.local/tools/engine/ca-certificates

go 1.26.0

require golang.org/x/crypto/x509roots/fallback v0.0.0-20261030153154-30a33513ff6d
