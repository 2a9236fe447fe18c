"""Which stacks a change touches, derived from the repository itself.

A changed path touches:
- a stack file: that stack; an environment's stack file: that environment and every
  component stack of it;
- a path a stack's config names (a mounted file, the Worker bundle, an image build context:
  every config field of type `RepoPath`, found in the config models), the component's own
  source folder (`apps/<component>/`, `workers/<component>/`), and for a named build output
  (the Worker's `dist/worker.js`, which git does not track) the source folder that builds it
  (the nearest folder above it with a build manifest): that component's stacks;
- a program module a kind of stack imports (`components/*.py`, read from the imports) or a
  file the program opens by a literal path: the stacks of that kind;
- `infra/`, `__main__.py`, `Pulumi.yaml`, `requirements*.txt`: every stack;
- the API contract (`contract/`): the stacks of every workload (a component with a source folder);
- the policy pack (`policy/`, when it has its `PulumiPolicy.yaml`): every stack, since every
  preview and update of every stack runs the whole pack (ops/engine/operation.py), so a new or
  changed rule meets each stack in the pull request that makes it, not at the next deploy;
- anything else (docs, tests, tooling): no stack.
A stack file that is gone is reported as removed: its resources stay until someone tears the
stack down on purpose.
"""
from __future__ import annotations

import collections.abc
import fnmatch
import tempfile
import typing
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

from pydantic import BaseModel

from infra.config.common import RepoPath
from infra.config.environment import EnvironmentConfig
from infra.config.loader import COMPONENT_KINDS
from infra.errors import PlatformError
from infra.project import CONFIG_NAMESPACE
from infra.stack_files import discover_stacks, load_stack_file
from infra.stacks import promotion_order
from ops.planning.git import Change, Tree
from ops.planning.program_modules import ProgramModules, file_module
from ops.project import ENVIRONMENT, Project, StackInfo

# Where a component's source lives, by the repository's layout: apps/<go service>/, workers/<worker>/.
WORKLOAD_FOLDERS = ("apps", "workers")
# A folder holding one of these builds what lies below it (a Worker's dist/, a Go binary).
BUILD_MANIFESTS = ("package.json", "go.mod")
# The program every stack runs, and what installs it.
PROGRAM_FILES = ("__main__.py", "Pulumi.yaml")
PROGRAM_FOLDERS = ("infra/",)
PROGRAM_PATTERNS = ("requirements*.txt",)
# The one API contract every workload implements.
CONTRACT_FOLDER = "contract/"
# The policy pack every preview and update runs (`platform` passes it: ops/engine/operation.py).
POLICY_FOLDER = "policy/"
POLICY_MANIFEST = POLICY_FOLDER + "PulumiPolicy.yaml"
REPO_PATH = RepoPath.__metadata__[0]  # the validator that marks a config field as a repository path


def stack_file_name(path: str) -> Optional[str]:
    """`Pulumi.api-gateway.staging.yaml` -> `api-gateway.staging`; other paths -> None."""
    if "/" in path or not path.startswith("Pulumi.") or not path.endswith(".yaml"):
        return None
    name = path[len("Pulumi."):-len(".yaml")]
    return name or None


# -- what a stack's config names -------------------------------------------------------------


