"""The built engine is the one requirements.txt and tools/kubernetes-version ask for."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tools.engine import versions


def build_setting(binary: Path, pattern: str) -> str:
    """A value from the build information Go records in a binary (`go version -m`)."""
    info = subprocess.run(["go", "version", "-m", str(binary)], check=True, capture_output=True, text=True).stdout
    match = re.search(pattern, info, re.M)
    assert match, f"no {pattern!r} in the build information of {binary}:\n{info}"
    return match.group(1)


def check_pin(package: str, built: str) -> None:
    pinned = versions.requirement_pins()[package]
    if built == pinned:
        assert versions.skew(package, pinned, built) is None
        assert package not in versions.KNOWN_SKEW or versions.KNOWN_SKEW[package][0] != pinned, (
            f"{package} {pinned} is built now: remove its KNOWN_SKEW entry in tools/engine/versions.py")
        return
    reason = versions.skew(package, pinned, built)
    assert reason, (f"requirements.txt pins {package}=={pinned} but the engine builds {built}: "
                    f"change tools/engine (go.mod) to build {pinned}")
    pytest.xfail(f"{package}: pinned {pinned}, built {built}: {reason}")


def test_pulumi_cli_is_the_pinned_version(toolchain: Path):
    out = subprocess.run([str(toolchain / "pulumi"), "version"], check=True, capture_output=True, text=True)
    built = out.stdout.strip().lstrip("v")
    assert built == versions.built_versions().pulumi_cli
    check_pin("pulumi", built)


def test_python_language_host_is_built_with_the_cli_sdk(toolchain: Path):
    sdk = build_setting(toolchain / "pulumi-language-python", r"^\s+dep\s+github.com/pulumi/pulumi/sdk/v3\s+v(\S+)")
    assert sdk == versions.built_versions().pulumi_cli


def test_kubernetes_provider_is_the_pinned_version(toolchain: Path, tmp_path: Path):
    binary = toolchain / "pulumi-resource-kubernetes"
    module = build_setting(binary, r"^\s+dep\s+github.com/pulumi/pulumi-kubernetes/provider/v4\s+v(\S+)")
    # The version the CLI sees: the provider's own schema, served over the plugin protocol.
    schema = subprocess.run(
        [str(toolchain / "pulumi"), "package", "get-schema", str(binary)], check=True, capture_output=True,
        text=True, env={**os.environ, "PULUMI_HOME": str(tmp_path), "PULUMI_SKIP_UPDATE_CHECK": "true"},
    ).stdout
    served = json.loads(schema)["version"]
    assert module == served == versions.built_versions().kubernetes_provider
    check_pin("pulumi-kubernetes", served)


def test_control_plane_is_the_pinned_kubernetes_minor(toolchain: Path):
    minor = versions.kubernetes_minor()
    for binary in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        out = subprocess.run([str(toolchain / binary), "--version"], check=True, capture_output=True, text=True)
        assert re.fullmatch(rf"Kubernetes v{re.escape(minor)}\.\d+", out.stdout.strip()), out.stdout
