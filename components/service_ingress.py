"""ServiceIngress: one public host and path prefix of a Service, through an ingress controller.

The Kubernetes provider waits for an Ingress to be admitted: until the controller of its
class has written an address into `.status.loadBalancer`, `pulumi up` does not call the
update done. That is what an operator wants to know (a host no controller serves is not
exposed), so the wait stays on: an environment without a controller fails the `up` loudly
instead of pretending.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional

import pulumi
from pulumi_kubernetes.networking.v1 import (
    HTTPIngressPathArgs,
    HTTPIngressRuleValueArgs,
    Ingress,
    IngressBackendArgs,
    IngressRuleArgs,
    IngressServiceBackendArgs,
    IngressSpecArgs,
    IngressTLSArgs,
    ServiceBackendPortArgs,
)

from components.kubernetes_objects import service_metadata

# cert-manager's ingress-shim issues a certificate into spec.tls[].secretName when it sees this.
CLUSTER_ISSUER_ANNOTATION = "cert-manager.io/cluster-issuer"


@dataclass(frozen=True)
class ServiceIngressArgs:
    namespace: pulumi.Input[str]
    service_name: pulumi.Input[str]
    service_port: int
    host: str
    path: str  # a prefix, matched element by element
    ingress_class: str
    tls_secret: Optional[str] = None  # an existing Secret, or ...
    cluster_issuer: Optional[str] = None  # ... cert-manager issues `<name>-tls`
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)  # the controller's, e.g. a canary's
    service: Optional[str] = None  # the service whose name its labels carry (default: `name`)


class ServiceIngress(pulumi.ComponentResource):
    """An Ingress (networking.k8s.io/v1) routing https://<host><path> to the Service."""

    url: pulumi.Output[str]

    def __init__(self, name: str, args: ServiceIngressArgs,
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("platform:service_ingress:ServiceIngress", name, None, opts)
        if (args.tls_secret is None) == (args.cluster_issuer is None):
            raise ValueError("ServiceIngress needs exactly one of tls_secret or cluster_issuer")
        annotations = {**({CLUSTER_ISSUER_ANNOTATION: args.cluster_issuer}
                          if args.cluster_issuer else {}), **args.annotations}
        Ingress(f"{name}-ingress", metadata=service_metadata(
            args.service or name, args.namespace, args.labels, object_name=name,
            annotations=annotations or None),
            spec=IngressSpecArgs(
                ingress_class_name=args.ingress_class,
                tls=[IngressTLSArgs(hosts=[args.host],
                                    secret_name=args.tls_secret or f"{name}-tls")],
                rules=[IngressRuleArgs(host=args.host, http=HTTPIngressRuleValueArgs(paths=[
                    HTTPIngressPathArgs(path=args.path, path_type="Prefix",
                                        backend=IngressBackendArgs(service=IngressServiceBackendArgs(
                                            name=args.service_name,
                                            port=ServiceBackendPortArgs(number=args.service_port))))]))]),
            opts=pulumi.ResourceOptions(parent=self))
        self.url = pulumi.Output.from_input(f"https://{args.host}{args.path}")
        self.register_outputs({"url": self.url})
