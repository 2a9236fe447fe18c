"""Check a changed stack config before anything runs: with the program's own config model,
and against the environment's quota, which only a view of every stack of the environment
can judge (the program sees one stack)."""
from __future__ import annotations

from decimal import Decimal

from infra.config.environment import EnvironmentConfig
from infra.config.go_service import GoServiceConfig
from infra.errors import ConfigError
from infra.quantities import quantity_value
from ops.project import Project, StackInfo
from ops.stack_config import PREFIX, validated

__all__ = ["check_quota", "validated"]

SURGE = 1  # each Deployment rolls out with maxSurge 1: one more pod than its maximum


def check_quota(project: Project, info: StackInfo, candidate: GoServiceConfig) -> None:
    """Every Go service of the environment at its maximum replicas, plus a roll-out's surge
    pod each and a canary release's pods, must fit in the environment's ResourceQuota, or the autoscaler (or a roll-out)
    would be refused pods when it needs them most."""
    env = validated(project, project.stack(info.env))
    assert isinstance(env, EnvironmentConfig)
    services: dict[str, GoServiceConfig] = {}
    for other in project.components_of(info.env):
        if other.kind == "go-service":
            services[other.name] = candidate if other.name == info.name else validated(project, other)
    totals = {"pods": Decimal(0), "requests_cpu": Decimal(0), "requests_memory": Decimal(0),
              "limits_cpu": Decimal(0), "limits_memory": Decimal(0)}
    for config in services.values():
        # A canary release runs min_replicas pods of its own beside the stable ones.
        canary = config.scaling.min_replicas if config.canary.release else 0
        pods = config.scaling.max_replicas + SURGE + canary
        totals["pods"] += pods
        for kind in ("cpu", "memory"):
            totals[f"requests_{kind}"] += pods * quantity_value(getattr(config.resources.requests, kind))
            totals[f"limits_{kind}"] += pods * quantity_value(getattr(config.resources.limits, kind))
    quota = env.quota
    problems = []
    for key, total in totals.items():
        allowed = Decimal(quota.pods) if key == "pods" else quantity_value(getattr(quota, key))
        if total > allowed:
            problems.append((
                f"{PREFIX}scaling.max_replicas",
                f"{candidate.scaling.max_replicas} replicas: the Go services of '{info.env}' at their "
                f"maximum (+{SURGE} each during a roll-out, and a canary release's pods) would need {key.replace('_', '.')} "
                f"{_amount(key, total)}, above the environment's quota {_amount(key, allowed)} "
                f"({info.env}: {PREFIX}quota.{key})"))
    if problems:
        raise ConfigError(info.name, problems)


def _amount(key: str, value: Decimal) -> str:
    if key.endswith("memory"):
        return f"{value / 2**20:.0f}Mi"
    return f"{value.normalize():f}"
