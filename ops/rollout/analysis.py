"""One analysis of a release's new version: the questions the service's alert rules ask,
asked of the new version's own series over one window through Prometheus' HTTP API (instant
queries), and the verdict.

The verdict is `judge`, pure: too few requests in the window, or a result that is empty or NaN,
is INCONCLUSIVE (hold: never promote on missing evidence); a value above its limit is FAIL; all
within their limits on enough requests is PASS. Prometheus unreachable, or answering with an
error, is ERROR: no verdict at all, which the controller never treats as a pass.
"""
from __future__ import annotations

import enum
import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from components.alert_rules import service_queries
from components.service_signals import ServiceSignals, number, promql_string


class Verdict(str, enum.Enum):
    PASS = "pass"  # nosec B105 -- a verdict, not a password
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    ERROR = "error"


@dataclass(frozen=True)
class Check:
    """One objective the new version is held to: `expr`'s value must not exceed `limit`.
    `required`: an empty or NaN result makes the analysis inconclusive; otherwise (a route
    with an objective of its own that no request reached in the window) it is reported as not
    measured and does not hold the release."""

    name: str
    expr: str
    limit: float
    unit: str = ""
    required: bool = True


@dataclass(frozen=True)
class Measurement:
    check: Check
    value: float | None  # None: Prometheus returned no series; NaN kept as NaN

    @property
    def measured(self) -> bool:
        return self.value is not None and not math.isnan(self.value)

    def to_dict(self) -> dict:
        return {"check": self.check.name, "value": self.value if self.measured else None,
                "limit": self.check.limit, "unit": self.check.unit}


@dataclass(frozen=True)
class Analysis:
    verdict: Verdict
    reasons: list[str]
    requests: float | None = None
    measurements: list[Measurement] = field(default_factory=list)
    seconds: float = 0.0  # what asking Prometheus took

    def to_dict(self) -> dict:
        return {"verdict": self.verdict.value, "reasons": self.reasons,
                "requests": self.requests, "seconds": round(self.seconds, 3),
                "measurements": [m.to_dict() for m in self.measurements]}


def _show(value: float, unit: str) -> str:
    if unit == "ratio":
        return f"{value * 100:.3g} %"
    if unit == "s":
        return f"{value * 1000:.0f} ms"
    return f"{value:g}"


def judge(requests: float | None, measurements: Sequence[Measurement], min_requests: int,
          window_seconds: int, source: str = "Prometheus") -> tuple[Verdict, list[str]]:
    """The verdict on one window's measurements of the new version (`source`: where they come
    from, as a reason names it), and why."""
    if requests is None or math.isnan(requests) or requests < min_requests:
        seen = 0 if requests is None or math.isnan(requests) else requests
        # Errors already too many for the minimum sample: even if the next requests all
        # succeed, the ratio at `min_requests` requests is above the limit. Fail now rather
        # than keep users on a version that is known to fail.
        for m in measurements:
            if m.check.unit == "ratio" and m.measured and m.value * seen > m.check.limit * min_requests:
                return Verdict.FAIL, [(
                    f"{m.check.name}: {m.value * seen:.0f} failed of {seen:.0f} requests, above "
                    f"{_show(m.check.limit, m.check.unit)} of even the {min_requests} requests "
                    f"a verdict needs")]
        return Verdict.INCONCLUSIVE, [(
            f"too little traffic to judge: {seen:.0f} requests to the new version in the last "
            f"{window_seconds}s, at least {min_requests} needed; holding (never promoted "
            f"without evidence)")]
    failed = [m for m in measurements if m.measured and m.value > m.check.limit]
    if failed:
        return Verdict.FAIL, [f"{m.check.name} {_show(m.value, m.check.unit)} is above its "
                              f"limit {_show(m.check.limit, m.check.unit)}" for m in failed]
    missing = [m for m in measurements if m.check.required and not m.measured]
    if missing:
        return Verdict.INCONCLUSIVE, [
            f"{m.check.name}: {source} returned {'no series' if m.value is None else 'NaN'}; "
            f"holding" for m in missing]
    reasons = [f"{m.check.name} {_show(m.value, m.check.unit)} within "
               f"{_show(m.check.limit, m.check.unit)}" for m in measurements if m.measured]
    reasons += [f"{m.check.name}: no request in the window, not measured"
                for m in measurements if not m.measured]
    return Verdict.PASS, [f"{requests:.0f} requests"] + reasons


