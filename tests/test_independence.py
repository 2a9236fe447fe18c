"""Stacks are independent: changing one component stack changes that stack's render only, and
no Kubernetes or Cloudflare object is ever registered by two stacks."""
from __future__ import annotations

import json

import pytest

from infra.render import Renderer, render
from infra.stack_files import read_stack_config

from tests.conftest import ALL_STACKS, kind_of, tree

COMPONENT_STACKS = [s for s in ALL_STACKS if "." in s]
# What makes a Cloudflare object the same object, per type.
CLOUDFLARE_IDENTITY = {
    "cloudflare:index/worker:Worker": ("accountId", "name"),
    "cloudflare:index/workerVersion:WorkerVersion": ("accountId", "workerId"),
    "cloudflare:index/workersDeployment:WorkersDeployment": ("accountId", "scriptName"),
    "cloudflare:index/workersRoute:WorkersRoute": ("zoneId", "pattern"),
    "cloudflare:index/workersCustomDomain:WorkersCustomDomain": ("accountId", "hostname"),
    "cloudflare:index/workersCronTrigger:WorkersCronTrigger": ("accountId", "scriptName"),
    "cloudflare:index/workersKvNamespace:WorkersKvNamespace": ("accountId", "title"),
}


def one_change(stack: str) -> dict:
    """A typical edit of the stack's own team: scale a service, retune a Worker."""
    config = read_stack_config(stack).config
    if kind_of(stack) == "go-service":
        scaling = json.loads(config["platform:scaling"])
        return {"platform:scaling": {**scaling, "max_replicas": scaling["max_replicas"] + 1}}
    variables = json.loads(config["platform:vars"])
    return {"platform:vars": {**variables, "GATEWAY_TIMEOUT_MS": "2500"}}


@pytest.mark.parametrize("stack", COMPONENT_STACKS)
def test_changing_one_component_stack_changes_only_its_render(rendered, tmp_path, stack):
    assert render(ALL_STACKS, tmp_path, Renderer(overrides={stack: one_change(stack)})) == []
    changed = {s for s in ALL_STACKS if tree(tmp_path / s) != tree(rendered / s)}
    assert changed == {stack}


def test_no_object_is_registered_by_two_stacks(rendered):
    owners: dict[tuple, str] = {}
    for stack in ALL_STACKS:
        graph = json.loads((rendered / stack / "graph.json").read_text())
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
            assert identity not in owners, f"{identity} registered by {owners.get(identity)} " \
                                           f"and {stack}"
            owners[identity] = stack
    assert len(owners) > 20
