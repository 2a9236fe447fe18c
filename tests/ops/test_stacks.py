"""`platform stacks` without a backend: the repository's stacks under a header, and a line that
says why no last update is shown and what to run."""
from __future__ import annotations

import os
import subprocess
import sys

from infra.project import PROJECT_ROOT
from infra.stack_files import discover_stacks
from ops.engine.automation import ENGINE_ROOT


def test_the_engine_toolchain_is_looked_for_in_the_projects_tools_folder():
    # `platform` runs the CLI `make engine` builds when none is on PATH.
    assert ENGINE_ROOT == PROJECT_ROOT / "tools" / "engine"


def test_stacks_shows_a_header_and_says_that_no_backend_is_logged_in(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    env["PULUMI_HOME"] = str(tmp_path)  # a CLI that never logged in
    result = subprocess.run([sys.executable, "-m", "ops", "stacks"], cwd=PROJECT_ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["STACK", "KIND", "ENVIRONMENT", "LAST", "UPDATE"]
    listed = [line.split()[0] for line in lines[1:] if line and not line.startswith(("no ", "the "))]
    assert sorted(listed) == sorted(discover_stacks())
    assert all(line.split()[-1] == "-" for line in lines[1:len(listed) + 1])
    (note,) = [line for line in lines if "not shown" in line]
    assert note.startswith(("no backend is logged in, so the last updates are not shown: "
                            "`pulumi login`", "the last updates are not shown: no Pulumi CLI"))
    assert "Traceback" not in result.stderr
