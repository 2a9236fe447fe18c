"""A documented command run before what it needs is built ends in one message naming the make
target that builds it (each listed in docs/troubleshooting.md), with exit code 1 and no
traceback: in a copy of the project without the scanners or without the Worker bundles."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from infra.project import PROJECT_ROOT

GUIDE = (PROJECT_ROOT / "docs" / "troubleshooting.md").read_text()
NOT_COPIED = (".git", ".venv", ".toolchain", ".scanners", "node_modules", "build", "bin",
              "__pycache__", ".hypothesis", "tests")


def copy_without(tmp_path: Path, *missing: str) -> Path:
    copy = tmp_path / "project"
    shutil.copytree(PROJECT_ROOT, copy, ignore=shutil.ignore_patterns(*NOT_COPIED, *missing))
    return copy


COMMANDS = {
    "the architecture without the scanners": (
        (), ["offline.architecture", "--check"],
        "error: .scanners/nca is missing: `make scanners` installs it (`make test` does)"),
    "a render without the Worker bundles": (
        ("dist",), ["offline.render", "ai-worker.staging", "--out", "out"],
        "no file workers/ai-worker/dist/worker.js: build the Worker first (make worker)"),
    "the benchmarks without the Worker bundles": (
        ("dist",), ["offline.bench", "--repeat", "1", "ai-worker.staging"],
        "no file workers/ai-worker/dist/worker.js: build the Worker first (make worker)"),
}


@pytest.mark.parametrize("missing, command, message", COMMANDS.values(), ids=COMMANDS.keys())
def test_a_command_without_its_prerequisite_names_the_make_target(tmp_path, missing, command, message):
    copy = copy_without(tmp_path, *missing)
    result = subprocess.run([sys.executable, "-m", *command], cwd=copy, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 1, result.stdout + result.stderr
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert message.removeprefix("error: ").split(": ")[-1] in GUIDE
