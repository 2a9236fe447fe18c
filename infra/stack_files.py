"""Stack files (`Pulumi.<stack>.yaml`): where they are, read the way the Pulumi CLI reads them,
the config the CLI hands the program from them, and edited the way an operator would by hand.

Reading refuses what the CLI would refuse. PyYAML's safe loader is more lenient than the CLI's
YAML reader in ways that matter for config: it keeps the last of two equal keys (the CLI refuses
the file), turns an unquoted 2025-09-01 into a date (the CLI passes the text), builds bytes from
`!!binary`, accepts any hashable key, and expands aliases without bound. Each of these would
either change a stack's config silently or crash the program instead of naming the problem, so
the loader turns them into YAML errors with the line and column.

Encrypted values (`secure: ...`) cannot be decrypted offline: in the config read here they stand
as `[secret]` and their keys are marked secret, exactly as the program would see a decrypted one.

Editing keeps comments, key order and formatting, and rewrites only the values that change.
"""
from __future__ import annotations

import difflib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from yaml.constructor import ConstructorError

from infra.errors import StackFileError
from infra.project import CONFIG_NAMESPACE, PROJECT_ROOT, engine_value, project_config
from infra.secrets import strip_secure_values

PREFIX, SUFFIX = "Pulumi.", ".yaml"


def stack_file(stack: str, root: Path = PROJECT_ROOT) -> Path:
    """The stack file of `stack` (which may not exist)."""
    return root / f"{PREFIX}{stack}{SUFFIX}"


def discover_stacks(root: Path = PROJECT_ROOT) -> list[str]:
    """Every stack that has a stack config file, environment stacks first."""
    names = [p.name[len(PREFIX):-len(SUFFIX)] for p in root.glob(f"{PREFIX}*{SUFFIX}")]
    return sorted(names, key=lambda n: ("." in n, n))


# -- reading, as the CLI does ------------------------------------------------------------------

MAX_DEPTH = 32  # a stack file's config is a few levels deep
MAX_VALUES = 100_000  # after expanding aliases; far above any real stack file
# The tags a config value may carry: YAML's core scalars and collections.
CORE_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("null", "bool", "int", "float", "str", "seq",
                                                 "map")}