def repo_path_keys(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Key paths of every `RepoPath` field of a config model ("*" for any map key or list item)."""
    for name, info in model.model_fields.items():
        yield from _repo_path_keys(info.annotation, list(info.metadata), prefix + (info.alias or name,))


def _repo_path_keys(annotation: Any, metadata: list, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    if REPO_PATH in metadata:
        yield path
        return
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        yield from _repo_path_keys(args[0], list(args[1:]), path)
    elif isinstance(origin, type) and issubclass(origin, collections.abc.Mapping):
        yield from _repo_path_keys(args[1], [], path + ("*",))
    elif isinstance(origin, type) and issubclass(origin, (list, tuple, set, frozenset)):
        yield from _repo_path_keys(args[0], [], path + ("*",))
    elif args:  # a union: X | None
        for arg in args:
            yield from _repo_path_keys(arg, [], path)
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield from repo_path_keys(annotation, path)


def values_at(value: Any, keys: tuple[str, ...]) -> Iterator[Any]:
    if not keys:
        yield value
        return
    head, rest = keys[0], keys[1:]
    if head == "*":
        items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
        for item in items:
            yield from values_at(item, rest)
    elif isinstance(value, dict) and head in value:
        yield from values_at(value[head], rest)


def named_paths(kind: str, config: dict[str, Any]) -> dict[str, str]:
    """Repository path -> the config key naming it, for every `RepoPath` value in the config."""
    model = EnvironmentConfig if kind == ENVIRONMENT else COMPONENT_KINDS.get(kind)
    if model is None:
        return {}
    found = {}
    for keys in repo_path_keys(model):
        raw = config.get(f"{CONFIG_NAMESPACE}:{keys[0]}")
        for value in values_at(raw, keys[1:]) if raw is not None else ():
            if isinstance(value, str) and value.strip():
                found[_clean(value)] = f"{CONFIG_NAMESPACE}:" + ".".join(keys).replace(".*", "")
    return found


def _clean(path: str) -> str:
    parts = [p for p in path.strip().split("/") if p not in ("", ".")]
    return "/".join(parts)


# -- the stacks of one tree ------------------------------------------------------------------


@dataclass
class StackInputs:
    """A stack of one tree and what it is made of."""

    info: StackInfo
    file: str
    files: dict[str, str] = field(default_factory=dict)  # path -> why it is an input
    folders: dict[str, str] = field(default_factory=dict)  # "folder/" -> why

    def touched_by(self, path: str) -> Optional[str]:
        if path in self.files:
            return self.files[path]
        for folder, why in self.folders.items():
            if path.startswith(folder):
                return why
        return None

    @property
    def source_folders(self) -> list[str]:
        return list(self.folders)


def build_folder(path: str, files: frozenset[str]) -> Optional[str]:
    """The nearest folder above `path` that holds a build manifest (`workers/ai-worker/`)."""
    parts = path.split("/")[:-1]
    while parts:
        folder = "/".join(parts)
        if any(f"{folder}/{manifest}" in files for manifest in BUILD_MANIFESTS):
            return folder + "/"
        parts.pop()
    return None


def _inputs(info: StackInfo, config: dict[str, Any], tree: Tree) -> StackInputs:
    files = tree.files()
    inputs = StackInputs(info=info, file=f"Pulumi.{info.name}.yaml")
    if info.component:
        for root in WORKLOAD_FOLDERS:
            # Named whether or not it exists yet: a service arrives as its folder plus stack files.
            inputs.folders[f"{root}/{info.component}/"] = f"the source folder of {info.component}"
    for path, key in named_paths(info.kind, config).items():
        if tree.is_folder(path):
            inputs.folders.setdefault(path + "/", f"the folder {key} names")
            continue
        inputs.files.setdefault(path, f"named by {key}")
        source = build_folder(path, files) if path not in files else None
        if source:  # a build output, which git does not track: its sources are what changes
            inputs.folders.setdefault(source, f"the source folder of {path} ({key})")
    return inputs


def read_stacks(tree: Tree, strict: bool = True) -> dict[str, StackInputs]:
    """Every stack of the tree, by name, with its inputs.

    The tree's stack files are laid out in a scratch folder so that the program's own stack
    parser reads them. `strict`: a broken stack file is the program's error (the tree being
    judged must be sound); otherwise such a stack is still listed, from its name alone.
    """
    names = [p for p in tree.files() if stack_file_name(p)]
    contents = tree.read(["Pulumi.yaml", *names])
    with tempfile.TemporaryDirectory(prefix="platform-affected-") as scratch:
        root = Path(scratch)
        for path, content in contents.items():
            (root / path).write_bytes(content)
        if "Pulumi.yaml" not in contents:
            (root / "Pulumi.yaml").write_text("name: platform\n")
        project = Project(root)
        if strict:
            infos = project.stacks
        else:
            infos = []
            for name in discover_stacks(root):
                try:
                    infos.append(project.stack(name))
                except PlatformError:
                    infos.append(info_from_name(name))
        stacks = {}
        for info in infos:
            try:
                config = load_stack_file(info.name, root).get("config") or {}
            except PlatformError:
                config = {}
            stacks[info.name] = _inputs(info, config, tree)
    return stacks


def info_from_name(name: str, kind: str = "") -> StackInfo:
    component, _, env = name.rpartition(".")
    return StackInfo(name=name, env=env, component=component or None,
                     kind=ENVIRONMENT if not component else kind)


# -- the result ------------------------------------------------------------------------------


@dataclass
class AffectedStack:
    stack: str
    env: str
    component: Optional[str]
    kind: str
    reasons: list[str] = field(default_factory=list)

    @property
    def is_environment(self) -> bool:
        return self.component is None


@dataclass
class Workload:
    """A component's source folder whose own build and tests a change calls for."""

    folder: str
    kind: str
    components: list[str]


