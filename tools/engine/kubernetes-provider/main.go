// Command pulumi-resource-kubernetes serves the Kubernetes provider.
//
// Upstream's main embeds schema-embed.json, a file generated at release time
// and absent from the published module; the build copies the schema.json and
// terraform-mapping.json that the module does ship next to this file, with
// the provider version written into the schema (see tools/engine/build.py).
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
)

//go:embed schema-embed.json
var schema []byte

//go:embed terraform-mapping-embed.json
var terraformMapping []byte

func main() {
	provider.Serve("kubernetes", version.Version, schema, terraformMapping)
}
