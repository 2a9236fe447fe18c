// Command ca-certificates writes the Mozilla (NSS) root certificates that Go's
// x509roots/fallback module ships as one PEM bundle, the file the service images carry at
// /etc/ssl/certs/ca-certificates.crt. The bundle comes from a Go module pinned by go.sum, not
// from the machine, so every machine writes the same bytes and the images keep one digest.
//
// A root NSS trusts only for certificates issued before a date carries a constraint a PEM
// file cannot express; it is left out rather than trusted without its limit.
package main

import (
	"encoding/pem"
	"fmt"
	"os"

	"golang.org/x/crypto/x509roots/fallback/bundle"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: ca-certificates OUTPUT")
		os.Exit(2)
	}
	out, err := os.Create(os.Args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "ca-certificates: %s\n", err)
		os.Exit(1)
	}
	written, skipped := 0, 0
	for root := range bundle.Roots() {
		if root.Constraint != nil {
			skipped++
			continue
		}
		if err := pem.Encode(out, &pem.Block{Type: "CERTIFICATE", Bytes: root.Certificate}); err != nil {
			fmt.Fprintf(os.Stderr, "ca-certificates: %s\n", err)
			os.Exit(1)
		}
		written++
	}
	if err := out.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "ca-certificates: %s\n", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "ca-certificates: %d roots written, %d with a distrust date left out\n", written, skipped)
}
