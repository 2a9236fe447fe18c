"""Conventions every Kubernetes object the components create carries."""
from __future__ import annotations

from typing import Mapping, Optional

import pulumi
from pulumi_kubernetes.meta.v1 import ObjectMetaArgs

MANAGED_BY = {"app.kubernetes.io/managed-by": "pulumi"}

# Server-side apply refuses to take back a field another field manager (`kubectl edit`)
# changed. The stack owns its objects, so `pulumi up --refresh` must repair such drift.
FORCE_APPLY = {"pulumi.com/patchForce": "true"}


def service_labels(service: str, labels: Mapping[str, str]) -> dict[str, str]:
    """The labels of every object of a service: its name, who manages it, the stack's own."""
    return {"app.kubernetes.io/name": service, **MANAGED_BY, **labels}


def service_metadata(service: str, namespace: pulumi.Input[str], labels: Mapping[str, str],
                     object_name: Optional[str] = None,
                     annotations: Optional[Mapping[str, str]] = None) -> ObjectMetaArgs:
    """Metadata of an object of a service, named after it unless `object_name` is given."""
    return ObjectMetaArgs(name=object_name or service, namespace=namespace,
                          labels=service_labels(service, labels),
                          annotations={**FORCE_APPLY, **(annotations or {})})
