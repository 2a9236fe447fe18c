"""Read the stack's `platform:` config, pick its model, validate it whole, report every problem.

Config reaches the program as strings (objects JSON-encoded), from the engine or from the mock
engine alike; nothing here registers a resource.
"""
from __future__ import annotations

import difflib
import json
import re
import typing
from dataclasses import dataclass
from typing import Any, Union

from pydantic import BaseModel, SecretStr, TypeAdapter, ValidationError

from infra.config.common import InvalidKey, Why, model_in, why_of
from infra.config.environment import EnvironmentConfig
from infra.config.go_service import GoServiceConfig
from infra.config.sdk import after_field_validators, after_model_validators, engine_config
from infra.config.worker import WorkerConfig
from infra.errors import ConfigError
from infra.project import CONFIG_NAMESPACE as NAMESPACE
from infra.stacks import StackName

COMPONENT_KINDS: dict[str, type[BaseModel]] = {
    "go-service": GoServiceConfig,
    "cloudflare-worker": WorkerConfig,
}
StackConfig = Union[EnvironmentConfig, GoServiceConfig, WorkerConfig]


@dataclass(frozen=True)
class RawConfig:
    """The stack's keys in our namespace (without the `platform:` prefix)."""

    values: dict[str, Any]
    secret_keys: frozenset[str]


def read_raw_config() -> RawConfig:
    """Every `platform:*` key the engine passed to the program, with which ones are secret."""
    merged, secret = engine_config()
    prefix = NAMESPACE + ":"
    values, secret_keys = {}, set()
    for full_key, raw in merged.items():
        if not full_key.startswith(prefix):
            continue
        key = full_key[len(prefix):]
        values[key] = _decode(raw)
        if full_key in secret:
            secret_keys.add(key)
    return RawConfig(values, frozenset(secret_keys))


def _decode(raw: Any) -> Any:
    """Structured values arrive JSON-encoded; plain strings stay strings."""
    if isinstance(raw, str) and raw[:1] in ("{", "["):
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw
    return raw


def model_for(stack: StackName, raw: RawConfig) -> type[BaseModel]:
    if stack.is_environment:
        return EnvironmentConfig
    kind = raw.values.get("kind")
    if not isinstance(kind, str) or kind not in COMPONENT_KINDS:  # a list or a map is no kind
        reason = ("missing" if kind is None else f"unknown kind '{kind}'") + \
                 f" (one of: {', '.join(COMPONENT_KINDS)})"
        raise ConfigError(str(stack), [(f"{NAMESPACE}:kind", reason)])
    return COMPONENT_KINDS[kind]


def load_config(stack: StackName, raw: RawConfig | None = None) -> StackConfig:
    """Validate the stack's config into its model, or raise one ConfigError listing every problem."""
    raw = raw if raw is not None else read_raw_config()
    model = model_for(stack, raw)
    problems = _secret_hygiene(model, raw)
    config, invalid = validate_whole(model, raw.values)
    problems += invalid
    if problems:
        raise ConfigError(str(stack), problems)
    return config


_PLAIN_KEY = re.compile(r"^[\w.:/-]+$")
Location = tuple  # a key's location below the namespace: field names, list indices, map keys


def validate_whole(model: type[BaseModel], data: Any,
                   at: Location = ()) -> tuple[BaseModel | None, list[tuple[str, str]]]:
    """The validated model, or every problem: field problems and cross-field problems together.

    pydantic runs a model's cross-field checks (`model_validator(mode="after")`) only once every
    field is valid, so one bad field would hide every broken cross-field rule. When validation
    fails, each field is validated on its own (nested models recursively, so their cross-field
    checks run too), and the model's cross-field checks then run on the fields that are valid;
    a check that reads an invalid field is skipped, since its verdict would rest on a value
    the operator has to change anyway.
    """
    try:
        return model.model_validate(data), []
    except ValidationError as error:
        if not isinstance(data, dict):
            return None, [_describe(e, at) for e in error.errors()]
    problems: list[tuple[str, str]] = []
    valid: dict[str, Any] = {}
    for name in sorted(set(data) - set(model.model_fields), key=str):
        closest = closest_key(model, str(name))
        if closest:
            problems.append(_key(at + (name,), f"unknown key (did you mean `{_key(at + closest, '')[0]}`?)"))
        else:
            problems.append(_key(at + (name,), "unknown key"))
    for name, field in model.model_fields.items():
        if name not in data:
            if field.is_required():
                problems.append(_key(at + (name,), "required key is missing"))
            else:
                valid[name] = field.get_default(call_default_factory=True)
            continue
        value, field_problems = _validate_field(model, name, data[name], at + (name,))
        problems += field_problems
        if not field_problems:
            valid[name] = value
    partial = model.model_construct(**valid)
    for name in set(model.model_fields) - set(valid):
        partial.__dict__.pop(name, None)  # reading it raises AttributeError: the check is skipped
    for check in after_model_validators(model):
        try:
            check(partial)
        except AttributeError:  # the check reads a field that is invalid
            continue
        except ValueError as error:
            problems.append(_broken_rule(error, at))
    return None, problems


def key_paths(model: type[BaseModel]) -> list[Location]:
    """Every key a model accepts, nested ones included (`scaling`, `scaling.min_replicas`), in
    the model's order."""
    paths: list[Location] = []
    for name, field in model.model_fields.items():
        paths.append((name,))
        nested = model_in(field.annotation)
        if nested is not None and typing.get_origin(field.annotation) is not list:
            paths += [(name, *sub) for sub in key_paths(nested)]
    return paths


