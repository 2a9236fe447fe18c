"""A release's progressive delivery: the traffic steps a new version is taken through and the
analysis that must pass between them (`platform rollout STACK`, docs/rollouts.md)."""
from __future__ import annotations

from itertools import pairwise

from pydantic import Field, field_validator

from infra.config.common import ConfigModel, DigestRef, LabelValue, matching

PromLabelName = matching(r"^[a-zA-Z_][a-zA-Z0-9_]*$", "a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)")


class CanaryRelease(ConfigModel):
    """The new version being rolled out: its image and its share of the traffic, written by
    `platform rollout` at each step. Its canary Deployment, Service and Ingress run beside the
    stable ones while it is set; promoted, its image becomes `image.ref` and it goes."""

    image: DigestRef = Field(description="the new version's image, pinned by digest: "
                                         "repo[:tag]@sha256:<64 hex>")
    weight: int = Field(0, ge=0, le=100,
                        description="the new version's share of the ingress traffic, in percent "
                                    "(the ingress controller's canary weight)")


class CanarySteps(ConfigModel):
    """Steps (the new version's share of traffic, in percent) and the analysis between them,
    over `window_seconds`, held to the stack's SLO: what every kind of stack rolls out with."""

    steps: list[int] = Field(
        default_factory=lambda: [10, 50, 100], min_length=2,
        description="the new version's share of traffic at each step, in percent, rising, "
                    "ending at 100 (its promotion)")
    window_seconds: int = Field(120, ge=2, le=3600,
                                description="how long each step runs before its analysis, and "
                                            "the window the analysis measures")
    min_requests: int = Field(100, ge=1, le=10_000_000,
                              description="requests the new version must have served in the "
                                          "window for a verdict (fewer: the rollout holds)")
    max_burn_rate: float = Field(14.4, gt=0, le=1000,
                                 description="the new version fails when its error ratio is "
                                             "above this many times the error budget (14.4: "
                                             "what pages as ErrorBudgetBurnFast)")
    failure_limit: int = Field(0, ge=0, le=100,
                               description="failed analyses tolerated before the rollback "
                                           "(0: the first one rolls back)")
    inconclusive_limit: int = Field(3, ge=1, le=100,
                                    description="inconclusive analyses in a row at one step "
                                                "before the rollout stops, held at that step")
    error_limit: int = Field(4, ge=1, le=100,
                             description="analyses in a row the analysis source (Prometheus; "
                                         "a Worker's: Cloudflare's analytics) cannot answer "
                                         "before the rollback")

    @field_validator("steps")
    @classmethod
    def _rising_to_100(cls, steps: list[int]) -> list[int]:
        for step in steps:
            if not 1 <= step <= 100:
                raise ValueError(f"{step} is not a percentage from 1 to 100")
        if any(b <= a for a, b in pairwise(steps)):
            raise ValueError(f"{steps} must rise step by step")
        if steps[-1] != 100:
            raise ValueError(f"{steps} must end at 100: the last step is the promotion")
        return steps


class Canary(CanarySteps):
    """A Go service's steps and analysis: the new version's own series (`selector`) over
    `window_seconds`, held to the service's SLO."""

    selector: dict[PromLabelName, LabelValue] = Field(
        default_factory=lambda: {"track": "canary"}, min_length=1,
        description="the labels only the new version's series carry")
    release: CanaryRelease | None = Field(
        None, description="the new version being rolled out (none: only the stable version runs)")
