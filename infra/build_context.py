"""The files of a Docker build context, as the builder sees them: `.dockerignore` honoured.

Docker's rules (moby's patternmatcher, what BuildKit and pulumi-docker use): one pattern a
line, `#` starts a comment, paths are relative to the context root (a leading `/` is
dropped), `*` and `?` stay within one path element, `**` spans any number of them, a line
starting with `!` re-includes what it matches, and the last pattern that matches a file or
one of its parent folders decides. The Dockerfile and `.dockerignore` are always sent.
"""
from __future__ import annotations

import hashlib
import posixpath
import re
from pathlib import Path

IGNORE_FILE = ".dockerignore"


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):  # `**/` also matches no folder at all
                out += "(.*/)?"
                i += 1
            else:
                out += ".*"
            continue
        if char == "*":
            out += "[^/]*"
        elif char == "?":
            out += "[^/]"
        elif char == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                out += re.escape(char)
            else:
                body = pattern[i + 1:end]
                out += "[" + ("^" + body[1:] if body.startswith("!") else body) + "]"
                i = end
        elif char == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        else:
            out += re.escape(char)
        i += 1
    return re.compile(out + r"\Z")


def read_patterns(context: Path) -> list[tuple[re.Pattern[str], bool]]:
    """(pattern, excludes) per line of the context's .dockerignore, in order."""
    path = context / IGNORE_FILE
    if not path.is_file():
        return []
    patterns = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        excludes = not line.startswith("!")
        line = line.lstrip("!").strip()
        cleaned = posixpath.normpath(line).lstrip("/")
        if cleaned in ("", "."):
            continue
        patterns.append((_pattern_regex(cleaned), excludes))
    return patterns


def is_excluded(relative: str, patterns: list[tuple[re.Pattern[str], bool]]) -> bool:
    parts = relative.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]  # the path and its parents
    excluded = False
    for regex, excludes in patterns:
        if any(regex.match(candidate) for candidate in candidates):
            excluded = excludes
    return excluded


def context_files(context: Path, dockerfile: str = "Dockerfile") -> list[str]:
    """Every file the builder receives, relative to the context, sorted."""
    patterns = read_patterns(context)
    always = {IGNORE_FILE, posixpath.normpath(dockerfile)}
    files = []
    for path in context.rglob("*"):
        if path.is_file():
            relative = path.relative_to(context).as_posix()
            if relative in always or not is_excluded(relative, patterns):
                files.append(relative)
    return sorted(files)


def context_digest(context: Path, dockerfile: str = "Dockerfile") -> str:
    """A tag that changes exactly when a file the builder receives changes (name or bytes)."""
    digest = hashlib.sha256()
    for relative in context_files(context, dockerfile):
        digest.update(relative.encode() + b"\0" + (context / relative).read_bytes() + b"\0")
    return digest.hexdigest()[:16]
