"""Bringing Kubernetes objects that already run (made by hand, by kubectl, by a chart) under a
stack, without deleting and recreating them.

The program says which objects a stack owns and the names it gives them: an update's plan on
the stack lists each object (its URN, parent component, provider and inputs). Those found on
the cluster are imported with `pulumi import` under exactly those URNs, so the program's next
update updates them in place instead of creating them.

`pulumi import` records every field the object has as the resource's inputs (its cluster IP,
its defaults); the Kubernetes provider compares the live object, pruned to the shape of the
recorded inputs, with the program's inputs, so a field only the cluster sets would show as a
deletion, and an immutable one (a Service's clusterIP) as a replacement. The recorded inputs
are therefore cut to the fields the program sets, holding the live values: what a previous
update of the stack would have recorded. The next preview shows only what the stack will change.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from pulumi import automation as auto

from infra.secrets import is_secret_wrapper
from ops.errors import OpsError

KUBERNETES_PROVIDER = "pulumi:providers:kubernetes"
# Inputs the engine adds to a provider's plan that are not the provider's configuration.
ENGINE_INPUTS = {"__internal"}


@dataclass(frozen=True)
class PlannedResource:
    """One resource of the stack as the program plans it."""

    urn: str
    type: str
    op: str
    custom: bool
    parent: Optional[str]
    provider: Optional[str]  # "<provider urn>::<id>", as the engine references providers
    inputs: dict[str, Any]
    protect: bool = False

    @property
    def name(self) -> str:
        return self.urn.rsplit("::", 1)[-1]

    @property
    def provider_urn(self) -> Optional[str]:
        return self.provider.rsplit("::", 1)[0] if self.provider else None

    @property
    def is_kubernetes_object(self) -> bool:
        return self.custom and self.type.startswith("kubernetes:")


@dataclass(frozen=True)
class KubernetesObject:
    """An object a planned resource creates: what the API server knows it by."""

    api_version: str
    kind: str
    name: str
    namespace: Optional[str]

    @classmethod
    def of(cls, resource: PlannedResource) -> "KubernetesObject":
        meta = resource.inputs.get("metadata") or {}
        name = meta.get("name")
        if not isinstance(name, str) or not name:
            raise OpsError(f"{resource.name}: the program gives this object no fixed name "
                           "(metadata.name), so no existing object can be its own")
        namespace = meta.get("namespace")
        return cls(resource.inputs["apiVersion"], resource.inputs["kind"], name,
                   namespace if isinstance(namespace, str) and namespace else None)

    def describe(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"


@dataclass
class Plan:
    """Every resource an update of the stack would register, in the engine's order."""

    resources: list[PlannedResource] = field(default_factory=list)

    def __call__(self, event: auto.EngineEvent) -> None:
        """Collect the plan from a preview's events (an `on_event` callback)."""
        if event.resource_pre_event is None:
            return
        meta = event.resource_pre_event.metadata
        op = getattr(meta.op, "value", meta.op)
        state = meta.new or meta.old
        if state is None or op in ("create-replacement", "delete-replaced", "discard-replaced"):
            return
        self.resources.append(PlannedResource(
            urn=meta.urn, type=meta.type, op=op, custom=bool(state.custom),
            parent=state.parent or None, provider=meta.provider or state.provider or None,
            inputs=dict(state.inputs or {}), protect=bool(state.protect)))

    def by_urn(self, urn: str) -> PlannedResource:
        for resource in self.resources:
            if resource.urn == urn:
                return resource
        raise KeyError(urn)

    def to_create(self) -> list[PlannedResource]:
        """The Kubernetes objects the stack does not hold yet: the candidates for adoption."""
        return [r for r in self.resources if r.is_kubernetes_object and r.op == "create"]

    def foreign(self) -> list[PlannedResource]:
        """Resources of another cloud than Kubernetes: nothing here can look them up."""
        return [r for r in self.resources if r.custom and not r.type.startswith(("kubernetes:", "pulumi:"))]


def _plain_inputs(inputs: dict[str, Any]) -> dict[str, Any]:
    """A provider's configuration as the import file takes it: engine fields and values the
    plan shows only as secrets left out (the next update sets them)."""
    return {k: v for k, v in inputs.items() if k not in ENGINE_INPUTS and not is_secret_wrapper(v)}


def import_id(obj: KubernetesObject) -> str:
    """The Kubernetes provider's import ID: `namespace/name`, or `name` for a cluster object."""
    return f"{obj.namespace}/{obj.name}" if obj.namespace else obj.name


