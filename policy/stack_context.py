"""What a rule may know of the stack it judges, from what the engine gives a policy.

- The stack name (hence the environment, and whether it is production) is in every resource's
  URN: `urn:pulumi:<stack>::<project>::<type>::<name>`. The component stacks are named
  `<component>.<env>` and environment stacks `<env>`, so the environment is the last part.
- The environment's settings (its quota, its Cloudflare zone) are the environment stack's
  outputs, which a component stack reads through a StackReference. The engine leaves read
  resources such as a StackReference out of a stack validation, so a component stack passes
  on what the rules need as its own outputs, `environment_<name>` (the `pulumi:pulumi:Stack`
  resource's properties); a StackReference's `outputs`, where an engine shows one, count too.
- Stack config (a key such as `platform:service_type`) is the stack's configuration, which the
  engine sends to the pack before it starts (the language host puts it in PULUMI_CONFIG).
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

PRODUCTION = "production"
STACK_REFERENCE = "pulumi:pulumi:StackReference"
STACK = "pulumi:pulumi:Stack"
FORWARDED_PREFIX = "environment_"


def stack_of(urn: str) -> str:
    """The stack name a URN belongs to."""
    if not urn.startswith("urn:pulumi:") or "::" not in urn:
        return ""
    return urn[len("urn:pulumi:"):].split("::", 1)[0]


def environment_of(urn: str) -> str:
    """`production` for `api-gateway.production` and for `production` itself."""
    return stack_of(urn).rsplit(".", 1)[-1]


def is_production(urn: str) -> bool:
    return environment_of(urn) == PRODUCTION


def environment_outputs(resources: Iterable[Any]) -> Mapping[str, Any] | None:
    """The outputs of the environment stack a component stack reads, if it does: those it
    passes on as its own `environment_<name>` outputs, else a StackReference's."""
    resources = list(resources)
    for resource in resources:
        if resource.resource_type == STACK:
            forwarded = {key[len(FORWARDED_PREFIX):]: value for key, value in (resource.props or {}).items()
                         if key.startswith(FORWARDED_PREFIX)}
            if forwarded:
                return forwarded
    for resource in resources:
        if resource.resource_type == STACK_REFERENCE:
            outputs = resource.props.get("outputs")
            if isinstance(outputs, Mapping):
                return outputs
    return None


def stack_config(key: str) -> Any:
    """A key of the stack's config (`platform:service_type`), decoded, or None if unset."""
    raw = json.loads(os.environ.get("PULUMI_CONFIG") or "{}").get(key)
    if isinstance(raw, str) and raw[:1] in "{[":
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw
    return raw