def checks(signals: ServiceSignals, selector: dict[str, str], window_seconds: int,
           max_burn_rate: float) -> tuple[str, list[Check]]:
    """The requests count and the checks of the new version (its series: `selector`) over the
    window, from the very expressions the service's recording rules and alerts are made of:
    the error ratio against `max_burn_rate` times the error budget, each p99 objective."""
    queries = service_queries(signals)
    window = f"{window_seconds}s"
    matchers = [f"{key}={promql_string(value)}" for key, value in sorted(selector.items())]
    limit = max_burn_rate * signals.error_budget
    found = [Check(f"error ratio (limit {number(max_burn_rate)}x the "
                   f"{number(signals.availability)} % budget)",
                   queries.error_ratio_expr(window, *matchers, zero_without_errors=True),
                   limit, "ratio")]
    for route, expr, seconds in queries.latency_objectives(window, *matchers):
        found.append(Check(f"p99 latency {route}" if route else "p99 latency", expr, seconds, "s",
                           required=route is None))
    return queries.requests_expr(window, *matchers), found


class SourceError(Exception):
    """The analysis source (Prometheus; a Worker's: Cloudflare's analytics) could not be asked,
    or refused the query: no evidence either way."""


class PrometheusError(SourceError):
    """Prometheus could not be asked, or refused the query: no evidence either way."""


def post_json(source: str, url: str, data: bytes, headers: dict[str, str], timeout: float,
              error: type[SourceError]) -> dict:
    """The JSON document an HTTP(S) API answers a POST with, or `error` saying why there is none
    (`source`: the API as the message names it, e.g. "Prometheus at http://…")."""
    request = urllib.request.Request(url, data=data, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # nosec B310 -- http(s) only, checked in ops/rollout/stack.py
            body = json.loads(response.read())
    except urllib.error.HTTPError as failed:
        detail = failed.read().decode(errors="replace")[:300]
        raise error(f"{source} answered {failed.code}: {detail}") from None
    except (OSError, ValueError) as failed:
        raise error(f"{source} cannot be queried: {failed}") from None
    if not isinstance(body, dict):
        raise error(f"{source} answered {type(body).__name__}, not a JSON object")
    return body


@dataclass
class Prometheus:
    """Instant queries through Prometheus' HTTP API (`/api/v1/query`)."""

    url: str
    timeout: float = 5.0

    def query(self, expr: str) -> list[float]:
        """The values of the instant vector `expr` evaluates to now (one per series)."""
        body = post_json(f"Prometheus at {self.url}", self.url.rstrip("/") + "/api/v1/query",
                         urllib.parse.urlencode({"query": expr}).encode(),
                         {"Content-Type": "application/x-www-form-urlencoded"}, self.timeout,
                         PrometheusError)
        if body.get("status") != "success":
            raise PrometheusError(f"Prometheus at {self.url} refused the query: "
                                  f"{body.get('error', body)}")
        data = body["data"]
        if data.get("resultType") != "vector":
            raise PrometheusError(f"expected an instant vector, got {data.get('resultType')}")
        return [float(sample["value"][1]) for sample in data["result"]]


def _worst(values: list[float]) -> float | None:
    if not values:
        return None
    if any(math.isnan(v) for v in values):
        return math.nan
    return max(values)


@dataclass
class Analyser:
    """Asks Prometheus the checks of one release and judges the answers."""

    source = "Prometheus"
    prometheus: Prometheus
    requests_expr: str
    checks: list[Check]
    min_requests: int
    window_seconds: int
    clock: Callable[[], float] = time.monotonic

    def preflight(self) -> None:
        """Raises PrometheusError unless Prometheus answers a query."""
        self.prometheus.query("vector(1)")

    def analyse(self) -> Analysis:
        started = self.clock()
        try:
            counts = self.prometheus.query(self.requests_expr)
            measurements = [Measurement(c, _worst(self.prometheus.query(c.expr))) for c in self.checks]
        except PrometheusError as error:
            return Analysis(Verdict.ERROR, [str(error)], seconds=self.clock() - started)
        requests = sum(counts) if counts else None
        verdict, reasons = judge(requests, measurements, self.min_requests, self.window_seconds)
        return Analysis(verdict, reasons, requests, measurements, self.clock() - started)
