"""The kubeconfig contexts a project's environment stacks bind their Kubernetes providers to,
read from the environment stack files (`platform:kubernetes.context`), so that the local
cluster's kubeconfig answers to every one of them without their names being typed twice."""

from __future__ import annotations

import json
from pathlib import Path

from infra.project import PROJECT_ROOT
from infra.stack_files import discover_stacks, read_stack_config


def environment_contexts(root: Path = PROJECT_ROOT) -> list[str]:
    """Every context the environment stacks of the project in `root` name, sorted."""
    contexts = set()
    for stack in discover_stacks(root):
        if "." in stack:  # a component stack: it takes its context from its environment
            continue
        target = read_stack_config(stack, root).config.get("platform:kubernetes")
        context = (json.loads(target) if target else {}).get("context")
        if context:
            contexts.add(context)
    return sorted(contexts)
