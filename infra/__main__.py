"""Entry point the Pulumi language host runs (`runtime.options.module: infra`)."""
from infra.program import main

main()
