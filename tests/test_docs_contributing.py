"""CONTRIBUTING.md's steps are the ones the project runs: every `make` target it names is a
target of the Makefile, every `python -m` module it runs exists and is runnable, every test it
points at exists, and every file and folder it names is in the repository."""
from __future__ import annotations

import importlib.util
import re
import shlex

import pytest

from infra.stacks import PROJECT_ROOT

DOCUMENT = PROJECT_ROOT / "CONTRIBUTING.md"
BLOCK = re.compile(r"```sh\n(?P<body>.*?)```", re.S)


def commands() -> list[list[str]]:
    found = []
    for block in BLOCK.finditer(DOCUMENT.read_text()):
        for line in block["body"].splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                found.append(shlex.split(line))
    return found


def make_targets() -> set[str]:
    text = "".join(p.read_text() for p in [PROJECT_ROOT / "Makefile", *PROJECT_ROOT.glob("tools/*/*.mk")])
    return set(re.findall(r"^([a-zA-Z0-9_-]+):", text, re.M))


def test_the_guide_shows_the_loop_and_each_kind_of_change():
    text = DOCUMENT.read_text()
    for heading in ("## The loop", "## Adding a Go service or a Worker", "## Adding a policy rule",
                    "## Adding an alert", "## Conventions"):
        assert heading in text
    shown = [" ".join(c) for c in commands()]
    for command in ("make test", "make e2e", "make dev",
                    ".venv/bin/python -m pytest tests/test_stack_graphs.py --snapshot-update"):
        assert command in shown, command


@pytest.mark.parametrize("command", commands(), ids=" ".join)
def test_every_command_is_one_the_project_has(command):
    if command[0] == "make":
        assert set(command[1:]) <= make_targets(), f"no Makefile target {command[1:]}"
    elif command[0] == ".venv/bin/python" and command[1] == "-m":
        module = command[2]
        if module == "pytest":
            for path in (a for a in command[3:] if not a.startswith("-")):
                assert (PROJECT_ROOT / path).exists(), f"no {path}"
        else:
            spec = importlib.util.find_spec(module)
            assert spec is not None, f"no module {module}"
            source = (PROJECT_ROOT / spec.origin).read_text()
            assert '__name__ == "__main__"' in source, f"{module} cannot be run with -m"
        if ">" in command:
            assert (PROJECT_ROOT / command[command.index(">") + 1]).is_file()
    elif command[0] == "git":
        assert all((PROJECT_ROOT / a).exists() for a in command[2:])
    else:
        pytest.fail(f"CONTRIBUTING.md runs {command[0]!r}, which this test does not know")


def test_every_file_it_names_is_in_the_repository():
    named = re.findall(r"`((?:apps|workers|policy|tests|infra|components|docs|ops)/[\w./-]+)`",
                       DOCUMENT.read_text())
    assert named
    for path in named:
        if "<" in path:
            continue
        assert (PROJECT_ROOT / path.rstrip("/")).exists(), f"CONTRIBUTING.md names {path}, which is not here"