def closest_key(model: type[BaseModel], unknown: str) -> Location | None:
    """The valid key an unknown one most likely meant: the closest by spelling of the keys
    `model` accepts, compared whole and by their last part (`replicass` -> scaling.min_replicas)."""
    def score(path: Location) -> float:
        return max(difflib.SequenceMatcher(None, unknown, ".".join(path)).ratio(),
                   difflib.SequenceMatcher(None, unknown, path[-1]).ratio())

    scored = [(score(path), path) for path in key_paths(model)]
    best = max((s for s, _ in scored), default=0.0)
    return next(path for s, path in scored if s == best) if best >= 0.7 else None


def _validate_field(model: type[BaseModel], name: str, value: Any,
                    at: Location) -> tuple[Any, list[tuple[str, str]]]:
    """One field of `model`: its type and constraints, then the model's validators of it."""
    annotation = model.model_fields[name].annotation
    nested = model_in(annotation)
    if nested is not None and isinstance(value, dict):
        return validate_whole(nested, value, at)
    items = model_in(*typing.get_args(annotation)) if typing.get_origin(annotation) is list else None
    if items is not None and isinstance(value, list):
        results = [validate_whole(items, item, at + (index,)) for index, item in enumerate(value)]
        problems = [problem for _, item_problems in results for problem in item_problems]
        if problems:
            return None, problems
    try:
        value = _field_adapter(model, name).validate_python(value)
        for check in after_field_validators(model, name):
            value = check(value)
    except ValidationError as error:
        why = why_of(model.model_fields[name])
        return None, [_describe(e, at, why) for e in error.errors()]
    except ValueError as error:
        return None, [_broken_rule(error, at)]
    return value, []


def _broken_rule(error: ValueError, at: Location) -> tuple[str, str]:
    """A validator's own error: an InvalidKey names the key below `at` that must change."""
    if isinstance(error, InvalidKey):
        return _key(at + tuple(error.key.split(".")), error.reason)
    return _key(at, str(error))


_ADAPTERS: dict[tuple[type, str], TypeAdapter] = {}


def _field_adapter(model: type[BaseModel], name: str) -> TypeAdapter:
    if (model, name) not in _ADAPTERS:
        field = model.model_fields[name]
        _ADAPTERS[model, name] = TypeAdapter(typing.Annotated[field.annotation, field])
    return _ADAPTERS[model, name]


def secret_keys_of(model: type[BaseModel]) -> set[str]:
    """Top-level keys whose values are secrets (maps of SecretStr)."""
    return {name for name, field in model.model_fields.items()
            if SecretStr in typing.get_args(field.annotation)}


def _secret_hygiene(model: type[BaseModel], raw: RawConfig) -> list[tuple[str, str]]:
    """Secrets must be Pulumi secrets, and nothing else may be one (it would leak as plain)."""
    secret_fields = secret_keys_of(model)
    problems = []
    for key in sorted(secret_fields & set(raw.values) - raw.secret_keys):
        value = raw.values[key]
        # A map of secrets names each entry: that is the key to set again with --secret.
        names = [f"{key}.{name}" for name in sorted(value)] if isinstance(value, dict) else [key]
        for name in names if value else []:
            problems.append((f"{NAMESPACE}:{name}", "is a secret in plain text: set it with "
                             f"`pulumi config set --secret --path '{NAMESPACE}:{name}' <value>`"))
    for key in sorted(secret_fields & set(raw.values)):
        entries = raw.values[key] if isinstance(raw.values[key], dict) else {}
        for name, value in sorted(entries.items()):
            if value in ("", None):
                problems.append((f"{NAMESPACE}:{key}.{name}", "secret is missing (empty): set "
                                 f"it with `pulumi config set --secret --path "
                                 f"'{NAMESPACE}:{key}.{name}' <value>`"))
    for key in sorted(raw.secret_keys - secret_fields):
        problems.append((f"{NAMESPACE}:{key}", "is a secret but not a secret setting "
                                               f"(secrets belong in {' or '.join(sorted(secret_fields)) or 'no key of this stack'})"))
    return problems


LOWER_BOUNDS = frozenset({"greater_than", "greater_than_equal"})
UPPER_BOUNDS = frozenset({"less_than", "less_than_equal"})


def _describe(error: dict, at: Location = (), why: Why | None = None) -> tuple[str, str]:
    loc = list(at) + list(error["loc"])
    reason = error["msg"]
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, InvalidKey):
        loc += cause.key.split(".")
        reason = cause.reason
    elif reason.startswith("Value error, "):
        reason = reason[len("Value error, "):]
    if error["type"] == "extra_forbidden":
        reason = "unknown key"
    elif error["type"] == "missing":
        reason = "required key is missing"
    elif why and (because := why.low if error["type"] in LOWER_BOUNDS else
                  why.high if error["type"] in UPPER_BOUNDS else None):
        reason = f"{reason}: {because}"
    return _key(tuple(loc), reason)


def _key(loc: Location, reason: str) -> tuple[str, str]:
    """The full config key of a location (`platform:scaling.min_replicas`, `callers[0]`)."""
    path = ""
    for part in loc:
        if part == "[key]":  # pydantic's marker for a bad mapping key: the key is named already
            continue
        if isinstance(part, int):
            path += f"[{part}]"
        elif not _PLAIN_KEY.match(part):  # a key with spaces or symbols, quoted so it shows
            path += f"[{json.dumps(part, ensure_ascii=False)}]"
        else:
            path += f".{part}" if path else part
    return f"{NAMESPACE}:{path}" if path else f"{NAMESPACE}:", reason


def reveal(secret: SecretStr) -> str:
    """The only place a secret's plain value is read; callers wrap it in pulumi.Output.secret."""
    return secret.get_secret_value()
