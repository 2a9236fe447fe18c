"""Run the real program for one stack under Pulumi's mock engine and collect what it registers.

This stands in for the cloud only: the program, its config and its components run for real.
It runs as a preview would, so values only the cloud can know (ids, digests) stay unknown.
"""
from __future__ import annotations

import asyncio
import json
import runpy
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Collection, Optional

import pulumi
from pulumi.runtime import mocks, rpc, settings
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

from infra.project import PROJECT_ROOT
from infra.secrets import SECRET_PLACEHOLDER, is_secret_wrapper
from infra.stack_files import StackConfigFile

PROJECT = "platform"
STACK_REFERENCE = "pulumi:pulumi:StackReference"
UNKNOWN_PLACEHOLDER = "[unknown]"


@dataclass
class RegisteredResource:
    urn: str
    type: str
    name: str
    parent: str
    provider: str
    custom: bool
    inputs: dict[str, Any]
    protect: bool = False


@dataclass
class StackRun:
    stack: str
    resources: list[RegisteredResource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)
    # The values of the stack's secret config (placeholders offline; known values in tests).
    secret_values: frozenset[str] = frozenset()

    def of_type(self, type_: str) -> list[RegisteredResource]:
        return [r for r in self.resources if r.type == type_]


StackOutputsResolver = Callable[[str], dict[str, Any]]
# Event loops the SDK creates in its worker threads (one per thread), closed by shutdown().
_WORKER_LOOPS: set[asyncio.AbstractEventLoop] = set()


class _Mocks(pulumi.runtime.Mocks):
    def __init__(self, run: StackRun, resolve_stack: StackOutputsResolver):
        self.run = run
        self.resolve_stack = resolve_stack
        self.local = threading.local()
        self.lock = threading.Lock()

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        parent = getattr(self.local, "parent", "")
        urn = getattr(self.local, "urn", "")
        protect = getattr(self.local, "protect", False)
        with self.lock:
            self.run.resources.append(RegisteredResource(
                urn=urn, type=args.typ, name=args.name, parent=parent,
                provider=args.provider or "", custom=bool(args.custom) or args.typ == STACK_REFERENCE,
                inputs=args.inputs, protect=protect))
        if args.typ == STACK_REFERENCE:
            outputs = self.resolve_stack(args.inputs.get("name") or args.name)
            return f"{args.name}", {"name": args.inputs.get("name"), "outputs": outputs,
                                    "secretOutputNames": []}
        if args.typ.startswith("kubernetes:"):
            meta = args.inputs.get("metadata") or {}
            namespace = meta.get("namespace")
            object_id = f"{namespace}/{meta.get('name')}" if namespace else meta.get("name")
            return object_id, dict(args.inputs)
        if args.typ.startswith("pulumi:providers:"):
            return f"{args.name}-id", dict(args.inputs)
        # Cloud-assigned ids and computed fields are unknown until `pulumi up`.
        return "", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}, None


class _RecordingMonitor(mocks.MockMonitor):
    """Remembers each registration's parent and URN for the mocks (the args lack them), and
    the event loops the SDK's worker threads create, so they can be closed after the run."""

    def RegisterResource(self, request):  # noqa: N802 - gRPC method name
        _WORKER_LOOPS.add(_ensure_event_loop())
        self.mocks.local.parent = request.parent
        self.mocks.local.urn = self.make_urn(request.parent, request.type, request.name)
        self.mocks.local.protect = bool(request.protect)
        return super().RegisterResource(request)

    def ReadResource(self, request):  # noqa: N802 - gRPC method name
        _WORKER_LOOPS.add(_ensure_event_loop())
        self.mocks.local.parent = request.parent
        self.mocks.local.urn = self.make_urn(request.parent, request.type, request.name)
        self.mocks.local.protect = False
        return super().ReadResource(request)


def shutdown() -> None:
    """Close the event loops the runs used before the interpreter exits. Left open, the garbage
    collector closes them at exit after their sockets, printing an ignored-exception traceback;
    a command-line tool calls this once, when it has rendered everything."""
    main_loop = _ensure_event_loop()
    if not main_loop.is_running() and not main_loop.is_closed():
        # Ends the worker threads (the SDK's RPCs run there), so their loops are idle.
        main_loop.run_until_complete(main_loop.shutdown_default_executor())
    for loop in _WORKER_LOOPS | {main_loop}:
        if not loop.is_running() and not loop.is_closed():
            loop.close()
    _WORKER_LOOPS.clear()


def _resolve_output(value: Any) -> tuple[Any, bool]:
    output = pulumi.Output.from_input(value)
    known = _sync_await(output.is_known())
    secret = _sync_await(output.is_secret())
    resolved = _sync_await(output.future()) if known else UNKNOWN_PLACEHOLDER
    return resolved, secret


