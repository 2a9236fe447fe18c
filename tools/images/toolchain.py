"""The image tools (ko, crane, registry, cosign and the CA bundle), built from their Go modules
by the engine's build script into tools/engine/bin and rebuilt only when their pins change."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Callable

REPO_ROOT = Path(__file__).resolve().parents[2]
ENGINE_BUILD = REPO_ROOT / "tools" / "engine" / "build.py"
BIN = REPO_ROOT / "tools" / "engine" / "bin"

# What a build from an empty Go build cache took here (2 busy cores, niced), for the line shown
# before a build; with Go's build cache warm each takes seconds.
COLD_BUILD = {
    "ko": "about 3 minutes",
    "crane": "about 1 minute",
    "registry": "about 1 minute",
    "cosign": "about 15 minutes",
    "ca-certificates": "seconds",
}
# The binary (or file) each component puts in BIN.
PRODUCTS = {"ca-certificates": "ca-certificates.crt"}


class ToolError(Exception):
    """A tool could not be built or failed."""


def stale(components: list[str]) -> list[str]:
    """The components whose outputs are missing or older than their pins."""
    from tools.engine import build as engine

    try:
        built = engine.versions.built_versions()
    except engine.versions.VersionMismatch:
        return list(components)  # the build script says what to align
    by_name = {c.name: c for c in engine.COMPONENTS}
    return [name for name in components
            if not engine.is_current(by_name[name], engine.fingerprint(by_name[name], built))]


def ensure(*components: str, announce: Callable[[str], None] | None = None) -> None:
    """Builds what is missing or stale, saying so first (a cold cosign takes minutes)."""
    todo = stale(list(components))
    if not todo:
        return
    say = announce or (lambda line: print(line, file=sys.stderr, flush=True))
    say("images: building " + ", ".join(f"{c} ({COLD_BUILD.get(c, 'minutes')} cold)" for c in todo)
        + " from tools/engine; seconds when Go's build cache is warm")
    result = subprocess.run([sys.executable, str(ENGINE_BUILD), *todo], capture_output=True, text=True)
    if result.returncode != 0:
        raise ToolError(f"building {', '.join(todo)} failed:\n{result.stderr[-4000:]}")


def tool(name: str) -> Path:
    """The path of a built tool (call ensure first)."""
    path = BIN / PRODUCTS.get(name, name)
    if not path.exists():
        raise ToolError(f"{path} is missing: run `python tools/engine/build.py {name}`")
    return path


def run(name: str, args: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
        what: str | None = None) -> subprocess.CompletedProcess:
    """Runs a tool; a failure raises ToolError with what was being done and the tool's own
    last lines, never a traceback of ours."""
    result = subprocess.run([str(tool(name)), *args], env=env, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
        raise ToolError(f"{what or name + ' ' + args[0]} failed (exit {result.returncode}):\n{tail}")
    return result
