"""CONTRIBUTING.md's steps are the ones the project runs: the blocks marked to run (adding a Go
service and a Worker) are run as written by tests/e2e/test_contributing.py; of the others, every
`make` target named is a target of the Makefile, every `python -m` module exists and is
runnable, every test pointed at exists, and every file and folder named is in the repository
(or made by the marked blocks)."""
from __future__ import annotations

import importlib.util
import re
import shlex

import pytest

from infra.project import PROJECT_ROOT

DOCUMENT = PROJECT_ROOT / "CONTRIBUTING.md"
BLOCK = re.compile(r"(?P<marker><!-- contributing -->\s*\n)?```sh\n(?P<body>.*?)```", re.S)
RECIPE_TEST = PROJECT_ROOT / "tests" / "e2e" / "test_contributing.py"


def marked_blocks() -> list[str]:
    """The blocks tests/e2e/test_contributing.py runs, in order."""
    return [b["body"] for b in BLOCK.finditer(DOCUMENT.read_text()) if b["marker"]]


def commands(marked: bool = False) -> list[list[str]]:
    """The commands of the blocks (of the marked ones too with `marked`: those run for real)."""
    found = []
    for block in BLOCK.finditer(DOCUMENT.read_text()):
        if block["marker"] and not marked:
            continue
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
    shown = [" ".join(c) for c in commands(marked=True)]
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
        assert all((PROJECT_ROOT / a).exists() for a in command[2:] if not a.startswith("-"))
    else:
        pytest.fail(f"CONTRIBUTING.md runs {command[0]!r}, which this test does not know")


def test_adding_a_service_and_a_worker_is_run_as_written():
    blocks = marked_blocks()
    recipe = "\n".join(blocks)
    for step in ("cp -r tests/fixtures/minimal-project/apps/billing apps/billing-api",
                 "cp -r tests/fixtures/minimal-project/workers/search workers/search-worker",
                 "make worker", "pulumi config set --secret", "--snapshot-update",
                 "git add --intent-to-add tests/__snapshots__"):
        assert step in recipe, step
    assert "marked_blocks" in RECIPE_TEST.read_text()  # the end-to-end test reads these blocks


def made_by_the_recipe() -> list[str]:
    """The folders the marked blocks copy a template to."""
    return re.findall(r"^cp -r \S+ (\S+)$", "\n".join(marked_blocks()), re.M)


def test_every_file_it_names_is_in_the_repository():
    named = re.findall(r"`((?:apps|workers|policy|tests|infra|components|docs|ops)/[\w./-]+)`",
                       DOCUMENT.read_text())
    assert named
    for path in named:
        if "<" in path or path.startswith(tuple(made_by_the_recipe())):
            continue
        assert (PROJECT_ROOT / path.rstrip("/")).exists(), f"CONTRIBUTING.md names {path}, which is not here"
