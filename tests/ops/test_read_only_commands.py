"""Previews and drift checks only read: they never create a stack in the backend. CI runs them
with read-only state identities (SECURITY.md), and a stack that a pull request merely proposes
must not be left behind by its preview. A stack that is not in the backend is refused with one
message naming it; the engine is never asked to make it.

The backend is a self-managed one in a temporary folder, read by `platform` directly; the Pulumi
CLI is a stand-in that records every call, so a test sees exactly what the engine was asked.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.project import PROJECT_ROOT

STAND_IN = """#!/bin/sh
# A stand-in for the Pulumi CLI: answers `version`, records and refuses anything else.
echo "$*" >> "{log}"
[ "$1" = version ] && echo v3.260.0 && exit 0
echo "stand-in: not run" >&2
exit 1
"""


@pytest.fixture
def backend(tmp_path: Path) -> dict[str, Path]:
    state = tmp_path / "state"
    state.mkdir()
    bin_dir, log = tmp_path / "bin", tmp_path / "cli-calls.log"
    bin_dir.mkdir()
    (bin_dir / "pulumi").write_text(STAND_IN.format(log=log))
    (bin_dir / "pulumi").chmod(0o755)
    log.touch()
    return {"state": state, "bin": bin_dir, "log": log}


def deployed(state: Path, stack: str) -> None:
    """`stack` in the backend as the CLI leaves an environment stack after its first update."""
    checkpoint = state / ".pulumi" / "stacks" / "platform" / f"{stack}.json"
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    checkpoint.write_text(json.dumps({"version": 3, "checkpoint": {"stack": stack, "latest": {
        "manifest": {}, "resources": [{"urn": f"urn:pulumi:{stack}::platform::pulumi:pulumi:Stack::platform-{stack}",
                                       "type": "pulumi:pulumi:Stack"}]}}}))


def platform(backend: dict[str, Path], *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PULUMI_BACKEND_URL": backend["state"].as_uri(),
           "PULUMI_CONFIG_PASSPHRASE": "unused", "PATH": f"{backend['bin']}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run([sys.executable, "-m", "ops", *args], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def stacks_in(state: Path) -> list[str]:
    return sorted(p.name for p in state.rglob("*.json*"))


def engine_calls(backend: dict[str, Path]) -> list[str]:
    return [line for line in backend["log"].read_text().splitlines() if line != "version"]


@pytest.mark.parametrize("stack, already", [("staging", []), ("api-gateway.staging", ["staging"])],
                         ids=["an environment stack", "a component whose environment is deployed"])
def test_a_preview_of_a_stack_not_in_the_backend_is_refused_and_creates_nothing(backend, stack, already):
    for name in already:
        deployed(backend["state"], name)
    before = stacks_in(backend["state"])
    result = platform(backend, "preview", stack)
    assert result.returncode == 1
    assert f"error: stack '{stack}' is not in the backend ({backend['state'].as_uri()}): a preview never " \
           f"creates a stack; its first `platform up {stack}` does" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert engine_calls(backend) == []  # no `stack init`, no `stack select --create`
    assert stacks_in(backend["state"]) == before


def test_the_json_preview_of_a_stack_not_in_the_backend_says_it_is_new_and_creates_nothing(backend):
    # What a pull request's comment and a deploy's approval are made from: a new stack blocks
    # neither, and is never read as "no changes".
    result = platform(backend, "preview", "staging", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["stack"] == "staging" and report["new_stack"] is True and report["failed"] is False
    assert report["warnings"] == [f"stack 'staging' is not in the backend ({backend['state'].as_uri()}): "
                                  "a preview never creates a stack; its first `platform up staging` does"]
    assert engine_calls(backend) == [] and stacks_in(backend["state"]) == []


def test_the_json_of_a_preview_refused_for_another_reason_is_a_failed_preview_with_it(backend):
    result = platform(backend, "preview", "api-gateway.staging", "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["failed"] is True and "new_stack" not in report
    assert report["errors"] == ["stack 'api-gateway.staging': its environment stack 'staging' has never been "
                                "deployed; deploy it first: `platform up staging`"]
    assert stacks_in(backend["state"]) == []


def test_a_drift_check_of_a_stack_not_in_the_backend_is_refused_and_creates_nothing(backend):
    result = platform(backend, "drift", "staging")
    assert result.returncode == 1
    assert "error: stack 'staging' has never been deployed: it is not in the backend" in result.stderr
    assert engine_calls(backend) == [] and stacks_in(backend["state"]) == []

