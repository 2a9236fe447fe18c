"""Config of a Cloudflare Worker component stack (`kind: cloudflare-worker`)."""
from __future__ import annotations

import datetime as dt
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from infra.config.canary import CanarySteps
from infra.config.common import (
    ConfigModel,
    Hostname,
    InvalidKey,
    RepoPath,
    Subdomain,
    matching,
    repo_file,
)
from infra.project import project_root

_BINDING = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
VersionId = matching(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
                     "a Worker version id (UUID)")
_ROUTE = re.compile(r"^(\*\.)?(?P<host>([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63})"
                    r"(?P<path>/[\w./*-]*)$")
_CRON_FIELD = r"[\d*/,\-A-Za-z?LW#]+"
_CRON = re.compile(rf"^{_CRON_FIELD}( {_CRON_FIELD}){{4}}$")
EmailAddress = matching(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$", "an e-mail address")
EdgeErrorSlo = matching(r"^(9[0-9](\.[0-9]{1,2})?)$", "an SLO in percent such as 99.9")


WRANGLER_FILE = "wrangler.toml"


@dataclass(frozen=True)
class RuntimeSettings:
    """The Workers runtime a version runs on: its compatibility date and flags."""

    compatibility_date: dt.date
    compatibility_flags: list[str]


def wrangler_file(bundle: str) -> Path | None:
    """The Worker's wrangler.toml: the nearest one above its bundle, within the project."""
    root = project_root()
    for folder in repo_file(bundle).parents:
        if (folder / WRANGLER_FILE).is_file():
            return folder / WRANGLER_FILE
        if folder == root:
            return None
    return None


def _runtime_settings_of(wrangler: Path) -> RuntimeSettings:
    """The compatibility settings of a wrangler.toml, as wrangler and the local runtime read them."""
    shown = wrangler.relative_to(project_root()).as_posix()
    try:
        settings = tomllib.loads(wrangler.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise InvalidKey("bundle", f"{shown} cannot be read: {error}") from None
    date = settings.get("compatibility_date")
    if isinstance(date, str):
        try:
            date = dt.date.fromisoformat(date)
        except ValueError:
            pass
    if not isinstance(date, dt.date):
        raise InvalidKey("compatibility_date", f"{shown} sets no compatibility_date as a date "
                                               "such as \"2025-09-01\"")
    flags = settings.get("compatibility_flags", [])
    if not isinstance(flags, list) or not all(isinstance(flag, str) for flag in flags):
        raise InvalidKey("compatibility_flags", f"{shown}: compatibility_flags must be a list "
                                                "of strings")
    try:
        _not_in_future(date)
    except ValueError as error:
        raise InvalidKey("compatibility_date", f"{shown}: {error}") from None
    return RuntimeSettings(date, flags)


def _not_in_future(date: dt.date) -> dt.date:
    if date > dt.date.today():
        raise ValueError(f"{date} is in the future")
    return date


def route_host(pattern: str) -> str:
    """The hostname a route pattern matches (without a leading wildcard)."""
    match = _ROUTE.match(pattern)
    if not match:
        raise ValueError(f"'{pattern}' is not a route pattern such as host.example.com/*")
    return match["host"]


class Rollout(ConfigModel):
    """Which version(s) serve traffic. Default: the version built from this bundle, 100%."""

    percentage: int = Field(100, ge=1, le=100,
                            description="share of traffic for the new version (gradual rollout)")
    stable_version_id: VersionId | None = Field(
        None, description="live version keeping the rest of the traffic")
    rollback_to: VersionId | None = Field(
        None, description="serve 100% from this earlier version (rollback)")

    @model_validator(mode="after")
    def _coherent(self) -> "Rollout":
        if self.percentage < 100 and self.stable_version_id is None:
            raise InvalidKey("stable_version_id", "required when percentage is below 100")
        if self.percentage == 100 and self.stable_version_id is not None:
            raise InvalidKey("stable_version_id", "only meaningful when percentage is below 100")
        if self.rollback_to is not None and (self.percentage < 100 or self.stable_version_id):
            raise InvalidKey("rollback_to", "a rollback serves one version: drop percentage "
                                            "and stable_version_id")
        return self


class WorkerCanary(CanarySteps):
    """A Worker's steps (`platform:rollout.percentage` at each) and the analysis between them:
    the new version's invocations in Cloudflare's analytics over `window_seconds`."""

    availability: EdgeErrorSlo | None = Field(
        None, description="the Worker's availability objective in percent, whose error budget "
                          "`max_burn_rate` multiplies (none: notifications.edge_error_slo, else "
                          "99.9)")
    wall_time_p99_ms: int | None = Field(
        None, ge=1, le=900_000, description="the new version fails when the 99th percentile of "
                                            "its invocations' wall time is above this, in ms "
                                            "(none: not checked)")


class Traces(ConfigModel):
    """Workers traces: spans of each sampled invocation and its subrequests."""

    enabled: bool = Field(False, description="record traces")
    head_sampling_rate: float = Field(0.01, ge=0.0, le=1.0,
                                      description="share of requests traced (0..1)")


class Observability(ConfigModel):
    """Workers Logs (console output and invocation logs), traces, and where logs are pushed."""

    head_sampling_rate: float = Field(1.0, ge=0.0, le=1.0,
                                      description="share of requests logged (0..1)")
    invocation_logs: bool = Field(True, description="log each invocation (request, outcome, "
                                                    "duration) beside the Worker's own lines")
    traces: Traces = Field(default_factory=Traces)


class Notifications(ConfigModel):
    """Cloudflare notification policies (Cloudflare sends them, not Prometheus). None can be
    narrowed to one Worker: the edge-error one covers the whole zone, the Logpush one the whole
    account, so exactly one Worker stack per zone declares them."""

    emails: list[EmailAddress] = Field(min_length=1, description="who is notified")
    edge_error_slo: EdgeErrorSlo = Field(
        "99.9", description="SLO of the zone's edge 5xx error-rate alert (Cloudflare's burn "
                            "rate over 1 h and 5 m), e.g. 99.9")


class WorkerConfig(ConfigModel):
    kind: Literal["cloudflare-worker"] = Field(description="selects this model")
    organization: str = Field("organization", min_length=1,
                              description="backend organization holding the environment stack")
    bundle: RepoPath = Field(description="the built ESM bundle to upload, relative to the repo root")
    compatibility_date: dt.date | None = Field(
        None, description="Workers runtime compatibility date, only for a Worker without a "
                          "wrangler.toml above its bundle (with one, it is read from there)")
    compatibility_flags: list[str] | None = Field(
        None, description="Workers runtime compatibility flags, only for a Worker without a "
                          "wrangler.toml above its bundle (with one, they are read from there)")
    vars: dict[str, str] = Field(default_factory=dict, description="plain-text bindings")
    url_vars: dict[str, Subdomain] = Field(
        default_factory=dict, description="plain-text bindings holding https://<subdomain>.<the "
                                          "environment's base domain>: binding -> subdomain")
    secrets: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="secret-text bindings (set with --secret); API_TOKEN is required")
    ai_binding: str | None = Field(None, description="binding name of Workers AI, e.g. AI")
    kv_namespaces: list[str] = Field(default_factory=list,
                                     description="KV namespaces this stack owns, by binding name")
    services: dict[str, str] = Field(default_factory=dict,
                                     description="service bindings: binding name -> Worker name")
    routes: list[str] = Field(default_factory=list,
                              description="zone routes, e.g. ai.example.com/*")
    custom_domains: list[Hostname] = Field(default_factory=list,
                                           description="hostnames served by the Worker alone")
    crons: list[str] = Field(default_factory=list, description="cron triggers (5 fields, UTC)")
    workers_dev: bool = Field(False, description="also serve on the account's workers.dev subdomain")
    rollout: Rollout = Field(default_factory=Rollout)
    canary: WorkerCanary = Field(default_factory=WorkerCanary,
                                 description="`platform rollout`: traffic steps and the analysis "
                                             "between them")
    observability: Observability = Field(default_factory=Observability)
    logpush_destination: SecretStr | None = Field(
        None, description="Logpush destination of the Worker's trace events, credentials "
                          "included (set with --secret), e.g. r2://bucket/path?account-id=...")
    notifications: Notifications | None = Field(
        None, description="notify on the zone's edge errors (and a failing Logpush job of the "
                          "account): zone-wide, so set in one Worker stack per zone")

    @field_validator("bundle")
    @classmethod
    def _bundle_exists(cls, bundle: str) -> str:
        if not repo_file(bundle).is_file():
            raise ValueError(f"no file {bundle}: build the Worker first (make worker)")
        return bundle

    @field_validator("compatibility_date")
    @classmethod
    def _date_not_in_future(cls, date: dt.date | None) -> dt.date | None:
        return None if date is None else _not_in_future(date)

    @field_validator("routes")
    @classmethod
    def _routes_are_patterns(cls, routes: list[str]) -> list[str]:
        for route in routes:
            route_host(route)
        return routes

    @field_validator("crons")
    @classmethod
    def _crons_are_cron(cls, crons: list[str]) -> list[str]:
        for cron in crons:
            if not _CRON.match(cron):
                raise ValueError(f"'{cron}' is not a 5-field cron expression")
        return crons

    @model_validator(mode="after")
    def _runtime_settings_have_one_source(self) -> "WorkerConfig":
        # wrangler.toml is what Cloudflare's tooling and the local runtime read: when the
        # Worker has one, the stack reads its settings from it instead of repeating them.
        wrangler = wrangler_file(self.bundle)
        if wrangler is None:
            if self.compatibility_date is None:
                raise InvalidKey("compatibility_date", "required: the Worker has no "
                                                       f"{WRANGLER_FILE} above its bundle to "
                                                       "read it from")
            return self
        for key in ("compatibility_date", "compatibility_flags"):
            if getattr(self, key) is not None:
                raise InvalidKey(key, f"is read from {wrangler.relative_to(project_root())}, the "
                                      "one place it is set: remove it from the stack file")
        _runtime_settings_of(wrangler)
        return self

    @property
    def runtime(self) -> RuntimeSettings:
        """The compatibility settings the Worker's versions run with."""
        wrangler = wrangler_file(self.bundle)
        if wrangler is not None:
            return _runtime_settings_of(wrangler)
        return RuntimeSettings(self.compatibility_date, list(self.compatibility_flags or []))

    @model_validator(mode="after")
    def _api_token_required(self) -> "WorkerConfig":
        # The Worker fails closed: without this secret it refuses every request (503).
        if "API_TOKEN" not in self.secrets:
            raise InvalidKey("secrets.API_TOKEN", "required (set it with pulumi config set "
                                                  "--secret --path 'platform:secrets.API_TOKEN'): "
                                                  "without it the Worker refuses every request")
        return self

    @model_validator(mode="after")
    def _bindings_unique(self) -> "WorkerConfig":
        seen: dict[str, str] = {}
        groups = {"vars": list(self.vars), "url_vars": list(self.url_vars),
                  "secrets": list(self.secrets),
                  "kv_namespaces": self.kv_namespaces, "services": list(self.services),
                  "ai_binding": [self.ai_binding] if self.ai_binding else []}
        for group, names in groups.items():
            for name in names:
                if not _BINDING.match(name):
                    raise InvalidKey(group, f"'{name}' is not a valid binding name")
                if name in seen:
                    raise InvalidKey(group, f"binding '{name}' is also declared in {seen[name]}")
                seen[name] = group
        if not self.routes and not self.custom_domains and not self.workers_dev:
            raise InvalidKey("routes", "the Worker would be unreachable: declare routes, "
                                       "custom_domains or workers_dev")
        return self

    @property
    def availability(self) -> str:
        """The availability objective (percent) a rollout's analysis holds the new version to:
        `canary.availability`, else the zone's edge-error SLO, else 99.9."""
        if self.canary.availability is not None:
            return self.canary.availability
        return self.notifications.edge_error_slo if self.notifications else "99.9"

    @property
    def main_module(self) -> str:
        return repo_file(self.bundle).name
