"""The one place resource and object names are derived."""
from __future__ import annotations

from infra.stacks import StackName

PROJECT = "platform"


def environment_stack_reference(organization: str, env: str) -> str:
    """Fully qualified name of an environment stack, as a StackReference wants it."""
    return f"{organization}/{PROJECT}/{env}"


def worker_script_name(stack: StackName) -> str:
    """Cloudflare script names are account-wide, so the environment is part of the name."""
    return f"{stack.component}-{stack.env}"


def kubernetes_provider_name(stack: StackName) -> str:
    return f"k8s-{stack.env}"


def cloudflare_provider_name(stack: StackName) -> str:
    return f"cloudflare-{stack.env}"


def docker_provider_name(stack: StackName) -> str:
    return f"docker-{stack.env}"
