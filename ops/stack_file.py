"""Edit a stack file the way an operator would by hand: comments, key order and formatting
kept, only the values that change rewritten."""
from __future__ import annotations

import difflib
import io
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from ops.errors import OpsError


def _yaml() -> YAML:
    yaml = YAML()  # round-trip
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


class StackFile:
    """A `Pulumi.<stack>.yaml` loaded for editing."""

    def __init__(self, path: Path):
        self.path = path
        self.original = path.read_text()
        self.document = _yaml().load(self.original) or CommentedMap()
        if "config" not in self.document or self.document["config"] is None:
            self.document["config"] = CommentedMap()
        if not isinstance(self.document["config"], dict):
            raise OpsError(f"{path.name}: `config:` is not a mapping")

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
        _yaml().dump(self.document, out)
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
