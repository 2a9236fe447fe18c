"""The versions the engine toolchain is built at, read in one place.

The Python packages pinned in requirements.txt say which Pulumi CLI and which
Kubernetes provider the program expects; tools/kubernetes-version names the
Kubernetes minor of the local control plane (and of the offline schema
validation). The Go modules under tools/engine/ say what is actually built.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

ENGINE_DIR = Path(__file__).resolve().parent
REPO_ROOT = ENGINE_DIR.parent.parent
BIN_DIR = ENGINE_DIR / "bin"

# The Go module proxy serves github.com/pulumi/pulumi-kubernetes/provider/v4 only as
# pseudo-versions (the repository's tags are v4.x.y, not provider/v4.x.y). Pulumi publishes
# a build of every commit on its main branch, versioned X.Y.Z-alpha.<commit time in Unix
# seconds> (PyPI spells it X.Y.ZaT); a pseudo-version names the same commit by its time.
PSEUDO_VERSION = re.compile(r"^v?\d+\.\d+\.\d+-(?:0\.)?(\d{14})-([0-9a-f]{12})$")
COMMIT_BUILD = re.compile(r"^(\d+\.\d+\.\d+)a(\d+)$")
# Pseudo-versions whose commit a release was tagged at, by the commit: in pulumi/pulumi-kubernetes,
# `git rev-list -n 1 v4.25.0` is f47bc2d6f1996444d11c12b4ef083b82585f7c07, and the released SDK
# 4.25.0 differs from that commit's build 4.25.0a1768448096 only in the version it names. A
# runner installs the released plugin of that version; the engine build compiles the same commit.
RELEASE_TAGS = {"f47bc2d6f199": "4.25.0"}


class VersionMismatch(Exception):
    """What requirements.txt pins is not what tools/engine builds."""


def release_version(package: str, module_version: str, pinned: str | None) -> str:
    """The version a command built from Go module version `module_version` is released as.

    A tag is its own version. A pseudo-version is the release tagged at its commit
    (RELEASE_TAGS) when `pinned` is that release, or else the commit build that `pinned`
    names, when `pinned` is the build of exactly that commit (same commit time); anything
    else is a mismatch.
    """
    module_version = module_version.lstrip("v")
    pseudo = PSEUDO_VERSION.match(module_version)
    if not pseudo:
        if pinned is not None and pinned != module_version:
            raise VersionMismatch(f"requirements.txt pins {package}=={pinned} but tools/engine builds "
                                  f"{module_version}: make the two agree")
        return module_version
    tag = RELEASE_TAGS.get(pseudo.group(2))
    if tag is not None and pinned == tag:
        return tag
    commit_time = datetime.strptime(pseudo.group(1), "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc)
    build = COMMIT_BUILD.match(pinned or "")
    if not build or int(build.group(2)) != int(commit_time.timestamp()):
        release = f"release {tag} or its " if tag else ""
        raise VersionMismatch(
            f"tools/engine builds {package} from commit {pseudo.group(2)} ({module_version}, "
            f"committed {commit_time:%Y-%m-%d %H:%M:%S} UTC), but requirements.txt pins "
            f"{package}=={pinned}, not that commit's {release}build X.Y.Za{int(commit_time.timestamp())}"
        )
    return f"{build.group(1)}-alpha.{build.group(2)}"


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
    kubernetes_provider_module: str  # the Go module version built
    kubernetes_provider: str  # the release version it is stamped with (see release_version)
    kubernetes: str  # full release, e.g. 1.34.4
    etcd: str
    kwok: str
    ko: str  # the image tools (module oci/): ko, go-containerregistry's crane and registry, cosign
    go_containerregistry: str
    cosign: str


def built_versions() -> Versions:
    """What tools/engine builds; raises VersionMismatch where that is not what requirements.txt pins."""
    pins = requirement_pins()
    provider_module = module_version("kubernetes-provider", "github.com/pulumi/pulumi-kubernetes/provider/v4")
    return Versions(
        pulumi_cli=release_version(
            "pulumi", module_version("pulumi", "github.com/pulumi/pulumi/pkg/v3"), pins.get("pulumi")),
        kubernetes_provider_module=provider_module.lstrip("v"),
        kubernetes_provider=release_version("pulumi-kubernetes", provider_module, pins.get("pulumi-kubernetes")),
        kubernetes=module_version("controlplane", "k8s.io/kubernetes").lstrip("v"),
        etcd=module_version("controlplane", "go.etcd.io/etcd/server/v3").lstrip("v"),
        kwok=module_version("kwok", "sigs.k8s.io/kwok").lstrip("v"),
        ko=module_version("oci", "github.com/google/ko").lstrip("v"),
        go_containerregistry=module_version("oci", "github.com/google/go-containerregistry").lstrip("v"),
        cosign=module_version("oci", "github.com/sigstore/cosign/v3").lstrip("v"),
    )


# The provider plugins the program loads, by the SDK package that pins each (the SDK and its
# plugin share a version: an SDK asks the engine for exactly its own plugin).
PLUGIN_PACKAGES = {"kubernetes": "pulumi-kubernetes", "cloudflare": "pulumi-cloudflare",
                   "docker": "pulumi-docker"}


def plugin_version(pinned: str) -> str:
    """A PyPI version as the engine names the plugin: a commit build 4.25.0a1768448096 is
    4.25.0-alpha.1768448096; a release is its own version."""
    build = COMMIT_BUILD.match(pinned)
    return f"{build.group(1)}-alpha.{build.group(2)}" if build else pinned


def released_versions(requirements: Path | None = None) -> dict[str, str]:
    """The released Pulumi CLI and provider plugins CI installs on a runner, from the same pins
    (requirements.txt) the offline engine build is checked against: `pulumi` is the CLI's
    version, `plugin-<name>` each resource plugin's, `plugins` all of them as `name:version`
    words (the cache key and the input of `pulumi plugin install`)."""
    pins = requirement_pins(requirements)
    missing = [p for p in ("pulumi", *PLUGIN_PACKAGES.values()) if p not in pins]
    if missing:
        raise VersionMismatch(f"requirements.txt pins no version of {', '.join(missing)}")
    out = {"pulumi": pins["pulumi"]}
    for name, package in PLUGIN_PACKAGES.items():
        out[f"plugin-{name}"] = plugin_version(pins[package])
    out["plugins"] = " ".join(f"{name}:{out[f'plugin-{name}']}" for name in PLUGIN_PACKAGES)
    return out


def main(argv: list[str] | None = None) -> int:
    import argparse
    parser = argparse.ArgumentParser(prog="tools/engine/versions.py", description=(
        "The versions of the engine: what tools/engine builds (default), or with --released the "
        "released CLI and plugins CI installs, both from requirements.txt's pins."))
    parser.add_argument("--released", action="store_true",
                        help="the released Pulumi CLI and provider plugin versions")
    parser.add_argument("--github-output", metavar="FILE", type=Path,
                        help="with --released: also append each as `name=value` to FILE")
    args = parser.parse_args(argv)
    try:
        if args.released:
            released = released_versions()
            if args.github_output:
                with args.github_output.open("a") as out:
                    out.writelines(f"{name}={value}\n" for name, value in released.items())
            print(json.dumps(released, indent=2))
            return 0
        built = built_versions().__dict__
    except VersionMismatch as mismatch:
        raise SystemExit(f"versions: {mismatch}") from None
    print(json.dumps({"pins": requirement_pins(), "kubernetes_minor": kubernetes_minor(),
                      "built": built}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
