"""The Go services the platform builds images of: every folder under apps/ holding a Go module
whose root package is a command (`package main`). Found, never listed by hand."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .toolchain import REPO_ROOT

MAIN_PACKAGE = re.compile(r"^package\s+main\b", re.M)


@dataclass(frozen=True)
class Service:
    name: str  # the folder name: also the image repository and the binary's name
    path: Path  # apps/<name>


def is_go_service(folder: Path) -> bool:
    if not (folder / "go.mod").is_file():
        return False
    sources = [p for p in folder.glob("*.go") if not p.name.endswith("_test.go")]
    return any(MAIN_PACKAGE.search(p.read_text(errors="replace")) for p in sources)


def discover_services(root: Path = REPO_ROOT) -> list[Service]:
    """Every Go service under root/apps, by name."""
    apps = root / "apps"
    if not apps.is_dir():
        return []
    return [Service(folder.name, folder) for folder in sorted(apps.iterdir())
            if folder.is_dir() and is_go_service(folder)]


def select(services: list[Service], names: list[str]) -> list[Service]:
    """The named services (all of them when no name is given); an unknown name is an error
    that lists the known ones."""
    if not names:
        return services
    known = {s.name: s for s in services}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise LookupError(f"no Go service {', '.join(unknown)} under apps/ "
                          f"(services: {', '.join(known) or 'none'})")
    return [known[n] for n in names]