def stack_order(env: str, is_environment: bool, name: str) -> tuple:
    """Environments in promotion order; in the flat list every environment stack comes first."""
    order = promotion_order()
    rank = order.index(env) if env in order else len(order)
    return (not is_environment, rank, name)


@dataclass
class Affected:
    stacks: list[AffectedStack]
    removed: list[AffectedStack]
    workloads: list[Workload]
    python: bool  # whether anything outside the workloads' folders changed (the pytest suite)
    unaffecting: list[str]  # changed paths that touch no stack
    base: Optional[str] = None
    head: Optional[str] = None
    promotion: tuple[str, ...] = ()  # the project's promotion order (the deploy matrices follow it)

    @property
    def names(self) -> list[str]:
        return [s.stack for s in self.stacks]

    def to_dict(self) -> dict[str, Any]:
        return {"base": self.base, "head": self.head,
                "stacks": [asdict(s) for s in self.stacks],
                "removed": [asdict(s) for s in self.removed],
                "workloads": [asdict(w) for w in self.workloads],
                "python": self.python, "unaffecting": self.unaffecting}


# -- the rules -------------------------------------------------------------------------------


def is_program_file(path: str) -> bool:
    return (path in PROGRAM_FILES or path.startswith(PROGRAM_FOLDERS)
            or any(fnmatch.fnmatchcase(path, p) for p in PROGRAM_PATTERNS))


