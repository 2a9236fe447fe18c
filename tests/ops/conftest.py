"""Fixtures for the `platform` command's tests: small git repositories made from this project."""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest

from ops.cli import main
from tests.e2e.harness import REPO_ROOT, tracked_files

GIT_IDENTITY = {"GIT_AUTHOR_NAME": "CI test", "GIT_AUTHOR_EMAIL": "ci@example.com",
                "GIT_COMMITTER_NAME": "CI test", "GIT_COMMITTER_EMAIL": "ci@example.com"}


def git(root: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                            env={**os.environ, **GIT_IDENTITY})
    assert result.returncode == 0, f"git {' '.join(args)}: {result.stderr}"
    return result.stdout.strip()


@dataclass
class ProjectRepo:
    """A git repository holding a copy of this project's files, on branch `main`."""

    root: Path

    def write(self, path: str, content: str) -> None:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)

    def read(self, path: str) -> str:
        return (self.root / path).read_text()

    def commit(self, message: str = "change") -> str:
        git(self.root, "add", "-A")
        git(self.root, "commit", "-q", "--allow-empty", "-m", message)
        return git(self.root, "rev-parse", "HEAD")

    def branch(self, name: str) -> None:
        git(self.root, "checkout", "-q", "-b", name)

    def git(self, *args: str) -> str:
        return git(self.root, *args)

    def platform(self, *args: str, stdin: Optional[str] = None) -> tuple[int, str, str]:
        """`platform --project-dir <repo> ARGS` in this process: (exit code, stdout, stderr)."""
        out, err = io.StringIO(), io.StringIO()
        saved = sys.stdin, sys.stdout, sys.stderr
        sys.stdin = io.StringIO(stdin) if stdin is not None else saved[0]
        sys.stdout, sys.stderr = out, err
        try:
            code = main(["--project-dir", str(self.root), *args])
        finally:
            sys.stdin, sys.stdout, sys.stderr = saved
        return code, out.getvalue(), err.getvalue()

    def affected(self, *args: str, stdin: Optional[str] = None) -> dict:
        code, out, err = self.platform("affected", "--json", *args, stdin=stdin)
        assert code == 0, err
        return json.loads(out)


@pytest.fixture(scope="session")
def project_template(tmp_path_factory) -> Path:
    """This project's tracked files (and the Worker bundle, a build output) committed once."""
    root = tmp_path_factory.mktemp("template") / "project"
    for name in tracked_files(REPO_ROOT):
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, target)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "the project as it is")
    return root


@pytest.fixture
def repo(project_template: Path, tmp_path: Path) -> ProjectRepo:
    """A fresh copy of the template repository, on branch `main`."""
    root = tmp_path / "project"
    shutil.copytree(project_template, root, symlinks=True)
    return ProjectRepo(root)
