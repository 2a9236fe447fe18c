"""Read `Pulumi.yaml` and `Pulumi.<stack>.yaml` the way the CLI hands config to the program.

Encrypted values (`secure: ...`) cannot be decrypted offline: they stand as `[secret]` and
their keys are marked secret, exactly as the program would see a decrypted secret.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from infra.stacks import PROJECT_ROOT, load_stack_file

SECRET_PLACEHOLDER = "[secret]"  # nosec B105 -- what stands in for a secret, not one


@dataclass(frozen=True)
class StackConfigFile:
    config: dict[str, str]  # "namespace:key" -> value as the engine passes it (JSON for objects)
    secret_keys: list[str]


def _strip_secure(value: Any) -> tuple[Any, bool]:
    """Replace every `{secure: ...}` with the placeholder; report whether any was found."""
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            # An empty ciphertext is a secret that was never set: keep it empty so the
            # program reports it missing, as it would an empty decrypted value.
            return (SECRET_PLACEHOLDER if value["secure"] else ""), True
        found = False
        out = {}
        for k, v in value.items():
            out[k], inner = _strip_secure(v)
            found = found or inner
        return out, found
    if isinstance(value, list):
        pairs = [_strip_secure(v) for v in value]
        return [p[0] for p in pairs], any(p[1] for p in pairs)
    return value, False


def _engine_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


def project_config(root: Path = PROJECT_ROOT) -> dict[str, str]:
    """Project-level config values declared in Pulumi.yaml (`config: key: {value: ...}`)."""
    project = yaml.safe_load((root / "Pulumi.yaml").read_text()) or {}
    out = {}
    for key, spec in (project.get("config") or {}).items():
        if isinstance(spec, dict) and "value" in spec:
            out[key] = _engine_value(spec["value"])
    return out


def read_stack_config(stack: str, root: Path = PROJECT_ROOT,
                      overrides: dict[str, Any] | None = None) -> StackConfigFile:
    """The config the engine would pass for `stack`, optionally with some keys replaced."""
    document = load_stack_file(stack, root)
    values = {**(document.get("config") or {}), **(overrides or {})}
    values = {k: v for k, v in values.items() if v is not None}  # an override of None removes
    config = project_config(root)
    secret_keys = []
    for key, value in values.items():
        plain, secret = _strip_secure(value)
        config[key] = _engine_value(plain)
        if secret:
            secret_keys.append(key)
    return StackConfigFile(config=config, secret_keys=sorted(secret_keys))
