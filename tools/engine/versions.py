"""The versions the engine toolchain is built at, read in one place.

The Python packages pinned in requirements.txt say which Pulumi CLI and which
Kubernetes provider the program expects; tools/kubernetes-version names the
Kubernetes minor of the local control plane (and of the offline schema
validation). The Go modules under tools/engine/ say what is actually built.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

ENGINE_DIR = Path(__file__).resolve().parent
REPO_ROOT = ENGINE_DIR.parent.parent
BIN_DIR = ENGINE_DIR / "bin"

# Python package -> Go module whose command is built for it.
PROVIDER_MODULES = {
    "pulumi": ("pulumi", "github.com/pulumi/pulumi/pkg/v3"),
    "pulumi-kubernetes": ("kubernetes-provider", "github.com/pulumi/pulumi-kubernetes/provider/v4"),
}

# Where the Go module proxy we build from does not serve the pinned release,
# the nearest module it serves is built instead. Each entry names the exact
# (pinned, built) pair; the version test fails as soon as either side moves.
KNOWN_SKEW = {
    "pulumi-kubernetes": (
        "4.34.2",
        "4.0.0-20260115033456-f47bc2d6f199",
        "the Go module proxy serves github.com/pulumi/pulumi-kubernetes/provider/v4 only "
        "as the pseudo-version v4.0.0-20260115033456-f47bc2d6f199 (a January 2026 commit, "
        "k8s.io/* v0.33); no tagged release",
    ),
}


def requirement_pins(requirements: Path | None = None) -> dict[str, str]:
    """`name==version` pins of requirements.txt; the installed .venv while it has none."""
    requirements = requirements or REPO_ROOT / "requirements.txt"
    pins: dict[str, str] = {}
    if requirements.exists():
        for line in requirements.read_text().splitlines():
            match = re.match(r"^\s*([A-Za-z0-9_.-]+)\s*==\s*([^\s;#]+)", line)
            if match:
                pins[match.group(1).lower().replace("_", "-")] = match.group(2)
        return pins
    for name in ("pulumi", "pulumi-kubernetes", "pulumi-cloudflare"):
        try:
            pins[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return pins


def kubernetes_minor() -> str:
    return (REPO_ROOT / "tools" / "kubernetes-version").read_text().strip()


def module_version(module_dir: str, module: str) -> str:
    """The version of `module` that the Go module in tools/engine/<module_dir> builds."""
    gomod = (ENGINE_DIR / module_dir / "go.mod").read_text()
    replaced = re.search(rf"^\s*{re.escape(module)}\s+=>\s+\S+\s+(v\S+)", gomod, re.M)
    if replaced:
        return replaced.group(1)
    required = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", gomod, re.M)
    if not required:
        raise LookupError(f"{module} is not required by tools/engine/{module_dir}/go.mod")
    return required.group(1)


@dataclass(frozen=True)
class Versions:
    pulumi_cli: str  # without the leading "v"
    kubernetes_provider: str
    kubernetes: str  # full release, e.g. 1.34.4
    etcd: str
    kwok: str


def built_versions() -> Versions:
    return Versions(
        pulumi_cli=module_version("pulumi", "github.com/pulumi/pulumi/pkg/v3").lstrip("v"),
        kubernetes_provider=module_version(
            "kubernetes-provider", "github.com/pulumi/pulumi-kubernetes/provider/v4"
        ).lstrip("v"),
        kubernetes=module_version("controlplane", "k8s.io/kubernetes").lstrip("v"),
        etcd=module_version("controlplane", "go.etcd.io/etcd/server/v3").lstrip("v"),
        kwok=module_version("kwok", "sigs.k8s.io/kwok").lstrip("v"),
    )


def skew(package: str, pinned: str, built: str) -> str | None:
    """Why `built` differs from `pinned`, if that exact pair is a declared skew."""
    entry = KNOWN_SKEW.get(package)
    if entry and entry[0] == pinned and entry[1] == built:
        return entry[2]
    return None


def go_mod_dir(module: str, version: str, cwd: Path) -> Path:
    """The module cache directory of module@version (downloading it if needed)."""
    out = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{version}"],
        cwd=cwd, check=True, capture_output=True, text=True,
    ).stdout
    return Path(json.loads(out)["Dir"])


if __name__ == "__main__":
    print(json.dumps({"pins": requirement_pins(), "kubernetes_minor": kubernetes_minor(),
                      "built": built_versions().__dict__}, indent=2))
