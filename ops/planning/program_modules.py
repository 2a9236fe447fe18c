"""Which of the program's modules, and which repository files, each kind of stack uses.

Read from the program's source at one commit: the builder module of each kind (the program's
own dispatch, `infra.program.BUILDERS` and the config model of the kind), then every module of
the project it imports, transitively. A file the program opens by a literal path under the
project root (`PROJECT_ROOT / "tools" / "kubernetes-version"`) is an input of the kinds whose
modules open it. Nothing here is a list kept by hand: a new component module or a new import
is picked up from the code.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Iterable, Optional

from infra.config.environment import EnvironmentConfig
from infra.config.loader import COMPONENT_KINDS
from infra.program import BUILDERS
from ops.planning.git import Tree
from ops.project import ENVIRONMENT

ROOT_NAME = "PROJECT_ROOT"


def builder_module(kind: str) -> Optional[str]:
    """The module that builds stacks of `kind` (None for a kind the program does not know)."""
    model = EnvironmentConfig if kind == ENVIRONMENT else COMPONENT_KINDS.get(kind)
    return BUILDERS.get(model.__name__) if model is not None else None


def module_file(module: str, files: frozenset[str]) -> Optional[str]:
    base = module.replace(".", "/")
    for candidate in (f"{base}.py", f"{base}/__init__.py"):
        if candidate in files:
            return candidate
    return None


def file_module(path: str) -> str:
    """`components/go_service.py` -> `components.go_service`; a package's `__init__.py` -> the package."""
    parts = path[:-len(".py")].split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


@dataclass(frozen=True)
class ModuleFacts:
    imports: frozenset[str]  # project modules this one imports
    reads: frozenset[str]  # repository files it opens by a literal path under the project root


def _literal_path(node: ast.AST) -> Optional[list[str]]:
    """`PROJECT_ROOT / "a" / "b"` -> ["a", "b"]; anything else -> None."""
    if isinstance(node, ast.Name) and node.id == ROOT_NAME:
        return []
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) \
            and isinstance(node.right, ast.Constant) and isinstance(node.right.value, str):
        left = _literal_path(node.left)
        if left is not None:
            return left + [node.right.value]
    return None


def module_facts(module: str, source: str, files: frozenset[str]) -> ModuleFacts:
    tree = ast.parse(source)
    is_package = (module_file(module, files) or "").endswith("__init__.py")
    package = module if is_package else module.rpartition(".")[0]
    imported: set[str] = set()
    reads: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                target = ".".join(anchor + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            imported.add(target)
            # `from components import go_service` imports the submodule.
            imported.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.BinOp):
            parts = _literal_path(node)
            if parts:
                reads.add("/".join(parts))
    known = set()
    for name in imported:
        for candidate in (*_parents(name), name):
            if module_file(candidate, files):
                known.add(candidate)
    return ModuleFacts(frozenset(known - {module}), frozenset(reads))


class ProgramModules:
    """The import graph of the program's Python modules in one tree, read as far as needed."""

    def __init__(self, tree: Tree):
        self.tree = tree
        self.files = tree.files()
        self.facts: dict[str, ModuleFacts] = {}
        self._closures: dict[str, set[str]] = {}

    def _load(self, modules: Iterable[str]) -> None:
        paths = {m: module_file(m, self.files) for m in modules if m not in self.facts}
        sources = self.tree.read([p for p in paths.values() if p])
        for module, path in paths.items():
            content = sources.get(path) if path else None
            try:
                self.facts[module] = module_facts(module, content.decode("utf-8", "replace"), self.files) \
                    if content is not None else ModuleFacts(frozenset(), frozenset())
            except SyntaxError:
                # A module that does not parse imports nothing we can see; the program's own
                # tests fail on it, and a change under infra/ touches every stack anyway.
                self.facts[module] = ModuleFacts(frozenset(), frozenset())

    def closure(self, roots: Iterable[str]) -> set[str]:
        """The modules `roots` import, transitively, with their parent packages; roots included."""
        seen: set[str] = set()
        frontier = {m for m in roots if module_file(m, self.files)}
        while frontier:
            self._load(frontier)  # one read of the tree per level of the import graph
            seen |= frontier
            frontier = {other for module in frontier
                        for other in (*self.facts[module].imports, *_parents(module))
                        if other not in seen and module_file(other, self.files)}
        return seen

    def modules_of_kind(self, kind: str) -> set[str]:
        if kind not in self._closures:
            builder = builder_module(kind)
            self._closures[kind] = self.closure([builder]) if builder else set()
        return self._closures[kind]

    def files_read_by(self, modules: Iterable[str]) -> set[str]:
        return {path for m in modules if m in self.facts for path in self.facts[m].reads}
