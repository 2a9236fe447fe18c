"""A stack's config as the program's own models judge it, read from its stack file with some
keys replaced: what a command checks before it changes a stack file or runs the engine."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from infra.config.loader import RawConfig, load_config
from infra.project import CONFIG_NAMESPACE
from infra.stack_files import load_stack_file, parse, read_stack_config
from infra.stacks import StackName
from ops.project import Project, StackInfo

PREFIX = CONFIG_NAMESPACE + ":"
IMAGE = PREFIX + "image"
CANARY = PREFIX + "canary"
ROLLOUT = PREFIX + "rollout"
BUNDLE = PREFIX + "bundle"


def raw_config(project: Project, stack: str, overrides: Optional[dict[str, Any]] = None) -> RawConfig:
    """The stack's `platform:` config as the program receives it (secrets as placeholders)."""
    config_file = read_stack_config(stack, project.root, overrides)
    values = {}
    for key, value in config_file.config.items():
        if key.startswith(PREFIX):
            values[key[len(PREFIX):]] = json.loads(value) if value[:1] in "{[" else value
    secret = {k[len(PREFIX):] for k in config_file.secret_keys if k.startswith(PREFIX)}
    return RawConfig(values, frozenset(secret))


def validated(project: Project, info: StackInfo, overrides: Optional[dict[str, Any]] = None):
    """The stack's config model with `overrides` applied, or the program's ConfigError."""
    name = StackName(env=info.env, component=info.component)
    return load_config(name, raw_config(project, info.name, overrides))


def image_ref(root: Path, stack: str, config_file: Optional[Path] = None) -> Optional[str]:
    """A Go service's `platform:image.ref` as its stack file (or a candidate file for it, which a
    change previews) writes it; None when the image is built at `up` time."""
    document = parse(config_file.read_text()) if config_file else load_stack_file(stack, root)
    image = (document.get("config") or {}).get(IMAGE)
    return image.get("ref") if isinstance(image, dict) else None


def canary_image(root: Path, stack: str, config_file: Optional[Path] = None) -> Optional[str]:
    """The image of a Go service's canary release (`platform:canary.release.image`) as its stack
    file (or a candidate file for it) writes it; None without a release."""
    document = parse(config_file.read_text()) if config_file else load_stack_file(stack, root)
    canary = (document.get("config") or {}).get(CANARY)
    release = canary.get("release") if isinstance(canary, dict) else None
    return release.get("image") if isinstance(release, dict) else None
