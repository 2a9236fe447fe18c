"""The project: its root folder and its name, read from `Pulumi.yaml`.

The project's name is also the namespace of its config keys (`platform:kind`): Pulumi names a
project's own config after the project, so both come from the one file.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import pulumi
import yaml

# This checkout: the project whose code this is, and the default project of every function here.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
PROJECT_FILE = "Pulumi.yaml"


@lru_cache(maxsize=None)
def _project_document(root: Path) -> dict[str, Any]:
    return yaml.safe_load((root / PROJECT_FILE).read_text()) or {}


def project_name(root: Path = PROJECT_ROOT) -> str:
    """The `name:` of the project's Pulumi.yaml."""
    return str(_project_document(root)["name"])


# The namespace of the program's config keys: the project's name.
CONFIG_NAMESPACE = project_name()


def project_root() -> Path:
    """The project the program runs for: the folder of the Pulumi.yaml the engine names (the
    CLI and the mock engine both do); outside any engine, this checkout. Stack files and the
    paths stack configs hold (bundles, mounted files, build contexts) are relative to it."""
    given = pulumi.get_root_directory()
    if given and (Path(given) / PROJECT_FILE).is_file():
        return Path(given)
    return PROJECT_ROOT


def engine_value(value: Any) -> str:
    """A config value as the engine hands it to a program: text as is, anything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


def project_config(root: Path = PROJECT_ROOT) -> dict[str, str]:
    """Project-level config values declared in Pulumi.yaml (`config: key: {value: ...}`)."""
    out = {}
    for key, spec in (_project_document(root).get("config") or {}).items():
        if isinstance(spec, dict) and "value" in spec:
            out[key] = engine_value(spec["value"])
    return out
