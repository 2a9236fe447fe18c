"""Explicit providers (default providers are disabled), one per stack, built from config."""
from __future__ import annotations

import pulumi

from infra import naming
from infra.stacks import StackName


def kubernetes_provider(stack: StackName, context: str) -> pulumi.ProviderResource:
    """Bound to one kubeconfig context: a stack cannot reach another cluster by accident.

    The kubeconfig file itself comes from the operator's environment ($KUBECONFIG, else
    ~/.kube/config), read by the provider when it runs: `kubeconfig=""` keeps the SDK from
    recording $KUBECONFIG's path as an input, which would differ between an operator's machine
    and CI and show as drift of every stack.
    """
    import pulumi_kubernetes as kubernetes

    return kubernetes.Provider(naming.kubernetes_provider_name(stack), context=context,
                               kubeconfig="", enable_server_side_apply=True)


def cloudflare_provider(stack: StackName) -> pulumi.ProviderResource:
    """Credentials come from $CLOUDFLARE_API_TOKEN; the account is pinned on every resource."""
    import pulumi_cloudflare as cloudflare

    return cloudflare.Provider(naming.cloudflare_provider_name(stack))


def docker_provider(stack: StackName) -> pulumi.ProviderResource:
    """Registry credentials come from the operator's Docker config."""
    import pulumi_docker as docker

    return docker.Provider(naming.docker_provider_name(stack))
