"""Stack files parsed the way the Pulumi CLI reads them, refusing what it would refuse.

PyYAML's safe loader is more lenient than the CLI's YAML reader in ways that matter for config:
it keeps the last of two equal keys (the CLI refuses the file), turns an unquoted 2025-09-01 into
a date (the CLI passes the text), builds bytes from `!!binary`, accepts any hashable key, and
expands aliases without bound. Each of these would either change a stack's config silently or
crash the program instead of naming the problem, so this loader turns them into YAML errors
with the line and column.
"""
from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import ConstructorError

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


def load(text: str) -> Any:
    """The document, or a yaml.YAMLError (with its mark) or TooLarge saying what is wrong."""
    try:
        document = yaml.load(text, Loader=StackFileLoader)  # nosec B506 -- a SafeLoader subclass
    except RecursionError:
        raise TooLarge(f"nests deeper than {MAX_DEPTH} levels") from None
    _measure(document, 0, [MAX_VALUES])
    return document
