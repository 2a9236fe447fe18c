"""Reusable Pulumi ComponentResources. They know nothing of stacks or config files.

Import the module you need (`components.go_service`, ...): each pulls in only its own
provider SDK, so a Kubernetes stack never pays for importing the Cloudflare SDK.
"""
