"""Stacks are independent: changing one component stack changes that stack's render only, and
no Kubernetes or Cloudflare object is ever registered by two stacks."""
from __future__ import annotations

import json

import pytest

from infra.config.go_service import Scaling
from infra.stack_files import discover_stacks
from offline.render import Renderer, render

from tests.conftest import PROJECTS, STACKS, Stack, tree

COMPONENT_STACKS = [s for s in STACKS if s.component]
# What makes a Cloudflare object the same object, per type.
CLOUDFLARE_IDENTITY = {
    "cloudflare:index/worker:Worker": ("accountId", "name"),
    "cloudflare:index/workerVersion:WorkerVersion": ("accountId", "workerId"),
    "cloudflare:index/workersDeployment:WorkersDeployment": ("accountId", "scriptName"),
    "cloudflare:index/workersRoute:WorkersRoute": ("zoneId", "pattern"),
    "cloudflare:index/workersCustomDomain:WorkersCustomDomain": ("accountId", "hostname"),
    "cloudflare:index/workersCronTrigger:WorkersCronTrigger": ("accountId", "scriptName"),
    "cloudflare:index/workersKvNamespace:WorkersKvNamespace": ("accountId", "title"),
    "cloudflare:index/notificationPolicy:NotificationPolicy": ("accountId", "name"),
    "cloudflare:index/logpushJob:LogpushJob": ("accountId", "name"),
}


def one_change(stack: Stack) -> dict:
    """A typical edit of the stack's own team: scale a service, retune a Worker."""
    if stack.kind == "go-service":
        scaling = {**Scaling().model_dump(), **stack.configured("scaling", {})}
        return {"platform:scaling": {**scaling, "max_replicas": scaling["max_replicas"] + 1}}
    return {"platform:vars": {**stack.configured("vars", {}), "RETUNED_BY_ITS_TEAM": "1"}}


@pytest.mark.parametrize("stack", COMPONENT_STACKS, ids=str)
def test_changing_one_component_stack_changes_only_its_render(rendered_projects, tmp_path,
                                                              stack):
    stacks, rendered = discover_stacks(stack.root), rendered_projects[stack.root]
    changed_renderer = Renderer(root=stack.root, overrides={stack.name: one_change(stack)})
    assert render(stacks, tmp_path, changed_renderer) == []
    changed = {s for s in stacks if tree(tmp_path / s) != tree(rendered / s)}
    assert changed == {stack.name}


@pytest.mark.parametrize("root", PROJECTS, ids=lambda root: root.name)
def test_no_object_is_registered_by_two_stacks(rendered_projects, root):
    owners: dict[tuple, str] = {}
    objects = 0
    for stack in discover_stacks(root):
        graph = json.loads((rendered_projects[root] / stack / "graph.json").read_text())
        for resource in graph["resources"]:
            inputs, type_ = resource["inputs"], resource["type"]
            if type_.startswith("kubernetes:"):
                meta = inputs["metadata"]
                identity = (inputs["kind"], meta.get("namespace"), meta["name"])
            elif type_.startswith("cloudflare:"):
                keys = CLOUDFLARE_IDENTITY[type_]
                identity = (type_, *(inputs.get(k) for k in keys))
                if "[unknown]" in identity:  # ids assigned at creation: per-stack by nature
                    identity = (type_, stack, resource["name"])
            else:
                continue
            objects += 1
            assert identity not in owners, f"{identity} registered by {owners.get(identity)} " \
                                           f"and {stack}"
            owners[identity] = stack
    assert objects == len(owners) > 0
