"""The README's quick start and the runbooks, executed as written.

Every fenced block marked `<!-- e2e -->` in README.md and in docs/runbooks/ (in the order the
runbooks' index lists them) runs, in one shell session, in a copy of the project: the
README's own `make cluster-up` starts the local cluster, and the blocks go on from there.
A documented command that stops working fails this test.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import subprocess
from pathlib import Path
from urllib.parse import urlparse

from tests.e2e.harness import BIN_DIR, REPO_ROOT, Workspace, operator_shell_env

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
    env = operator_shell_env(home)  # its Pulumi login too: not another process's
    try:
        result = subprocess.run(["bash", "-c", script()], cwd=ws.root, env=env, capture_output=True,
                                text=True, timeout=1800)
    finally:
        subprocess.run(["make", "cluster-down"], cwd=ws.root, env=env, capture_output=True, timeout=120)
    if result.returncode != 0:
        failed = [line for line in result.stderr.splitlines() if line.startswith("::: ")]
        raise AssertionError(f"the documented commands failed in {failed[-1][4:] if failed else '?'} "
                             f"(exit {result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-6000:]}")


def test_shells_with_homes_of_their_own_keep_their_own_logins(toolchain: Path, tmp_path: Path):
    """Two operator shells at once (as the suite's processes run this module and
    CONTRIBUTING.md's recipe side by side), each logged in to a folder of its own the way the
    quick start logs in: each still uses its own backend afterwards, and the machine user's
    own Pulumi login is left as it was. The CLI keeps its login under the passwd entry's home
    unless PULUMI_HOME says otherwise: with only $HOME set, the second login was both shells'."""
    machine = Path(pwd.getpwuid(os.getuid()).pw_dir) / ".pulumi" / "credentials.json"
    before = machine.read_bytes() if machine.exists() else None
    shells = []
    for name in ("first", "second"):
        home = tmp_path / name
        state = home / ".pulumi-state"
        state.mkdir(parents=True)
        env = operator_shell_env(home)
        subprocess.run([str(toolchain / "pulumi"), "login", f"file://{state}"], cwd=home, env=env,
                       check=True, capture_output=True, text=True, timeout=120)
        shells.append((home, env, state))
    for home, env, state in shells:
        who = subprocess.run([str(toolchain / "pulumi"), "whoami", "--json"], cwd=home, env=env,
                             check=True, capture_output=True, text=True, timeout=120)
        assert Path(urlparse(json.loads(who.stdout)["url"]).path) == state, (home.name, who.stdout)
    assert (machine.read_bytes() if machine.exists() else None) == before
