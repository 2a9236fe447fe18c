"""One analysis of a Worker's new version: its invocations over one window, asked of Cloudflare's
GraphQL Analytics API (the account's `workersInvocationsAdaptive` dataset, filtered by the
Worker's `scriptName` and the version's `scriptVersion`), and the verdict, by the same `judge`
as a Go service's (ops.rollout.analysis).

Asked: `sum { requests errors }` (an error is an invocation that did not succeed: an uncaught
exception, exceeded resources; a Response the Worker returns, whatever its status, is a
success) and, with a latency objective, `quantiles { wallTimeP99 }` (microseconds). The error
ratio is errors / requests, held to `max_burn_rate` times the error budget of the Worker's
availability objective. No row at all (no invocation of the version in the window) is no
evidence: too little traffic. The API unreachable, refusing the token (401, 403) or answering
with an `errors` array is ERROR, never a pass.
"""
from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from components.service_signals import number
from ops.rollout.analysis import (
    Analysis,
    Check,
    Measurement,
    SourceError,
    Verdict,
    judge,
    post_json,
)

GRAPHQL_URL = "https://api.cloudflare.com/client/v4/graphql"
SOURCE = "Cloudflare's analytics"

QUERY = """query WorkerVersionInvocations($accountTag: string!, $scriptName: string!,
    $scriptVersion: string!, $start: Time!, $end: Time!) {
  viewer {
    accounts(filter: {accountTag: $accountTag}) {
      workersInvocationsAdaptive(limit: 100, filter: {scriptName: $scriptName,
          scriptVersion: $scriptVersion, datetime_geq: $start, datetime_leq: $end}) {
        sum { requests errors }
        quantiles { wallTimeP99 }
      }
    }
  }
}"""


class AnalyticsError(SourceError):
    """Cloudflare's GraphQL Analytics API could not be asked, or refused the query."""


def timestamp(moment: dt.datetime) -> str:
    """A `Time` as the API takes it: RFC 3339, UTC, whole seconds."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class CloudflareAnalytics:
    """Queries of one account through the GraphQL Analytics API, with an API token that may read
    the account's analytics (`Account Analytics: Read`)."""

    token: str
    account_id: str
    url: str = GRAPHQL_URL
    timeout: float = 10.0

    def invocations(self, script_name: str, version_id: str, start: dt.datetime,
                    end: dt.datetime) -> list[dict[str, Any]]:
        """The rows of `workersInvocationsAdaptive` for one version of one Worker between `start`
        and `end` (both included); none when it was not invoked."""
        variables = {"accountTag": self.account_id, "scriptName": script_name,
                     "scriptVersion": version_id, "start": timestamp(start), "end": timestamp(end)}
        body = post_json(f"{SOURCE} at {self.url}", self.url,
                         json.dumps({"query": QUERY, "variables": variables}).encode(),
                         {"Content-Type": "application/json", "Accept": "application/json",
                          "Authorization": f"Bearer {self.token}"}, self.timeout, AnalyticsError)
        if body.get("errors"):
            problems = "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e)
                                 for e in body["errors"])
            raise AnalyticsError(f"{SOURCE} at {self.url} refused the query: {problems}")
        try:
            accounts = body["data"]["viewer"]["accounts"]
            if not accounts:
                raise AnalyticsError(f"{SOURCE} at {self.url}: no account {self.account_id} "
                                     f"for this token")
            rows = accounts[0]["workersInvocationsAdaptive"]
        except (KeyError, TypeError, IndexError):
            raise AnalyticsError(f"{SOURCE} at {self.url} answered without "
                                 f"data.viewer.accounts[0].workersInvocationsAdaptive") from None
        return list(rows or [])


def _values(rows: list[dict[str, Any]], group: str, name: str) -> list[float]:
    """`group.name` of every row that has it (`sum.requests`, `quantiles.wallTimeP99`)."""
    found = [(row.get(group) or {}).get(name) for row in rows]
    return [float(v) for v in found if v is not None]


def _total(rows: list[dict[str, Any]], group: str, name: str) -> float | None:
    values = _values(rows, group, name)
    return sum(values) if values else None


def _worst(rows: list[dict[str, Any]], group: str, name: str) -> float | None:
    values = _values(rows, group, name)
    return max(values) if values else None


def worker_checks(availability: str, max_burn_rate: float,
                  wall_time_p99_ms: int | None) -> list[Check]:
    """The error ratio against `max_burn_rate` times the error budget of `availability`
    (percent), and the p99 wall time against its objective when there is one."""
    budget = 1 - float(availability) / 100
    found = [Check(f"error ratio (limit {number(max_burn_rate)}x the {availability} % budget)",
                   "sum.errors / sum.requests", max_burn_rate * budget, "ratio")]
    if wall_time_p99_ms is not None:
        found.append(Check("p99 wall time", "quantiles.wallTimeP99", wall_time_p99_ms / 1000, "s"))
    return found


@dataclass
class WorkerAnalyser:
    """Asks Cloudflare's analytics about the Worker's new version over the last window and
    judges the answers. `version`: the new version's id now (the stack's `version_id` output,
    which the rollout's first step creates); None while there is none."""

    analytics: CloudflareAnalytics
    script_name: str
    version: Callable[[], str | None]
    checks: list[Check]
    min_requests: int
    window_seconds: int
    clock: Callable[[], float] = time.monotonic
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    source = SOURCE

    def _rows(self, version_id: str) -> list[dict[str, Any]]:
        end = self.now()
        return self.analytics.invocations(self.script_name, version_id,
                                          end - dt.timedelta(seconds=self.window_seconds), end)

    def preflight(self) -> None:
        """Raises AnalyticsError unless the API answers the very query the analyses ask (the
        token, the account and the dataset all usable)."""
        self._rows(self.version() or "00000000-0000-0000-0000-000000000000")

    def analyse(self) -> Analysis:
        started = self.clock()
        version_id = self.version()
        if version_id is None:
            reason = f"{self.script_name} has no new version to judge yet"
            return Analysis(Verdict.INCONCLUSIVE, [reason], seconds=self.clock() - started)
        try:
            rows = self._rows(version_id)
        except AnalyticsError as error:
            return Analysis(Verdict.ERROR, [str(error)], seconds=self.clock() - started)
        requests = _total(rows, "sum", "requests")
        errors = _total(rows, "sum", "errors")
        measurements = []
        for check in self.checks:
            if check.unit == "ratio":
                value = (errors or 0.0) / requests if requests else None
            else:  # the p99 wall time: the worst of the rows, microseconds to seconds
                worst = _worst(rows, "quantiles", "wallTimeP99")
                value = None if worst is None else worst / 1_000_000
            measurements.append(Measurement(check, value))
        verdict, reasons = judge(requests, measurements, self.min_requests, self.window_seconds,
                                 source=SOURCE)
        reasons = [f"version {version_id}: {reasons[0]}", *reasons[1:]]
        return Analysis(verdict, reasons, requests, measurements, self.clock() - started)

