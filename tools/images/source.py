"""Where an image comes from: the source repository, the commit, and the commit's time, which
stamps every timestamp of the image (SOURCE_DATE_EPOCH) so one commit gives one digest."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

UNKNOWN_REPOSITORY = "unknown"


@dataclass(frozen=True)
class Source:
    repository: str  # a URL: org.opencontainers.image.source
    revision: str  # the commit: org.opencontainers.image.revision
    epoch: int  # the commit's time in Unix seconds: SOURCE_DATE_EPOCH

    @property
    def created(self) -> str:
        """The commit time as RFC 3339: org.opencontainers.image.created."""
        return datetime.fromtimestamp(self.epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def git(root: Path, *args: str) -> str | None:
    try:
        result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    except FileNotFoundError:
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def https_url(remote: str) -> str:
    """git@host:owner/repo.git and https://host/owner/repo.git both as https://host/owner/repo."""
    if remote.startswith("git@") and ":" in remote:
        host, path = remote[len("git@"):].split(":", 1)
        remote = f"https://{host}/{path}"
    return remote.removesuffix(".git")


def source_of(root: Path, repository: str | None = None, revision: str | None = None,
              epoch: int | None = None) -> Source:
    """The source of what is checked out at root. Each part is taken from, in order: the
    argument; CI's environment (GITHUB_SERVER_URL/GITHUB_REPOSITORY, GITHUB_SHA,
    SOURCE_DATE_EPOCH); git (the `origin` remote, HEAD and its commit time). Without any, the
    repository is 'unknown' (said on stderr), and a missing commit is an error."""
    env = os.environ
    if repository is None and env.get("GITHUB_REPOSITORY"):
        repository = f"{env.get('GITHUB_SERVER_URL', 'https://github.com')}/{env['GITHUB_REPOSITORY']}"
    if repository is None:
        remote = git(root, "remote", "get-url", "origin")
        repository = https_url(remote) if remote else None
    if repository is None:
        print("images: no source repository known (no GITHUB_REPOSITORY, no git remote 'origin'): "
              f"the images say '{UNKNOWN_REPOSITORY}'; pass --source URL", file=sys.stderr)
        repository = UNKNOWN_REPOSITORY
    revision = revision or env.get("GITHUB_SHA") or git(root, "rev-parse", "HEAD")
    if not revision:
        raise LookupError(f"{root} is not a git checkout: pass --revision and --epoch")
    if epoch is None and env.get("SOURCE_DATE_EPOCH"):
        epoch = int(env["SOURCE_DATE_EPOCH"])
    if epoch is None:
        committed = git(root, "show", "-s", "--format=%ct", revision)
        if not committed:
            raise LookupError(f"no commit time for {revision} in {root}: pass --epoch")
        epoch = int(committed)
    return Source(repository=repository, revision=revision, epoch=epoch)


def uncommitted(root: Path, path: Path) -> bool:
    """Whether path (a service's folder) differs from the commit: its image is then not the
    commit's image."""
    status = git(root, "status", "--porcelain", "--", str(path.relative_to(root)))
    return bool(status)
