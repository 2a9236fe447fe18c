"""The README's quick start and the runbooks, executed as written.

Every fenced block marked `<!-- e2e -->` in README.md and in docs/runbooks/ (in the order the
runbooks' index lists them) runs, in one shell session, in a copy of the project: the
README's own `make cluster-up` starts the local cluster, and the blocks go on from there.
A documented command that stops working fails this test.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tests.e2e.harness import BIN_DIR, REPO_ROOT, Workspace

MARKED_BLOCK = re.compile(r"<!-- e2e -->\s*\n```(?:sh|bash)\n(?P<body>.*?)```", re.S)
RUNBOOKS = REPO_ROOT / "docs" / "runbooks"
# docs/runbooks/<Alert>.md: what an alert's runbook_url links (tests/test_alert_rules.py holds
# them to the alerts); they diagnose a live incident, so there is nothing to run here.
ALERT_RUNBOOK = re.compile(r"^[A-Z][A-Za-z0-9]*\.md$")


def runbooks_in_order() -> list[Path]:
    """The runbooks in the order their index's table lists them."""
    index = (RUNBOOKS / "README.md").read_text()
    return [RUNBOOKS / name for name in re.findall(r"\]\(([\w-]+\.md)\)", index)]


def marked_blocks(document: Path) -> list[str]:
    return [m["body"] for m in MARKED_BLOCK.finditer(document.read_text())]


def test_every_runbook_is_listed_in_the_index_and_runs_something():
    listed = runbooks_in_order()
    assert sorted(listed) == sorted(p for p in RUNBOOKS.glob("*.md")
                                    if p.name != "README.md" and not ALERT_RUNBOOK.match(p.name))
    assert marked_blocks(REPO_ROOT / "README.md"), "the README's quick start is not marked to run"
    for runbook in listed:
        assert marked_blocks(runbook), f"{runbook.name} has no block marked to run"


def script() -> str:
    parts = ["set -euo pipefail"]
    for document in [REPO_ROOT / "README.md", *runbooks_in_order()]:
        for number, block in enumerate(marked_blocks(document), 1):
            where = f"{document.relative_to(REPO_ROOT)} block {number}"
            parts.append(f"echo '::: {where}' >&2\n{block}")
    return "\n".join(parts) + "\n"


def test_the_quick_start_and_the_runbooks_run_as_written(tmp_path):
    ws = Workspace.create(tmp_path, kubeconfig=Path("/nonexistent"))
    (ws.root / "tools" / "engine" / "bin").symlink_to(BIN_DIR)
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PULUMI_", "KUBECONFIG", "AWS_", "VIRTUAL_ENV", "PYTHONPATH"))}
    env.update({"HOME": str(home), "PULUMI_SKIP_UPDATE_CHECK": "true", "NO_COLOR": "1"})
    try:
        result = subprocess.run(["bash", "-c", script()], cwd=ws.root, env=env, capture_output=True,
                                text=True, timeout=1800)
    finally:
        subprocess.run(["make", "cluster-down"], cwd=ws.root, env=env, capture_output=True, timeout=120)
    if result.returncode != 0:
        failed = [line for line in result.stderr.splitlines() if line.startswith("::: ")]
        raise AssertionError(f"the documented commands failed in {failed[-1][4:] if failed else '?'} "
                             f"(exit {result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-6000:]}")
