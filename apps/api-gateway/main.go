// Command api-gateway serves the platform's small JSON API over worker modules and
// forwards completion requests to the AI Worker. See README.md.
package main

import (
	"context"
	"fmt"
	"os"
)

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "api-gateway: %s\n", err)
		os.Exit(1)
	}
}
