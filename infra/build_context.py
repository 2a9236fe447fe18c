"""The files of a Docker build context, as the builder sees them: `.dockerignore` honoured.

The patterns are matched by the Docker SDK for Python (`docker.utils.build.exclude_paths`, its
port of moby's pattern matcher, which `docker build` uses): one pattern a line, `#` starts a
comment, a leading `/` is dropped, `*` and `?` stay within one path element, `**` spans any
number of them, `!` re-includes, the last pattern that matches a file or one of its parent
folders decides, and the Dockerfile and `.dockerignore` are always sent.
"""
from __future__ import annotations

import hashlib
import posixpath
from pathlib import Path

IGNORE_FILE = ".dockerignore"


def read_patterns(context: Path) -> list[str]:
    """The context's .dockerignore patterns, in order, as the Docker SDK reads the file."""
    path = context / IGNORE_FILE
    if not path.is_file():
        return []
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def context_files(context: Path, dockerfile: str = "Dockerfile") -> list[str]:
    """Every file the builder receives, relative to the context, sorted."""
    # Imported here: the SDK loads an HTTP client (0.15 s) that only a stack building an image needs.
    from docker.utils.build import exclude_paths

    included = exclude_paths(str(context), read_patterns(context), posixpath.normpath(dockerfile))
    return sorted(Path(p).as_posix() for p in included if (context / p).is_file())


def context_digest(context: Path, dockerfile: str = "Dockerfile") -> str:
    """A tag that changes exactly when a file the builder receives changes (name or bytes)."""
    digest = hashlib.sha256()
    for relative in context_files(context, dockerfile):
        digest.update(relative.encode() + b"\0" + (context / relative).read_bytes() + b"\0")
    return digest.hexdigest()[:16]
