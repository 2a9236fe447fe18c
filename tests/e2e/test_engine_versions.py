"""The built engine is the one requirements.txt and tools/kubernetes-version ask for."""

from __future__ import annotations

import json
import os
import re
import subprocess
from importlib import metadata
from pathlib import Path

import pulumi_kubernetes

from tools.engine import versions


def build_setting(binary: Path, pattern: str) -> str:
    """A value from the build information Go records in a binary (`go version -m`)."""
    info = subprocess.run(["go", "version", "-m", str(binary)], check=True, capture_output=True, text=True).stdout
    match = re.search(pattern, info, re.M)
    assert match, f"no {pattern!r} in the build information of {binary}:\n{info}"
    return match.group(1)


def test_pulumi_cli_is_the_pinned_version(toolchain: Path):
    out = subprocess.run([str(toolchain / "pulumi"), "version"], check=True, capture_output=True, text=True)
    built = out.stdout.strip().lstrip("v")
    assert built == versions.built_versions().pulumi_cli == versions.requirement_pins()["pulumi"]


def test_python_language_host_is_built_with_the_cli_sdk(toolchain: Path):
    sdk = build_setting(toolchain / "pulumi-language-python", r"^\s+dep\s+github.com/pulumi/pulumi/sdk/v3\s+v(\S+)")
    assert sdk == versions.built_versions().pulumi_cli


def test_kubernetes_provider_is_the_pinned_version(toolchain: Path, tmp_path: Path):
    binary = toolchain / "pulumi-resource-kubernetes"
    module = build_setting(binary, r"^\s+dep\s+github.com/pulumi/pulumi-kubernetes/provider/v4\s+v(\S+)")
    built = versions.built_versions()
    assert module == built.kubernetes_provider_module
    # The version the CLI sees: the provider's own schema, served over the plugin protocol.
    schema = subprocess.run(
        [str(toolchain / "pulumi"), "package", "get-schema", str(binary)], check=True, capture_output=True,
        text=True, env={**os.environ, "PULUMI_HOME": str(tmp_path), "PULUMI_SKIP_UPDATE_CHECK": "true"},
    ).stdout
    served = json.loads(schema)["version"]
    # ... equals the plugin version the pinned Python SDK asks the CLI for.
    sdk_plugin = json.loads(Path(pulumi_kubernetes.__file__).with_name("pulumi-plugin.json").read_text())
    assert served == built.kubernetes_provider == sdk_plugin["version"]
    assert metadata.version("pulumi-kubernetes") == versions.requirement_pins()["pulumi-kubernetes"]


def test_control_plane_is_the_pinned_kubernetes_minor(toolchain: Path):
    minor = versions.kubernetes_minor()
    for binary in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        out = subprocess.run([str(toolchain / binary), "--version"], check=True, capture_output=True, text=True)
        assert re.fullmatch(rf"Kubernetes v{re.escape(minor)}\.\d+", out.stdout.strip()), out.stdout
