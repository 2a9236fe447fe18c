"""Generate docs/config.md from the config models, so the documentation cannot drift.

    python -m offline.config_reference > docs/config.md
"""
from __future__ import annotations

import json
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from infra.config.common import model_in
from infra.config.environment import EnvironmentConfig
from infra.config.go_service import GoServiceConfig
from infra.config.loader import NAMESPACE
from infra.config.worker import WorkerConfig
from infra.stack_files import read_stack_config

SECTIONS = [
    ("Environment stacks (`staging`, `production`)", EnvironmentConfig, "staging"),
    ("Go-service stacks (`kind: go-service`)", GoServiceConfig, "api-gateway.staging"),
    ("Worker stacks (`kind: cloudflare-worker`)", WorkerConfig, "ai-worker.staging"),
]


def _type_name(annotation: Any) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin is typing.Literal:
        return " or ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args if a is not type(None)) + " (optional)"
    if origin in (list, dict):
        return f"{origin.__name__}[{', '.join(_type_name(a) for a in args)}]"
    return getattr(annotation, "__name__", str(annotation))


def _default(field) -> str:
    if field.default is not PydanticUndefined:
        return "" if field.default is None else f"`{json.dumps(field.default)}`"
    if field.default_factory is not None:
        value = field.default_factory()
        if isinstance(value, BaseModel):
            return "(see below)"
        return f"`{json.dumps(value)}`"
    return "**required**"


def _example(example: Any, path: list[str]) -> str:
    for part in path:
        if not isinstance(example, dict) or part not in example:
            return ""
        example = example[part]
    if isinstance(example, (dict, list)) and len(json.dumps(example)) > 60:
        return "(see the stack file)"
    return f"`{json.dumps(example)}`"


def rows(model: type[BaseModel], example: Any, prefix: list[str]) -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        path = prefix + [field.alias or name]
        nested = model_in(field.annotation)
        key = f"`{NAMESPACE}:{'.'.join(path)}`"
        type_name = nested.__name__ if nested else _type_name(field.annotation)
        description = (field.description or (nested.__doc__ or "").strip().split("\n")[0])
        out.append(f"| {key} | {type_name} | {_default(field)} | {_example(example, path)} | "
                   f"{description} |")
        if nested:
            out += rows(nested, example, path)
    return out


def generate() -> str:
    lines = ["# Stack config reference", "",
             "Generated from the config models by `python -m offline.config_reference`; a test keeps it",
             "in step. Every key lives in the `platform:` namespace of a `Pulumi.<stack>.yaml`.",
             "Unknown keys are errors. Keys holding secrets must be set with",
             "`pulumi config set --secret` (for one entry of a map: `--path`).", ""]
    for title, model, example_stack in SECTIONS:
        raw = read_stack_config(example_stack).config
        example = {k.split(":", 1)[1]: (json.loads(v) if v[:1] in "{[" else v)
                   for k, v in raw.items() if k.startswith(NAMESPACE + ":")}
        lines += [f"## {title}", "", f"Examples from `Pulumi.{example_stack}.yaml`.", "",
                  "| key | type | default | example | description |",
                  "| --- | --- | --- | --- | --- |"]
        lines += rows(model, example, [])
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(generate())