class AffectedStacks:
    """Applies the rules to a list of changes, between a base tree and a head tree."""

    def __init__(self, head: Tree, base: Optional[Tree] = None):
        self.head, self.base = head, base
        self.stacks = read_stacks(head, strict=True)
        self.program = ProgramModules(head)
        self.kind_modules = {kind: self.program.modules_of_kind(kind)
                             for kind in {s.info.kind for s in self.stacks.values()}}
        self.kind_reads = {kind: self.program.files_read_by(mods) for kind, mods in self.kind_modules.items()}
        self._base_program: Optional[ProgramModules] = None
        self.hits: dict[str, list[str]] = {}

    @cached_property
    def base_stacks(self) -> dict[str, StackInputs]:
        """The base's stacks: read only when a stack file is gone, to say what it was."""
        return read_stacks(self.base, strict=False) if self.base is not None else {}

    def _hit(self, stacks: Iterable[StackInputs], reason: str) -> bool:
        found = False
        for stack in stacks:
            reasons = self.hits.setdefault(stack.info.name, [])
            if reason not in reasons:
                reasons.append(reason)
            found = True
        return found

    def _of_kind(self, kinds: Iterable[str]) -> list[StackInputs]:
        wanted = set(kinds)
        return [s for s in self.stacks.values() if s.info.kind in wanted]

    def workloads(self) -> dict[str, Workload]:
        """Source folders of the head's component stacks that exist in the tree, by folder."""
        found: dict[str, Workload] = {}
        for stack in self.stacks.values():
            if not stack.info.component:
                continue
            for folder in stack.source_folders:
                if folder.startswith(tuple(f"{r}/" for r in WORKLOAD_FOLDERS)) and self.head.is_folder(folder):
                    workload = found.setdefault(folder, Workload(folder.rstrip("/"), stack.info.kind, []))
                    if stack.info.component not in workload.components:
                        workload.components.append(stack.info.component)
        return found

    def _modules_for(self, path: str, deleted: bool) -> set[str]:
        """Kinds whose program modules include `path` (at head; a deleted module at base too)."""
        module = file_module(path)
        kinds = {kind for kind, mods in self.kind_modules.items() if module in mods}
        if deleted and self.base is not None:
            if self._base_program is None:
                self._base_program = ProgramModules(self.base)
            kinds |= {kind for kind in self.kind_modules
                      if module in self._base_program.modules_of_kind(kind)}
        return kinds

    def judge(self, path: str, deleted: bool) -> bool:
        """Record the stacks `path` touches; whether it touched any."""
        name = stack_file_name(path)
        if name is not None and name in self.stacks:
            stack = self.stacks[name]
            touched = self._hit([stack], f"{path}: its stack file")
            if stack.info.kind == ENVIRONMENT:
                self._hit([s for s in self.stacks.values()
                           if s.info.component and s.info.env == stack.info.env],
                          f"{path}: the stack file of its environment")
            return touched
        if is_program_file(path):
            return self._hit(self.stacks.values(), f"{path}: the program every stack runs")
        if path.startswith(POLICY_FOLDER) and self._has_policy_pack():
            return self._hit(self.stacks.values(), f"{path}: the policy pack every preview and "
                                                   f"update of every stack runs")
        touched = False
        if path.endswith(".py"):
            kinds = self._modules_for(path, deleted)
            touched |= self._hit(self._of_kind(kinds), f"{path}: a program module its kind uses")
        reading = [kind for kind, reads in self.kind_reads.items() if path in reads]
        touched |= self._hit(self._of_kind(reading), f"{path}: a file the program reads for its kind")
        if path.startswith(CONTRACT_FOLDER):
            workloads = {c for w in self.workloads().values() for c in w.components}
            touched |= self._hit([s for s in self.stacks.values() if s.info.component in workloads],
                                 f"{path}: the API contract its workload implements")
        for stack in self.stacks.values():
            why = stack.touched_by(path)
            if why:
                touched |= self._hit([stack], f"{path}: {why}")
        return touched

    def _has_policy_pack(self) -> bool:
        """The pack is there at head, or was at base (removing it changes what judges every stack)."""
        return POLICY_MANIFEST in self.head.files() or (
            self.base is not None and POLICY_MANIFEST in self.base.files())

    def removed(self, changes: list[Change]) -> list[AffectedStack]:
        gone = {}
        for change in changes:
            for path in change.paths:
                name = stack_file_name(path)
                if name is None or name in self.stacks:
                    continue
                was_deleted = change.status == "D" or (change.old_path == path) or path not in self.head.files()
                if not was_deleted:
                    continue  # e.g. a stack file that sets no platform: keys yet
                if self.base is not None and name not in self.base_stacks:
                    continue  # never was a stack (no platform: keys)
                info = self.base_stacks[name].info if name in self.base_stacks else info_from_name(name)
                gone[name] = AffectedStack(info.name, info.env, info.component, info.kind,
                                           [f"{path}: its stack file was removed"])
        return list(gone.values())

    def run(self, changes: list[Change]) -> Affected:
        unaffecting = []
        for change in changes:
            touched = False
            for path in change.paths:
                deleted = change.status == "D" or path == change.old_path
                touched |= self.judge(path, deleted)
            if not touched:
                unaffecting.append(change.path)
        removed = self.removed(changes)
        removed_names = {r.stack for r in removed}
        unaffecting = [p for p in unaffecting if stack_file_name(p) not in removed_names]
        stacks = [AffectedStack(s.info.name, s.info.env, s.info.component, s.info.kind, self.hits[name])
                  for name, s in self.stacks.items() if name in self.hits]
        stacks.sort(key=lambda s: stack_order(s.env, s.is_environment, s.stack))
        workloads = self.workloads()
        changed_paths = [p for c in changes for p in c.paths]
        contract = any(p.startswith(CONTRACT_FOLDER) for p in changed_paths)
        changed_workloads = [w for folder, w in sorted(workloads.items())
                             if contract or any(p.startswith(folder) for p in changed_paths)]
        python = any(not p.startswith(tuple(workloads)) for p in changed_paths)
        return Affected(stacks=stacks, removed=removed, workloads=changed_workloads, python=python,
                        unaffecting=unaffecting)


def affected_stacks(changes: list[Change], head: Tree, base: Optional[Tree] = None) -> Affected:
    return AffectedStacks(head, base).run(changes)
