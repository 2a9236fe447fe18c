"""docs/troubleshooting.md covers the program's whole error catalogue: every message the program,
`platform` and the policy pack can stop with, found in the code (each `raise` of an
operator-facing error, each config problem, each policy violation reported, with its text as
written there, a `…` for each value filled in), appears in the guide word for word, beside its
meaning and its fix."""
from __future__ import annotations

import ast
from dataclasses import dataclass

import pytest

from infra.project import PROJECT_ROOT

GUIDE = PROJECT_ROOT / "docs" / "troubleshooting.md"
SOURCES = ("infra", "offline", "ops", "components", "policy")
# The exception classes an operator sees (the program's and `platform`'s): the message is the
# argument at this position.
MESSAGE_ARGUMENT = {"OpsError": 0, "GitFailed": 0, "StackLocked": 0, "PlatformError": 0, "StackFileError": 1,
                    "UnknownStackError": 1, "InvalidKey": 1, "AnalyserMissing": 0}
PLACEHOLDER = "…"


@dataclass(frozen=True)
class Message:
    text: str
    where: str

    def __str__(self) -> str:
        return f"{self.where}: {self.text!r}"


def template(node: ast.AST) -> str | None:
    """The text of a message expression: literal parts kept, each value a `…`."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            parts.append(value.value if isinstance(value, ast.Constant) else PLACEHOLDER)
        return "".join(parts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = template(node.left), template(node.right)
        return (left or PLACEHOLDER) + (right or PLACEHOLDER)
    return None


def _name(call: ast.Call) -> str | None:
    return call.func.id if isinstance(call.func, ast.Name) else (
        call.func.attr if isinstance(call.func, ast.Attribute) else None)


def messages() -> list[Message]:
    """Every operator-facing message in the code."""
    found = []
    for package in SOURCES:
        for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text())
            where = str(path.relative_to(PROJECT_ROOT))
            for node in ast.walk(tree):
                texts = []
                # A policy violation: the message a rule reports to the engine.
                if package == "policy" and isinstance(node, ast.Call) and _name(node) == "report" \
                        and node.args:
                    texts.append(template(node.args[0]))
                if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                    name = _name(node.exc)
                    if name in MESSAGE_ARGUMENT and len(node.exc.args) > MESSAGE_ARGUMENT[name]:
                        texts.append(template(node.exc.args[MESSAGE_ARGUMENT[name]]))
                    elif name == "ValueError" and package == "infra":  # a config model's rule
                        texts += [template(a) for a in node.exc.args[:1]]
                # A config problem: (key, reason) appended to the problems a ConfigError reports.
                if isinstance(node, ast.Call) and _name(node) == "append" and node.args and isinstance(
                        node.func, ast.Attribute) and getattr(node.func.value, "id", "") == "problems":
                    item = node.args[0]
                    if isinstance(item, ast.Tuple) and len(item.elts) == 2:
                        texts.append(template(item.elts[1]))
                    elif isinstance(item, ast.Call) and len(item.args) == 2:  # _key(path, reason)
                        texts.append(template(item.args[1]))
                if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and _name(node.exc) == "ConfigError":
                    problems = node.exc.args[1] if len(node.exc.args) > 1 else None
                    if isinstance(problems, ast.List):
                        texts += [template(t.elts[1]) for t in problems.elts
                                  if isinstance(t, ast.Tuple) and len(t.elts) == 2]
                found += [Message(t, f"{where}:{node.lineno}") for t in texts
                          if t and t.strip(PLACEHOLDER + " :.")]
    return found


def test_the_catalogue_is_found_in_the_code():
    found = messages()
    assert len(found) > 50
    texts = {m.text for m in found}
    assert "no Pulumi CLI: put `pulumi` on PATH, or build it with `make engine`" in texts
    assert any(t.startswith("stack '…' is locked by …") for t in texts)


@pytest.mark.parametrize("message", messages(), ids=str)
def test_every_error_message_is_in_the_troubleshooting_guide(message: Message):
    guide = GUIDE.read_text()
    assert message.text in guide, (f"{message.where} can stop with {message.text!r}, which "
                                   f"{GUIDE.relative_to(PROJECT_ROOT)} does not explain")
