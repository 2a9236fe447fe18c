"""Conventions every Kubernetes object the components create carries."""

MANAGED_BY = {"app.kubernetes.io/managed-by": "pulumi"}

# Server-side apply refuses to take back a field another field manager (`kubectl edit`)
# changed. The stack owns its objects, so `pulumi up --refresh` must repair such drift.
FORCE_APPLY = {"pulumi.com/patchForce": "true"}
