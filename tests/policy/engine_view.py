"""Resources as the engine hands them to a policy, crafted by hand or taken from a stack run
under the mock engine, and the violations a policy reports on them."""
from __future__ import annotations

from typing import Any, Optional

from pulumi_policy import (
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
)
from pulumi_policy.policy import PolicyCustomTimeouts

from offline.mock_engine import STACK_REFERENCE, StackRun, unwrap_secrets
from offline.render import normalize

PROJECT = "platform"
STACK = "pulumi:pulumi:Stack"


def urn(stack: str, type_: str, name: str) -> str:
    return f"urn:pulumi:{stack}::{PROJECT}::{type_}::{name}"


def _options(parent: str = "") -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [],
                                 parent or None)


def resource_args(type_: str, props: dict[str, Any], stack: str = "api-gateway.production",
                  name: str = "crafted") -> ResourceValidationArgs:
    return ResourceValidationArgs(type_, props, urn(stack, type_, name), name, _options(), None)


def policy_resource(type_: str, props: dict[str, Any], stack: str = "api-gateway.production",
                    name: str = "crafted", parent: str = "") -> PolicyResource:
    return PolicyResource(type_, props, urn(stack, type_, name), name, _options(parent), None,
                          None, [], {})


def violations(validate, args) -> list[str]:
    """The messages a validation function reports for `args` (resource or stack)."""
    found: list[str] = []
    validate(args, lambda message, urn=None: found.append(message))
    return found


def stack_resources(run: StackRun) -> list[PolicyResource]:
    """A mocked stack run as the engine shows it to a stack validation during a preview: each
    resource's inputs (secrets as their values) and the stack's outputs as the properties of
    its `pulumi:pulumi:Stack` resource. The engine leaves read resources out, so a
    StackReference is not there."""
    resources = [PolicyResource(STACK, normalize(unwrap_secrets(run.outputs)),
                                urn(run.stack, STACK, f"{PROJECT}-{run.stack}"), f"{PROJECT}-{run.stack}",
                                _options(), None, None, [], {})]
    for registered in run.resources:
        if registered.type == STACK_REFERENCE:
            continue
        props = normalize(unwrap_secrets(registered.inputs))
        resources.append(PolicyResource(registered.type, props, registered.urn, registered.name,
                                        _options(registered.parent), None, None, [], {}))
    return resources


def pack_violations(policies, resources: list[PolicyResource],
                    config: Optional[dict] = None) -> list[str]:
    """Every violation the pack's policies report on a stack's resources, named by policy."""
    found = []
    for policy in policies:
        report = (lambda name: lambda message, urn=None: found.append(f"{name}: {message}"))(
            policy.name)
        if isinstance(policy, ResourceValidationPolicy):
            for r in resources:
                policy.validate(ResourceValidationArgs(r.resource_type, r.props, r.urn, r.name,
                                                       r.opts, None, config), report)
        else:
            policy.validate(StackValidationArgs(resources, config), report)
    return found