def import_file(plan: Plan, adopted: list[PlannedResource]) -> list[dict[str, Any]]:
    """The `resources` of a `pulumi import --file`: each adopted object under the URN the
    program gives it, with its parent components and its explicit provider (created in the
    state with the configuration the program gives it)."""
    entries: dict[str, dict[str, Any]] = {}  # URN -> entry
    handles: dict[str, str] = {}  # URN -> the entry's unique name, for parent/provider references

    def handle(urn: str) -> str:
        return handles.setdefault(urn, f"r{len(handles)}")

    def add_parents(resource: PlannedResource) -> Optional[str]:
        """The entry name of the resource's parent, adding component parents as needed; None
        when the parent is the stack itself."""
        if not resource.parent:
            return None
        parent = plan.by_urn(resource.parent)
        if parent.type == "pulumi:pulumi:Stack":
            return None
        if parent.urn not in entries:
            if parent.custom:
                raise OpsError(f"{resource.name}: its parent {parent.name} is a resource, not a "
                               "component; adopt cannot import it")
            entry = {"type": parent.type, "name": handle(parent.urn), "logicalName": parent.name,
                     "component": True}
            grandparent = add_parents(parent)
            if grandparent:
                entry["parent"] = grandparent
            entries[parent.urn] = entry
        return handle(parent.urn)

    for resource in adopted:
        provider_urn = resource.provider_urn
        if not provider_urn:
            raise OpsError(f"{resource.name}: planned without an explicit provider")
        provider = plan.by_urn(provider_urn)
        if provider.urn not in entries:
            entries[provider.urn] = {"type": provider.type, "name": handle(provider.urn),
                                     "logicalName": provider.name,
                                     "inputs": _plain_inputs(provider.inputs)}
        entry = {"type": resource.type, "name": handle(resource.urn), "logicalName": resource.name,
                 "id": import_id(KubernetesObject.of(resource)), "provider": handle(provider.urn)}
        version = provider.inputs.get("version")
        if isinstance(version, str) and version:
            entry["version"] = version
        parent = add_parents(resource)
        if parent:
            entry["parent"] = parent
        entries[resource.urn] = entry
    # Providers and components before the resources that reference them.
    order = {"provider": 0, "component": 1, "resource": 2}
    return sorted(entries.values(), key=lambda e: order[
        "provider" if e["type"].startswith("pulumi:providers:") else
        "component" if e.get("component") else "resource"])


def project(live: Any, shape: Any) -> Any:
    """`live` cut to the fields `shape` has. A list of another length than the program's, a
    secret, and a value the program sets are kept whole (the difference is the update's to show)."""
    if is_secret_wrapper(live) or is_secret_wrapper(shape):
        return live
    if isinstance(shape, dict) and isinstance(live, dict):
        return {key: project(live[key], value) for key, value in shape.items() if key in live}
    if isinstance(shape, list) and isinstance(live, list) and len(shape) == len(live):
        return [project(item, model) for item, model in zip(live, shape)]
    return live


def recorded_inputs(outputs: dict[str, Any], planned: dict[str, Any]) -> dict[str, Any]:
    """The inputs to record for an imported object: its live fields (the provider's outputs,
    less the provider's own bookkeeping) cut to the fields the program sets."""
    live = {k: v for k, v in outputs.items() if not k.startswith("__")}
    return project(live, planned)


def trim_imported_inputs(deployment: dict[str, Any], plan: Plan, adopted: list[PlannedResource]) -> int:
    """Rewrite, in an exported deployment, the inputs of each adopted object (see the module's
    docstring). The Kubernetes provider keeps its own copy of the inputs in the outputs'
    `__inputs`, which is what it diffs against: both are rewritten. Each is protected from
    deletion as the program protects it (an environment's namespace is). Returns how many."""
    planned = {r.urn: r for r in adopted}
    rewritten = 0
    for resource in deployment.get("resources") or []:
        wanted = planned.get(resource.get("urn"))
        if wanted is None:
            continue
        inputs = wanted.inputs
        resource["protect"] = wanted.protect
        outputs = resource.get("outputs") or {}
        trimmed = recorded_inputs(outputs, inputs)
        resource["inputs"] = trimmed
        outputs["__inputs"] = copy.deepcopy(trimmed)
        resource["outputs"] = outputs
        rewritten += 1
    return rewritten


class Cluster:
    """Read-only lookups on the cluster a Kubernetes provider of the stack points at: the
    kubeconfig and context of its planned configuration (the environment's context)."""

    def __init__(self, provider_inputs: dict[str, Any]):
        from kubernetes import config  # only `platform adopt` pays for the client
        from kubernetes.config.config_exception import ConfigException

        context = provider_inputs.get("context") or None
        kubeconfig = provider_inputs.get("kubeconfig")
        try:
            if isinstance(kubeconfig, str) and kubeconfig.strip() and not Path(kubeconfig).is_file():
                import yaml

                self.api = config.new_client_from_config_dict(yaml.safe_load(kubeconfig), context=context)
            else:
                self.api = config.new_client_from_config(
                    config_file=kubeconfig if isinstance(kubeconfig, str) and kubeconfig else None,
                    context=context)
        except (ConfigException, OSError, ValueError, TypeError) as error:
            raise OpsError(f"cannot read the kubeconfig for context '{context}': {error}") from None
        self.context = context
        self._dynamic = None

    def get(self, obj: KubernetesObject) -> Optional[dict[str, Any]]:
        """The live object, or None when there is none (nor can be: a kind the cluster does not
        serve, such as a custom resource whose definition is not installed). The client's
        dynamic API finds the kind's resource and scope from the API's discovery."""
        from kubernetes.dynamic import DynamicClient
        from kubernetes.dynamic.exceptions import (
            DynamicApiError,
            NotFoundError,
            ResourceNotFoundError,
        )
        from urllib3.exceptions import HTTPError

        try:
            if self._dynamic is None:
                self._dynamic = DynamicClient(self.api)
            try:
                resource = self._dynamic.resources.get(api_version=obj.api_version, kind=obj.kind)
            except ResourceNotFoundError:
                return None
            namespace = obj.namespace if resource.namespaced else None
            return resource.get(name=obj.name, namespace=namespace,
                                _request_timeout=15).to_dict()
        except NotFoundError:
            return None
        except DynamicApiError as error:
            raise OpsError(f"cluster of context '{self.context}': {obj.describe()}: HTTP "
                           f"{error.status} {error.reason}") from None
        except (HTTPError, OSError) as error:
            raise OpsError(f"cluster of context '{self.context}' cannot be reached: {error}") from None
