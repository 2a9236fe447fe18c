"""Where an image comes from: its repository, and whether an environment's allowed registries
(`platform:images.registries`, each a registry host[:port][/path]) hold it. Shared by the pack's
registry rule and by the signature check `platform preview`/`up` make before the engine runs."""
from __future__ import annotations

import re
from collections.abc import Iterable

DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def is_pinned(image: str) -> bool:
    """Pinned by digest: `repository[:tag]@sha256:<64 hex digits>`."""
    return bool(DIGEST.search(image))


def repository_of(image: str) -> str:
    """`registry.example.com/platform/api-gateway` of `…/api-gateway:v1@sha256:…`."""
    name = image.split("@", 1)[0]
    head, _, last = name.rpartition("/")
    if ":" in last:  # a tag; a colon before the last slash is the registry's port
        last = last.split(":", 1)[0]
    return f"{head}/{last}" if head else last


def allowed_by(image: str, registries: Iterable[str]) -> bool:
    """Whether the image's repository is one of `registries` or under one of them (by whole
    path segments: `registry.example.com/platform` does not allow `…/platform-other/x`)."""
    repository = repository_of(image)
    return any(repository == prefix or repository.startswith(prefix.rstrip("/") + "/")
               for prefix in registries)
