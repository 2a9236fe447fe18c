"""`make test` runs the workloads' static checks: go vet and gofmt on the gateway, tsc on the
Worker. They cost seconds and catch what the tests do not exercise."""
from __future__ import annotations

import subprocess

from infra.stacks import PROJECT_ROOT


def make_test_commands() -> str:
    """What `make test` would run, recursive makes included, without running it."""
    result = subprocess.run(["make", "-n", "test"], cwd=PROJECT_ROOT, capture_output=True,
                            text=True, timeout=60, check=True)
    return result.stdout


def test_make_test_vets_and_format_checks_the_gateway():
    commands = make_test_commands()
    assert "go vet ./..." in commands
    assert "gofmt\" -l ." in commands


def test_make_test_type_checks_the_worker():
    commands = make_test_commands()
    assert "npm run --silent typecheck" in commands
    assert '"typecheck": "tsc --noEmit"' in (PROJECT_ROOT / "workers/ai-worker/package.json").read_text()
