"""The engine build tries a Go command again when the module proxy could not be reached,
and only then: a real build error stops it at once with go's message."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tools.engine import build

FAKE_GO = """#!/bin/sh
# Fails with the given stderr for the first FAILURES calls, then prints its arguments.
count=$(cat "{state}" 2>/dev/null || echo 0); echo $((count + 1)) > "{state}"
if [ "$count" -lt {failures} ]; then echo '{error}' >&2; exit 1; fi
echo "$@"
"""


@pytest.fixture
def fake_go(tmp_path, monkeypatch):
    def install(failures: int, error: str) -> Path:
        state = tmp_path / "calls"
        script = tmp_path / "bin" / "go"
        script.parent.mkdir()
        script.write_text(FAKE_GO.format(state=state, failures=failures, error=error))
        script.chmod(0o755)
        monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ['PATH']}")
        monkeypatch.setattr(build.time, "sleep", lambda seconds: None)
        return state
    return install


NETWORK = ("go: github.com/pulumi/pulumi/pkg/v3@v3.260.0: Get \"https://proxy.golang.org/...\": "
           "dial tcp 142.250.0.1:443: i/o timeout")


def test_a_network_error_is_tried_again(fake_go, capsys):
    calls = fake_go(failures=2, error=NETWORK)
    assert build.go(["mod", "download", "-json", "m@v1"], build.ENGINE, capture=True) == "mod download -json m@v1\n"
    assert calls.read_text().strip() == "3"
    assert "network error; trying again (3/3)" in capsys.readouterr().err


def test_the_network_is_given_up_on_after_three_attempts(fake_go):
    calls = fake_go(failures=5, error=NETWORK)
    with pytest.raises(SystemExit, match=r"`build \./x` in tools/engine failed \(exit 1\)"):
        build.go(["build", "./x"], build.ENGINE)
    assert calls.read_text().strip() == "3"


def test_a_build_error_is_not_tried_again(fake_go, capsys):
    calls = fake_go(failures=1, error="./main.go:3:2: undefined: provider.Serve")
    with pytest.raises(SystemExit):
        build.go(["build", "."], build.ENGINE)
    assert calls.read_text().strip() == "1"
    assert "undefined: provider.Serve" in capsys.readouterr().err


def test_every_component_has_its_folder_and_a_row_in_the_readme():
    # tools/engine/README.md's table says what each binary in bin/ is built from; a component
    # is one Go module of ours (go.mod, go.sum, and its glue) under tools/engine/.
    readme = (build.ENGINE / "README.md").read_text()
    rows = [line for line in readme.splitlines() if line.startswith("| `")]
    for component in build.COMPONENTS:
        assert (component.folder / "go.mod").is_file() and (component.folder / "go.sum").is_file(), component.name
        for binary in component.binaries:
            name = binary.split("/")[0] + ("/" if "/" in binary else "")
            assert any(f"`{name}`" in row.split(" | ")[0] for row in rows), f"{binary} has no row in the README"
