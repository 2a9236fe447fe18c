"""Shared fixtures: run any stack's real program under Pulumi's mocks, and find stacks by kind.

The glob-based tests run over every stack file of two projects: the repository, and the
minimal project in tests/fixtures/minimal-project (a new team's stacks with only the keys their
config models require), so that they assert what each stack's own config implies rather than
what the repository's examples happen to set.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Union

import pytest

from infra.errors import PlatformError
from infra.project import PROJECT_ROOT
from infra.stack_files import discover_stacks, read_stack_config
from offline.mock_engine import RegisteredResource, StackRun, run_stack
from offline.render import Renderer, render
from tools.images import toolchain

FIXTURE_PROJECT = Path(__file__).resolve().parent / "fixtures" / "minimal-project"
ALL_STACKS = discover_stacks()  # the repository's stacks, by name
# `make test` exports the Go it found or bootstrapped; run alone, pytest looks for one.
GO = os.environ.get("GO") or shutil.which("go") or "/usr/local/go/bin/go"


@dataclass(frozen=True)
class Stack:
    """A stack of a project: the repository (PROJECT_ROOT) or a fixture project."""

    name: str
    root: Path = PROJECT_ROOT

    def __str__(self) -> str:  # the test id: the repository's stacks keep their bare names
        return self.name if self.root == PROJECT_ROOT else f"{self.root.name}-{self.name}"

    @property
    def env(self) -> str:
        return self.name.split(".")[-1]

    @property
    def component(self) -> Optional[str]:
        return self.name.split(".")[0] if "." in self.name else None

    @property
    def environment(self) -> "Stack":
        return Stack(self.env, self.root)

    @property
    def file(self) -> Path:
        return self.root / f"Pulumi.{self.name}.yaml"

    @property
    def config(self) -> dict[str, str]:
        """The config the engine passes (`platform:key` -> value, objects JSON-encoded)."""
        return read_stack_config(self.name, self.root).config

    def configured(self, key: str, default: Any = None) -> Any:
        """A `platform:` key of the stack's own file, decoded (`default` when it is not set)."""
        value = self.config.get(f"platform:{key}")
        if value is None:
            return default
        return json.loads(value) if value[:1] in "{[" else value

    @property
    def kind(self) -> str:
        return "environment" if self.component is None else self.config.get("platform:kind", "")


def as_stack(stack: Union[str, Stack]) -> Stack:
    return stack if isinstance(stack, Stack) else Stack(stack)


PROJECTS = (PROJECT_ROOT, FIXTURE_PROJECT)
# Every stack file of every project: what the glob-based tests run over.
STACKS = [Stack(name, root) for root in PROJECTS for name in discover_stacks(root)]


def stacks_of(kind: str) -> list[Stack]:
    return [s for s in STACKS if s.kind == kind]


def kind_of(stack: str) -> str:
    return Stack(stack).kind


def stacks_of_kind(kind: str) -> list[str]:
    """The repository's stacks of a kind, by name."""
    return [s for s in ALL_STACKS if kind_of(s) == kind]


class Renderers:
    """One renderer per project: each stack runs once per test session."""

    def __init__(self):
        self.by_root: dict[Path, Renderer] = {}

    def of(self, root: Path) -> Renderer:
        return self.by_root.setdefault(root, Renderer(root=root))

    def run(self, stack: Union[str, Stack]) -> StackRun:
        stack = as_stack(stack)
        return self.of(stack.root).run(stack.name)


@pytest.fixture(scope="session")
def renderers() -> Renderers:
    return Renderers()


@pytest.fixture(scope="session")
def repo_renderer(renderers) -> Renderer:
    """The renderer of the repository as it is."""
    return renderers.of(PROJECT_ROOT)


@pytest.fixture(scope="session")
def rendered_projects(tmp_path_factory, renderers) -> dict[Path, Path]:
    """Every stack of every project rendered once, as `python -m offline.render` writes it:
    project root -> output folder."""
    outs = {}
    for root in PROJECTS:
        outs[root] = tmp_path_factory.mktemp(f"render-{root.name}")
        assert render(discover_stacks(root), outs[root], renderers.of(root)) == []
    return outs


@pytest.fixture(scope="session")
def rendered(rendered_projects) -> Path:
    """Every stack of the repository, rendered."""
    return rendered_projects[PROJECT_ROOT]


@pytest.fixture(scope="session")
def rendered_stack(rendered_projects) -> Callable[[Stack], Path]:
    """The folder a stack was rendered into."""
    return lambda stack: rendered_projects[stack.root] / stack.name


