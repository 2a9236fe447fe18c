"""Read the stack's `platform:` config, pick its model, validate it whole, report every problem.

Config reaches the program as strings (objects JSON-encoded), from the engine or from the mock
engine alike; nothing here registers a resource.
"""
from __future__ import annotations

import json
import typing
from dataclasses import dataclass
from typing import Any, Union

from pydantic import BaseModel, SecretStr, ValidationError
from pulumi.runtime import config as runtime_config

from infra.config.common import InvalidKey
from infra.config.environment import EnvironmentConfig
from infra.config.go_service import GoServiceConfig
from infra.config.worker import WorkerConfig
from infra.errors import ConfigError
from infra.stacks import CONFIG_NAMESPACE as NAMESPACE
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
    merged = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    secret = set(runtime_config.get_config_secret_keys_env())
    prefix = NAMESPACE + ":"
    values, secret_keys = {}, set()
    for full_key, raw in merged.items():
        if not full_key.startswith(prefix):
            continue
        key = full_key[len(prefix):]
        values[key] = _decode(raw)
        if full_key in secret or runtime_config.is_config_secret(full_key):
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
    if kind not in COMPONENT_KINDS:
        reason = ("missing" if kind is None else f"unknown kind '{kind}'") + \
                 f" (one of: {', '.join(COMPONENT_KINDS)})"
        raise ConfigError(str(stack), [(f"{NAMESPACE}:kind", reason)])
    return COMPONENT_KINDS[kind]


def load_config(stack: StackName, raw: RawConfig | None = None) -> StackConfig:
    """Validate the stack's config into its model, or raise one ConfigError listing every problem."""
    raw = raw if raw is not None else read_raw_config()
    model = model_for(stack, raw)
    problems = _secret_hygiene(model, raw)
    try:
        config = model.model_validate(raw.values)
    except ValidationError as error:
        problems += [_describe(e) for e in error.errors()]
        config = None
    if problems:
        raise ConfigError(str(stack), problems)
    return config


def secret_keys_of(model: type[BaseModel]) -> set[str]:
    """Top-level keys whose values are secrets (maps of SecretStr)."""
    return {name for name, field in model.model_fields.items()
            if SecretStr in typing.get_args(field.annotation)}


def _secret_hygiene(model: type[BaseModel], raw: RawConfig) -> list[tuple[str, str]]:
    """Secrets must be Pulumi secrets, and nothing else may be one (it would leak as plain)."""
    secret_fields = secret_keys_of(model)
    problems = []
    for key in sorted(secret_fields & set(raw.values) - raw.secret_keys):
        if raw.values[key]:
            problems.append((f"{NAMESPACE}:{key}", "holds secrets in plain text: set it with "
                                                   "`pulumi config set --secret`"))
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


def _describe(error: dict) -> tuple[str, str]:
    loc = list(error["loc"])
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
    path = ""
    for part in loc:
        if part == "[key]":  # pydantic's marker for a bad mapping key: the key is named already
            continue
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return f"{NAMESPACE}:{path}" if path else f"{NAMESPACE}:", reason


def reveal(secret: SecretStr) -> str:
    """The only place a secret's plain value is read; callers wrap it in pulumi.Output.secret."""
    return secret.get_secret_value()
