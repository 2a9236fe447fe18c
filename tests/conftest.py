"""Shared fixtures: run any stack's real program under Pulumi's mocks, and find stacks by kind."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

from infra.errors import PlatformError
from infra.mock_engine import RegisteredResource, StackRun, run_stack
from infra.render import Renderer, render
from infra.stack_files import read_stack_config
from infra.stacks import PROJECT_ROOT, discover_stacks

ALL_STACKS = discover_stacks()
# `make test` exports the Go it found or bootstrapped; run alone, pytest looks for one.
GO = os.environ.get("GO") or shutil.which("go") or "/usr/local/go/bin/go"


def kind_of(stack: str) -> str:
    if "." not in stack:
        return "environment"
    return read_stack_config(stack).config.get("platform:kind", "")


def stacks_of_kind(kind: str) -> list[str]:
    return [s for s in ALL_STACKS if kind_of(s) == kind]


@pytest.fixture(scope="session")
def repo_renderer() -> Renderer:
    """One renderer for the repository as it is: each stack runs once per test session."""
    return Renderer()


@pytest.fixture(scope="session")
def rendered(tmp_path_factory, repo_renderer) -> Path:
    """Every stack of the repository rendered once, as `python -m infra.render` writes it."""
    out = tmp_path_factory.mktemp("render")
    assert render(ALL_STACKS, out, repo_renderer) == []
    return out


def tree(folder: Path) -> dict[str, bytes]:
    """Every file below `folder` with its bytes, for comparing renders."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.fixture
def run_stack_with():
    """Run `stack` with some `platform:` keys replaced (None removes a key)."""

    def run(stack: str, **overrides: Any) -> StackRun:
        return Renderer(overrides={stack: _keys(overrides)}).run(stack)

    return run


@pytest.fixture
def failing_run():
    """Run `stack` with overrides expecting a PlatformError; return (error, registered)."""

    def run(stack: str, **overrides: Any) -> tuple[PlatformError, list[RegisteredResource]]:
        renderer = Renderer(overrides={stack: _keys(overrides)})
        if "." in stack:  # let the environment stack render first, unmodified
            renderer.run(stack.split(".")[1])
        attempt = StackRun(stack=stack)
        config = read_stack_config(stack, overrides=_keys(overrides))
        with pytest.raises(PlatformError) as caught:
            run_stack(stack, config, resolve_stack=renderer._outputs_of, run=attempt)
        return caught.value, attempt.resources

    return run


def _keys(overrides: dict[str, Any]) -> dict[str, Any]:
    return {f"platform:{k}": v for k, v in overrides.items()}


def single(run: StackRun, type_: str) -> RegisteredResource:
    found = run.of_type(type_)
    assert len(found) == 1, f"expected one {type_}, found {len(found)}"
    return found[0]


def custom_resources(run: StackRun, kind_prefix: Optional[str] = None) -> list[RegisteredResource]:
    return [r for r in run.resources if r.custom and not r.type.startswith("pulumi:")
            and (kind_prefix is None or r.type.startswith(kind_prefix))]


@pytest.fixture(scope="session")
def go_service_binary(tmp_path_factory) -> Callable[[str], Path]:
    """Build apps/<service> once per session the way its Dockerfile does: static, standard
    library only (no module download allowed)."""
    built: dict[str, Path] = {}

    def build(service: str) -> Path:
        if service not in built:
            if not shutil.which(GO):
                pytest.fail(f"no Go toolchain at {GO!r}: run `make test` (it bootstraps one) "
                            "or set GO")
            out = tmp_path_factory.mktemp("bin") / service
            result = subprocess.run(
                [GO, "build", "-trimpath", "-o", str(out), "."], cwd=PROJECT_ROOT / "apps" / service,
                env={**os.environ, "CGO_ENABLED": "0", "GOPROXY": "off", "GOFLAGS": "-mod=readonly"},
                capture_output=True, text=True, timeout=600)
            assert result.returncode == 0, f"go build of apps/{service} failed:\n{result.stderr}"
            built[service] = out
        return built[service]

    return build


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
