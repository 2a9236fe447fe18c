"""The Pulumi program: stack name -> validated config -> components -> stack outputs.

Run by the Pulumi CLI as the module `infra` (see `Pulumi.yaml`); `offline.render` runs the same
program under the mock engine to render every stack offline.
"""
