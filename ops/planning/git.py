"""The project's files as one commit has them, and what changed between two commits.

`platform affected` reads the stack files, the program's modules and the file list of the
commit it judges (not the working folder), so that `--head` may name a commit other than
the one checked out. Every git call runs in the project folder with paths relative to it,
so a project inside a larger repository works the same.
"""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable, Iterable, Optional

from ops.errors import OpsError

# What GitHub sends as the "before" commit of a push that created the branch.
NULL_COMMIT = "0" * 40
# The tree with no file (git's well-known object): diffing against it lists every file as added.
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


@dataclass(frozen=True)
class Change:
    """One changed path, as `git diff --name-status` reports it (A, M, D, R, C, T...)."""

    status: str
    path: str
    old_path: Optional[str] = None  # the path before a rename or copy

    @property
    def paths(self) -> tuple[str, ...]:
        return (self.path,) if self.old_path is None else (self.old_path, self.path)


def parse_name_status(lines: Iterable[str]) -> list[Change]:
    """Changes from `git diff --name-status` lines, or plain paths (one per line: modified)."""
    changes = []
    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) == 1:
            changes.append(Change("M", normalize(fields[0])))
        else:
            changes += _changes(fields, normalize)
    return changes


def _changes(fields: list[str], clean: Callable[[str], str] = str) -> list[Change]:
    """Changes from `--name-status` fields in order: a status, then its path, or its old and
    new path for a rename or copy (R and C); an empty field ends them (the -z output's end)."""
    changes, index = [], 0
    while index < len(fields) and fields[index]:
        status = fields[index]
        if status[:1] in ("R", "C"):
            changes.append(Change(status[0], clean(fields[index + 2]), clean(fields[index + 1])))
            index += 3
        else:
            changes.append(Change(status[0], clean(fields[index + 1])))
            index += 2
    return changes


def normalize(path: str) -> str:
    path = path.strip().replace(os.sep, "/")
    while path.startswith("./"):
        path = path[2:]
    return path


class Tree:
    """The files of the project at one point in time."""

    def files(self) -> frozenset[str]:
        raise NotImplementedError

    def read(self, paths: Iterable[str]) -> dict[str, bytes]:
        """Contents of those of `paths` that exist in the tree."""
        raise NotImplementedError

    def read_text(self, path: str) -> Optional[str]:
        found = self.read([path]).get(path)
        return None if found is None else found.decode("utf-8", errors="replace")

    def is_folder(self, path: str) -> bool:
        prefix = path.rstrip("/") + "/"
        return any(f.startswith(prefix) for f in self.files())


class GitFailed(OpsError):
    """A git command exited non-zero; the message is git's own."""


def _git(root: Path, *args: str, input: Optional[bytes] = None) -> bytes:
    """The one way git is run: in the project folder, output captured, a failure raised."""
    result = subprocess.run(["git", *args], cwd=root, input=input, capture_output=True)
    if result.returncode != 0:
        raise GitFailed(f"git {' '.join(args)}: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout


def changed_files(root: Path, *pathspecs: str) -> list[str]:
    """The files of the working tree at `root` that differ from its index (`git diff`), among
    `pathspecs`."""
    return _git(root, "diff", "--name-only", "--", *pathspecs).decode().split()


@dataclass
class GitTree(Tree):
    """The project folder's files in commit (or tree) `ref`."""

    root: Path
    ref: str
    _contents: dict[str, Optional[bytes]] = field(default_factory=dict, repr=False)

    @cached_property
    def _files(self) -> frozenset[str]:
        listed = _git(self.root, "ls-tree", "-r", "-z", "--name-only", self.ref, "--", ".")
        return frozenset(p for p in listed.decode().split("\0") if p)

    def files(self) -> frozenset[str]:
        return self._files

    def read(self, paths: Iterable[str]) -> dict[str, bytes]:
        wanted = [p for p in dict.fromkeys(paths) if p in self._files and p not in self._contents]
        if wanted:
            # One `cat-file --batch` for all of them: a git process per file adds up.
            request = "".join(f"{self.ref}:./{p}\n" for p in wanted).encode()
            output = _git(self.root, "cat-file", "--batch", input=request)
            position = 0
            for path in wanted:
                header_end = output.index(b"\n", position)
                header = output[position:header_end].split()
                if header[-1] == b"missing":
                    self._contents[path] = None
                    position = header_end + 1
                    continue
                size = int(header[2])
                start = header_end + 1
                self._contents[path] = output[start:start + size]
                position = start + size + 1
        return {p: self._contents[p] for p in paths if self._contents.get(p) is not None}


@dataclass
class FolderTree(Tree):
    """The files of a project folder on disk: what git tracks or would track, or every file
    when the folder is not in a git repository."""

    root: Path

    @cached_property
    def _files(self) -> frozenset[str]:
        if GitRepo.find(self.root) is not None:
            listed = _git(self.root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
            return frozenset(p for p in listed.decode().split("\0") if p and (self.root / p).is_file())
        found = set()
        for folder, subfolders, names in os.walk(self.root):
            subfolders[:] = [s for s in subfolders if s not in (".git", ".venv", "node_modules")]
            for name in names:
                found.add(normalize(os.path.relpath(os.path.join(folder, name), self.root)))
        return frozenset(found)

    def files(self) -> frozenset[str]:
        return self._files

    def read(self, paths: Iterable[str]) -> dict[str, bytes]:
        return {p: (self.root / p).read_bytes() for p in paths if p in self._files}


@dataclass
class GitRepo:
    """The git repository holding the project folder `root`."""

    root: Path

    @classmethod
    def find(cls, root: Path) -> Optional["GitRepo"]:
        try:
            inside = _git(root, "rev-parse", "--is-inside-work-tree").decode().strip()
        except GitFailed:
            return None
        return cls(root) if inside == "true" else None

    @classmethod
    def at(cls, root: Path) -> "GitRepo":
        repo = cls.find(root)
        if repo is None:
            raise OpsError(f"{root} is not in a git repository: comparing --base with --head needs "
                           "the project's git history (or pipe the changed paths on stdin)")
        return repo

    def commit(self, ref: str, option: str) -> str:
        """The commit `ref` names; NULL_COMMIT stands for the empty tree (a branch's first push)."""
        if ref == NULL_COMMIT:
            return EMPTY_TREE
        try:
            commit = _git(self.root, "rev-parse", "--verify", "--quiet", "--end-of-options",
                          f"{ref}^{{commit}}").decode().strip()
        except GitFailed:
            commit = ""
        if not commit:
            raise OpsError(f"{option} '{ref}' is not a commit of the repository at {self.root} "
                           "(a shallow clone may lack it: fetch the history, e.g. "
                           "`git fetch --unshallow`, or check out with fetch-depth: 0)")
        return commit

    def merge_base(self, base: str, head: str) -> str:
        """Where `head` left `base`: a pull request's changes are those since that point."""
        if base == EMPTY_TREE:
            return EMPTY_TREE
        try:
            return _git(self.root, "merge-base", base, head).decode().strip()
        except GitFailed:
            raise OpsError(f"commits {base[:12]} and {head[:12]} share no history: there is no "
                           "change between them to judge") from None

    def diff(self, base: str, head: str) -> list[Change]:
        """What changed from `base` to `head` in the project folder, renames detected."""
        output = _git(self.root, "diff", "--name-status", "-z", "-M", "--relative", base, head, "--")
        return _changes(output.decode().split("\0"))

    def tree(self, ref: str) -> GitTree:
        return GitTree(self.root, ref)