class StackFileLoader(yaml.SafeLoader):
    """A safe loader with the CLI's view of a stack file (see the module docstring)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if not isinstance(key, str):
                    raise ConstructorError(None, None, f"the key {key!r} is not a string",
                                           key_node.start_mark)
                if key in seen:
                    raise ConstructorError(None, None, f"the key '{key}' appears twice",
                                           key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _refuse_tag(loader: StackFileLoader, node: yaml.Node) -> Any:
    raise ConstructorError(None, None, f"the tag {node.tag} has no meaning in a stack file",
                           node.start_mark)


# Dates stay the text they were written as, as the CLI passes them.
StackFileLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
for _tag in set(yaml.SafeLoader.yaml_constructors) - CORE_TAGS - {None}:
    StackFileLoader.add_constructor(_tag, _refuse_tag)


class TooLarge(ValueError):
    """A document nesting too deep or growing too large once its aliases are expanded."""


def _measure(value: Any, depth: int, budget: list[int]) -> None:
    budget[0] -= 1
    if budget[0] < 0:
        raise TooLarge(f"holds more than {MAX_VALUES} values once its aliases are expanded")
    if depth > MAX_DEPTH:
        raise TooLarge(f"nests deeper than {MAX_DEPTH} levels")
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for child in children:
        _measure(child, depth + 1, budget)


def parse(text: str) -> Any:
    """The document, or a yaml.YAMLError (with its mark) or TooLarge saying what is wrong."""
    try:
        document = yaml.load(text, Loader=StackFileLoader)  # nosec B506 -- a SafeLoader subclass
    except RecursionError:
        raise TooLarge(f"nests deeper than {MAX_DEPTH} levels") from None
    _measure(document, 0, [MAX_VALUES])
    return document


def load_stack_file(stack: str, root: Path = PROJECT_ROOT) -> dict:
    """The parsed stack config file, or one StackFileError saying what is wrong with it."""
    path = stack_file(stack, root)
    try:
        document = parse(path.read_text()) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise StackFileError(stack, f"{path.name} is not valid YAML{where}: {problem}") from None
    except TooLarge as error:
        raise StackFileError(stack, f"{path.name} {error}") from None
    except UnicodeDecodeError:
        raise StackFileError(stack, f"{path.name} is not UTF-8 text") from None
    if not isinstance(document, dict) or not isinstance(document.get("config") or {}, dict):
        raise StackFileError(stack, f"{path.name} must be a mapping with a `config:` mapping")
    return document


def declares_config(stack: str, root: Path = PROJECT_ROOT) -> bool:
    """Whether the stack file sets any `platform:` key (`pulumi stack init` leaves it with none)."""
    config = load_stack_file(stack, root).get("config") or {}
    return any(str(key).startswith(CONFIG_NAMESPACE + ":") for key in config)


@dataclass(frozen=True)
class StackConfigFile:
    config: dict[str, str]  # "namespace:key" -> value as the engine passes it (JSON for objects)
    secret_keys: list[str]


def read_stack_config(stack: str, root: Path = PROJECT_ROOT,
                      overrides: dict[str, Any] | None = None) -> StackConfigFile:
    """The config the engine would pass for `stack`, optionally with some keys replaced."""
    document = load_stack_file(stack, root)
    values = {**(document.get("config") or {}), **(overrides or {})}
    values = {k: v for k, v in values.items() if v is not None}  # an override of None removes
    config = project_config(root)
    secret_keys = []
    for key, value in values.items():
        plain, secret = strip_secure_values(value)
        config[key] = engine_value(plain)
        if secret:
            secret_keys.append(key)
    return StackConfigFile(config=config, secret_keys=sorted(secret_keys))


# -- editing, as an operator would ---------------------------------------------------------------

def _round_trip() -> YAML:
    yaml = YAML()  # round-trip
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml

class StackFileEditor:
    """A `Pulumi.<stack>.yaml` loaded for editing."""

    def __init__(self, path: Path):
        self.path = path
        self.original = path.read_text()
        self.document = _round_trip().load(self.original) or CommentedMap()
        if "config" not in self.document or self.document["config"] is None:
            self.document["config"] = CommentedMap()
        if not isinstance(self.document["config"], dict):
            raise StackFileError(path.name[len(PREFIX):-len(SUFFIX)],
                                 f"{path.name}: `config:` is not a mapping")

    @property
    def config(self) -> CommentedMap:
        return self.document["config"]

    def plain(self) -> dict[str, Any]:
        """The config as plain Python values."""
        return _plain(self.config)

    def set(self, key: str, path: list[str], value: Any) -> None:
        """Set `key` (e.g. `platform:scaling`) at `path` inside it (e.g. ["min_replicas"])."""
        if not path:
            self.config[key] = _merge(self.config.get(key), value)
            return
        node = self.config.get(key)
        if node is None:
            node = self.config[key] = CommentedMap()
        for part in path[:-1]:
            node = node.setdefault(part, CommentedMap())
        node[path[-1]] = _like(node.get(path[-1]), value)

    def replace_config(self, values: dict[str, Any]) -> None:
        """Make the config exactly `values`: changed keys rewritten in place, absent keys
        removed, new keys appended."""
        for key in [k for k in self.config if k not in values]:
            del self.config[key]
        for key, value in values.items():
            self.config[key] = _merge(self.config.get(key), value)

    def text(self) -> str:
        out = io.StringIO()
        _round_trip().dump(self.document, out)
        return out.getvalue()

    def diff(self) -> str:
        return "".join(difflib.unified_diff(
            self.original.splitlines(True), self.text().splitlines(True),
            fromfile=f"a/{self.path.name}", tofile=f"b/{self.path.name}"))

    def changed(self) -> bool:
        return self.text() != self.original

    def write(self, path: Path | None = None) -> None:
        (path or self.path).write_text(self.text())


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def _like(current: Any, value: Any) -> Any:
    """`value` in the YAML type of the value it replaces: config values come back from the
    engine as strings ("8080"), but the file said 8080."""
    if isinstance(value, str) and current is not None and not isinstance(current, (dict, list)):
        if isinstance(current, bool):
            return {"true": True, "false": False}.get(value.lower(), value)
        if isinstance(current, int):
            try:
                return int(value)
            except ValueError:
                return value
        if isinstance(current, float):
            try:
                return float(value)
            except ValueError:
                return value
    if isinstance(value, int) and not isinstance(value, bool) and isinstance(current, str):
        return value
    return value


def _merge(current: Any, value: Any) -> Any:
    """`value` written over `current`, keeping the nodes (and their comments) that stay equal."""
    if isinstance(value, dict) and isinstance(current, CommentedMap):
        for key in [k for k in current if k not in value]:
            del current[key]
        for key, item in value.items():
            current[key] = _merge(current.get(key), item)
        return current
    if isinstance(value, list) and isinstance(current, CommentedSeq) and len(value) == len(current):
        for index, item in enumerate(value):
            current[index] = _merge(current[index], item)
        return current
    if _plain(current) == value:
        return current
    return _like(current, value)
