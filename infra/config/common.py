"""Building blocks shared by the config models: strict base model and checked scalar types."""
from __future__ import annotations

import re
import typing
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from infra.project import project_root
from infra.quantities import quantity_value


class InvalidKey(ValueError):
    """A cross-field rule broken: names the key (relative to the model) that must change."""

    def __init__(self, key: str, reason: str):
        super().__init__(reason)
        self.key = key
        self.reason = reason


class Why:
    """Why a field's bounds hold, shown beside pydantic's "Input should be greater than or equal
    to ...": `Annotated[int, Field(ge=1024), Why(low="...")]` (`low` for the lower bound, `high`
    for the upper)."""

    def __init__(self, low: str | None = None, high: str | None = None):
        self.low = low
        self.high = high


def why_of(field: Any) -> Why | None:
    """The reasons of a field's bounds, if its type or declaration gives them."""
    return next((m for m in getattr(field, "metadata", []) if isinstance(m, Why)), None)


class ConfigModel(BaseModel):
    """Unknown keys are errors (a typo must not be silently ignored)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def model_in(annotation: Any) -> type[BaseModel] | None:
    """The model a field's type holds (also when optional), or None."""
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def matching(pattern: str, what: str, max_length: int | None = None):
    """A string type that must match `pattern`; the error says what was expected, not the regex."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.match(value) or (max_length is not None and len(value) > max_length):
            raise ValueError(f"'{value}' is not {what}")
        return value

    return Annotated[str, AfterValidator(check)]


DnsLabel = matching(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$",
                    "a DNS label (lower-case letters, digits and '-', 63 at most)")
Hostname = matching(r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$",
                    "a lower-case hostname such as api.example.com", max_length=253)
Subdomain = matching(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$",
                     "a name under the base domain such as api (for api.<base_domain>)", max_length=190)
CloudflareId = matching(r"^[0-9a-f]{32}$", "a Cloudflare id (32 lower-case hex digits)")
EnvVarName = matching(r"^[A-Z_][A-Z0-9_]*$", "an environment variable name (A-Z, 0-9, _)")
LabelValue = matching(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$",
                      "a Kubernetes label value", max_length=63)
LabelKey = matching(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$",
                    "a Kubernetes label key")
DigestRef = matching(r"^[a-z0-9]+([._/:-][a-z0-9]+)*(:[\w][\w.-]{0,127})?@sha256:[0-9a-f]{64}$",
                     "an image pinned by digest (repository[:tag]@sha256:<64 hex digits>)")
UrlPath = matching(r"^/[\w./-]*$", "an absolute URL path such as /healthz")
_TCP_PORTS = "TCP ports run from 1 to 65535"
Port = Annotated[int, Field(ge=1, le=65535), Why(low=_TCP_PORTS, high=_TCP_PORTS)]
UnprivilegedPort = Annotated[int, Field(ge=1024, le=65535), Why(
    low="the pod runs as non-root, and a non-root process cannot listen on a port below 1024",
    high=_TCP_PORTS)]

def require_within(request_key: str, request: str, limit_key: str, limit: str) -> None:
    """A request above its limit could never be scheduled within it: name the request key."""
    if quantity_value(request) > quantity_value(limit):
        raise InvalidKey(request_key, f"{request} exceeds {limit_key} {limit}")


def _check_quantity(value: str) -> str:
    quantity_value(value)
    return value


Quantity = Annotated[str, AfterValidator(_check_quantity)]


def _check_repo_path(value: str) -> str:
    path = Path(value)
    if path.is_absolute() or ".." in path.parts:
        raise ValueError(f"'{value}' must be a path inside the repository, relative to its root")
    return value


RepoPath = Annotated[str, AfterValidator(_check_repo_path)]


def repo_file(value: str) -> Path:
    """A path from a stack's config, in the project the program runs for."""
    return project_root() / value