def tree(folder: Path) -> dict[str, bytes]:
    """Every file below `folder` with its bytes, for comparing renders."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.fixture
def run_stack_with():
    """Run `stack` (a name in the repository, or a Stack) with some `platform:` keys replaced
    (None removes a key)."""

    def run(stack: Union[str, Stack], **overrides: Any) -> StackRun:
        stack = as_stack(stack)
        return Renderer(root=stack.root, overrides={stack.name: _keys(overrides)}).run(stack.name)

    return run


@pytest.fixture
def failing_run():
    """Run `stack` with overrides expecting a PlatformError; return (error, registered)."""

    def run(stack: Union[str, Stack], **overrides: Any
            ) -> tuple[PlatformError, list[RegisteredResource]]:
        stack = as_stack(stack)
        renderer = Renderer(root=stack.root, overrides={stack.name: _keys(overrides)})
        if stack.component:  # let the environment stack render first, unmodified
            renderer.run(stack.env)
        attempt = StackRun(stack=stack.name)
        config = read_stack_config(stack.name, stack.root, overrides=_keys(overrides))
        with pytest.raises(PlatformError) as caught:
            run_stack(stack.name, config, resolve_stack=renderer._outputs_of, run=attempt,
                      root=stack.root)
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
    """Build apps/<service> of a project (the repository by default) once per session the way
    its Dockerfile does: static, with exactly the modules its go.sum pins (downloaded through
    the Go module proxy if not cached)."""
    built: dict[Path, Path] = {}

    def build(service: str, root: Path = PROJECT_ROOT) -> Path:
        source = root / "apps" / service
        if source not in built:
            if not shutil.which(GO):
                pytest.fail(f"no Go toolchain at {GO!r}: run `make test` (it bootstraps one) "
                            "or set GO")
            assert (source / "go.mod").is_file(), f"no Go service at {source}: no go.mod"
            out = tmp_path_factory.mktemp("bin") / service
            result = subprocess.run(
                [GO, "build", "-trimpath", "-o", str(out), "."], cwd=source,
                env={**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly"},
                capture_output=True, text=True, timeout=600)
            assert result.returncode == 0, f"go build of {source} failed:\n{result.stderr}"
            built[source] = out
        return built[source]

    return build


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_healthy(url: str, process: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    """Until the service `process` runs answers 200 on `url`/healthz; fails with its log if it
    exits first or does not answer within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{url}: the process exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"{url} did not become healthy:\n{log.read_text()}")


def http_status(url: str, body: dict | None = None, timeout: float = 10) -> int:
    """The status of a GET (or, with a JSON `body`, a POST) to a service on loopback; its answer
    is read whole, so the service's access-log line is written by the time this returns."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


# What a cold build of each tool of tools/engine takes on two cores (tools/engine/README.md).
COLD_BUILD = {"promtool": "about 3 minutes", "prometheus": "about 3 minutes after promtool",
              "monitoring-crds": "seconds", "actionlint": "about a minute", **toolchain.COLD_BUILD}


def announce(config: pytest.Config, line: str) -> None:
    """A line the operator sees at once, whatever pytest captures (xdist's workers included)."""
    with config.pluginmanager.getplugin("capturemanager").global_and_fixture_disabled():
        sys.stderr.write(f"\n{line}\n")
        sys.stderr.flush()


def engine_tools(config: pytest.Config, components: list[str], make_target: str) -> Path:
    """tools/engine/bin with `components` in it: found up to date, or built now by the engine's
    build script with a line saying so (`make <make_target>` builds them ahead of the tests)."""
    from tools.engine import build as engine_build

    build = PROJECT_ROOT / "tools" / "engine" / "build.py"
    stale = engine_build.stale(components)
    if stale:
        announce(config, "building " + ", ".join(f"{c} ({COLD_BUILD.get(c, 'minutes')} cold)" for c in stale)
                 + f" for the tests that need it; `make {make_target}` builds it ahead")
        result = subprocess.run([sys.executable, str(build), *stale], capture_output=True, text=True,
                                timeout=3600)
        assert result.returncode == 0, f"building {stale} failed:\n{result.stderr[-4000:]}"
    return PROJECT_ROOT / "tools" / "engine" / "bin"


@dataclass(frozen=True)
class MonitoringTools:
    promtool: Path
    crds: Path  # the Prometheus operator's CustomResourceDefinitions (monitoring.coreos.com)


@pytest.fixture(scope="session")
def prometheus_binary(pytestconfig) -> Path:
    """The Prometheus server of tools/engine (`build.py prometheus`; `make monitoring-tools`)."""
    return engine_tools(pytestconfig, ["prometheus"], "monitoring-tools") / "prometheus"


@pytest.fixture(scope="session")
def monitoring_tools(pytestconfig) -> MonitoringTools:
    """promtool and the operator's CRDs, built from their Go modules by the engine's build
    script (`make monitoring-tools`; up to date, they are used as they are)."""
    bin_dir = engine_tools(pytestconfig, ["promtool", "monitoring-crds"], "monitoring-tools")
    return MonitoringTools(promtool=bin_dir / "promtool", crds=bin_dir / "monitoring-crds")
