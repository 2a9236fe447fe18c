"""Which services' images a change between two commits rebuilds: a service's own folder
(apps/<service>/) rebuilds its image; what goes into every image (this package, the pinned
image tools, the CA bundle) rebuilds them all. CI builds, pushes and signs only those."""

from __future__ import annotations

import subprocess
from pathlib import Path

from .services import Service
from .toolchain import REPO_ROOT, ToolError

# Inputs of every image: the build recipe, the tools' pins, the certificates put in the base.
SHARED_INPUTS = ("tools/images/", "tools/engine/oci/", "tools/engine/ca-certificates/")
NULL_COMMIT = "0" * 40  # GitHub's "before" of a push that created the branch


def changed_paths(base: str, head: str, root: Path = REPO_ROOT) -> list[str]:
    if base == NULL_COMMIT:
        args = ["ls-tree", "-r", "--name-only", head]
    else:
        args = ["diff", "--name-only", "--no-renames", f"{base}...{head}"]
    result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    if result.returncode != 0:
        raise ToolError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return [line for line in result.stdout.splitlines() if line]


def changed_services(services: list[Service], paths: list[str], root: Path = REPO_ROOT) -> list[Service]:
    """The services whose image the changed `paths` (relative to root) rebuild."""
    if any(p.startswith(SHARED_INPUTS) for p in paths):
        return list(services)
    return [s for s in services
            if any(p.startswith(s.path.relative_to(root).as_posix() + "/") for p in paths)]