def run_stack(stack: str, config: StackConfigFile,
              resolve_stack: Optional[StackOutputsResolver] = None,
              organization: str = "organization", run: Optional[StackRun] = None,
              root: Path = PROJECT_ROOT, entry_point: Optional[Path] = None) -> StackRun:
    """Run the program (module `infra`) for `stack` of the project in `root` (the folder of
    its Pulumi.yaml and stack files) and return what it did. With `entry_point`, a project
    folder, run that folder's `__main__.py` instead, exactly as the CLI's language host does.

    Raises whatever the program raises (a PlatformError for bad config), after the mock
    engine has settled; pass `run` to inspect what was registered before the failure.
    """
    run = run if run is not None else StackRun(stack=stack)
    run.secret_values = secret_values_of(config)

    def no_references(name: str) -> dict[str, Any]:
        raise LookupError(f"stack reference '{name}' cannot be resolved here")

    the_mocks = _Mocks(run, resolve_stack or no_references)
    pulumi.runtime.set_all_config(dict(config.config), list(config.secret_keys))
    pulumi.runtime.set_mocks(the_mocks, project=PROJECT, stack=stack, preview=True,
                             monitor=_RecordingMonitor(the_mocks), organization=organization)
    # set_mocks leaves a finished root stack behind; the program runs in a stack of its own,
    # started as the CLI's language host starts it (`run_in_stack`), so `pulumi.run` works.
    settings.ROOT.set(None)
    settings.SETTINGS.rpc_manager.clear()
    settings.SETTINGS.outputs.clear()
    # The CLI names the project's folder (pulumi.get_root_directory()); set_mocks cannot.
    previous_root_directory = settings.SETTINGS.root_directory
    settings.SETTINGS.root_directory = str(root)
    stacks = []

    def program() -> None:
        stacks.append(settings.get_root_resource())
        if entry_point is not None:
            runpy.run_path(str(entry_point), run_name="__main__")
        else:
            runpy.run_module("infra", run_name="__main__")

    try:
        _sync_await(pulumi.runtime.run_in_stack(program))
    finally:
        settings.SETTINGS.root_directory = previous_root_directory
    (root_stack,) = stacks
    for name, value in sorted(root_stack.outputs.items()):
        resolved, secret = _resolve_output(value)
        run.outputs[name] = resolved
        if secret:
            run.secret_outputs.add(name)
    return run


def secret_values_of(config: StackConfigFile) -> frozenset[str]:
    """Every string inside the stack's secret config values (maps of secrets included)."""
    def strings(value: Any) -> list[str]:
        if isinstance(value, dict):
            return [s for v in value.values() for s in strings(v)]
        if isinstance(value, list):
            return [s for v in value for s in strings(v)]
        return [value] if isinstance(value, str) and value else []

    found = []
    for key in config.secret_keys:
        raw = config.config.get(key, "")
        try:
            found += strings(json.loads(raw)) if raw[:1] in "{[" else strings(raw)
        except json.JSONDecodeError:
            found += strings(raw)
    return frozenset(found)


def _without_secret_wrappers(value: Any, leaf: Callable[[Any, bool], Any],
                             in_secret: bool = False) -> Any:
    if is_secret_wrapper(value):
        return _without_secret_wrappers(value["value"], leaf, True)
    if isinstance(value, dict):
        return {k: _without_secret_wrappers(v, leaf, in_secret) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_secret_wrappers(v, leaf, in_secret) for v in value]
    return leaf(value, in_secret)


def unwrap_secrets(value: Any) -> Any:
    """Inputs with secret wrappers replaced by their plain values (for assertions)."""
    return _without_secret_wrappers(value, lambda leaf, _: leaf)


def _mark_unknown(value: Any) -> Any:
    unknown = isinstance(value, pulumi.output.Unknown) or value == rpc.UNKNOWN
    return UNKNOWN_PLACEHOLDER if unknown else value


def redact(value: Any, secret_values: Collection[str] = ()) -> Any:
    """Inputs as safe to write down: unknowns as `[unknown]`, secret wrappers removed, and inside
    a secret every string holding one of the stack's secret values replaced by `[secret]`.

    A secret wrapper often covers more than the secret: one secret binding makes a Worker's
    whole binding list secret. Removing the wrapper keeps the rest reviewable; the values that
    are secret (all of them come from secret config) never reach the page. Offline they are the
    `[secret]` placeholders of the stack files anyway; with decrypted config they are real.
    """
    secrets = [s for s in secret_values if s]

    def leaf(value: Any, in_secret: bool) -> Any:
        if in_secret and isinstance(value, str) and any(s in value for s in secrets):
            return SECRET_PLACEHOLDER
        return _mark_unknown(value)

    return _without_secret_wrappers(value, leaf)
