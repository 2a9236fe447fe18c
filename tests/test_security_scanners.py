"""Offline security scanning, part of `make test`: checkov over every rendered stack, gosec over
the Go services, bandit over the Python. Any finding fails; an exception is allowed only with
its reason written next to it (a checkov skip annotation, a `#nosec ... -- reason`, a skip in
tools/scanners/bandit.yaml)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from infra.project import PROJECT_ROOT

from tests.conftest import GO

SCANNERS = PROJECT_ROOT / ".scanners"
CHECKOV = SCANNERS / "checkov" / "bin" / "checkov"
GOSEC = PROJECT_ROOT / "tools" / "engine" / "bin" / "gosec"
GO_MODULES = sorted(p.parent for p in (PROJECT_ROOT / "apps").glob("*/go.mod"))
# Every Python file of the platform outside tests/ (whose asserts and subprocess calls are the
# point of a test).
PYTHON_SOURCES = ["infra", "offline", "components", "ops", "policy", "tools", "contract", "__main__.py"]


def installed(tool: Path) -> Path:
    if not tool.exists():
        pytest.fail(f"{tool.relative_to(PROJECT_ROOT)} is missing: `make scanners` installs it "
                    "(`make test` does it first)")
    return tool


@pytest.fixture(scope="session")
def every_rendered_stack(rendered_projects: dict[Path, Path], tmp_path_factory) -> Path:
    """The renders of every project (the repository and the fixture project) in one folder."""
    folder = tmp_path_factory.mktemp("checkov")
    for root, out in rendered_projects.items():
        shutil.copytree(out, folder / root.name)
    return folder


def test_checkov_fails_no_check_on_any_rendered_stack(every_rendered_stack: Path):
    result = subprocess.run(
        [str(installed(CHECKOV)), "--directory", str(every_rendered_stack), "--framework",
         "kubernetes", "--skip-download", "--output", "json"],
        capture_output=True, text=True, timeout=600)
    report = json.loads(result.stdout)
    summary = report["summary"]
    failed = [f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}"
              for c in report["results"]["failed_checks"]]
    assert failed == [], "\n".join(failed)
    assert summary["passed"] > 0, "checkov judged nothing"
    unexplained = [c["check_id"] for c in report["results"]["skipped_checks"]
                   if not (c.get("check_result") or {}).get("suppress_comment")]
    assert unexplained == [], "checkov skips without a reason"


@pytest.mark.parametrize("module", GO_MODULES, ids=lambda p: p.name)
def test_gosec_finds_nothing_in_the_go_services(module: Path):
    result = subprocess.run(
        [str(installed(GOSEC)), "-fmt", "json", "-exclude-generated", "./..."],
        cwd=module, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PATH": f"{Path(GO).parent}{os.pathsep}{os.environ['PATH']}"})
    report = json.loads(result.stdout)
    issues = [f"{i['rule_id']} {Path(i['file']).relative_to(module)}:{i['line']} {i['details']}"
              for i in report.get("Issues") or []]
    assert issues == [], "\n".join(issues)
    assert not report.get("Golang errors"), report.get("Golang errors")
    assert report["Stats"]["files"] > 0, "gosec scanned nothing"


def test_every_gosec_exception_says_why():
    bare = [f"{path.relative_to(PROJECT_ROOT)}:{n}"
            for module in GO_MODULES for path in module.rglob("*.go")
            for n, line in enumerate(path.read_text().splitlines(), 1)
            if re.search(r"#nosec\b", line) and " -- " not in line.split("#nosec", 1)[1]]
    assert bare == [], "a #nosec needs `-- reason`"


def test_bandit_finds_nothing_in_the_python():
    result = subprocess.run(
        [str(PROJECT_ROOT / ".venv" / "bin" / "bandit"), "--quiet", "--format", "json",
         "--configfile", "tools/scanners/bandit.yaml", "--recursive", *PYTHON_SOURCES],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    report = json.loads(result.stdout)
    issues = [f"{i['filename']}:{i['line_number']} {i['test_id']} {i['issue_text']}"
              for i in report["results"]]
    assert issues == [], "\n".join(issues)
    assert report["metrics"]["_totals"]["loc"] > 0, "bandit scanned nothing"


def test_every_bandit_exception_says_why():
    bare = [f"{path.relative_to(PROJECT_ROOT)}:{n}"
            for source in PYTHON_SOURCES
            for path in ([PROJECT_ROOT / source] if source.endswith(".py")
                         else (PROJECT_ROOT / source).rglob("*.py"))
            for n, line in enumerate(path.read_text().splitlines(), 1)
            if re.search(r"#\s*nosec\b", line) and " -- " not in line.split("nosec", 1)[1]]
    assert bare == [], "a `# nosec` needs `-- reason`"
