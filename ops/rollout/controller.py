"""The rollout loop: a release's new version taken through its steps, an analysis after each,
and the decision.

At each step below 100 % the new version's share is set, the step runs for one window, and the
analysis judges that window:
- PASS: the next step (after the last one below 100 %: the promotion, 100 %);
- FAIL: counted; more than `failure_limit` failures roll back (the new version's share to 0);
  within the limit the step is measured again, never promoted on a failed window;
- INCONCLUSIVE (too little traffic, an empty or NaN result): measured again at the same step;
  `inconclusive_limit` in a row stop the rollout HELD at that step (neither promoted nor rolled
  back: running it again resumes the analysis there; `--abort` rolls back);
- ERROR (the analysis source, Prometheus or a Worker's Cloudflare analytics, unreachable or
  refusing the query): measured again; `error_limit` in a row roll back. The release is blind
  while its source cannot be asked: the version known to work takes the traffic back, which
  needs no analysis, rather than leaving users on an unverified one for as long as the outage
  lasts.
A rollout whose first query fails changes nothing.
"""
from __future__ import annotations

import datetime as dt
import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from infra.config.canary import CanarySteps
from ops.errors import OpsError
from ops.rollout.analysis import Analysis, SourceError, Verdict


class TrafficSplit(Protocol):
    """The step actions: where the new version's share of traffic is read and set (0: back to
    the stable version; 100: the new version promoted to serve everything)."""

    def describe(self) -> str: ...

    def weight(self) -> int: ...

    def set_weight(self, percent: int, reason: str) -> None: ...


class Analyses(Protocol):
    """The analysis of a release's new version: `preflight` raises SourceError when its source
    (`source`, as messages name it: Prometheus, Cloudflare's analytics) cannot be asked;
    `analyse` judges the last window (ops.rollout.analysis.Analyser, a Go service's;
    ops.rollout.worker_analytics.WorkerAnalyser, a Worker's)."""

    source: str

    def preflight(self) -> None: ...

    def analyse(self) -> Analysis: ...


class Outcome(str, enum.Enum):
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled-back"
    HELD = "held"

    @property
    def exit_code(self) -> int:
        return {Outcome.PROMOTED: 0, Outcome.ROLLED_BACK: 2, Outcome.HELD: 3}[self]


@dataclass(frozen=True)
class Event:
    """One step or decision, as printed and kept."""

    action: str  # start, set-weight, analysis, promoted, rolled-back, held, aborted
    weight: int
    message: str
    elapsed: float
    time: str
    analysis: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        found = {"action": self.action, "weight": self.weight, "message": self.message,
                 "elapsed_seconds": round(self.elapsed, 3), "time": self.time}
        if self.analysis is not None:
            found["analysis"] = self.analysis
        return found


@dataclass
class Rollout:
    stack: str
    canary: CanarySteps
    analyser: Analyses
    split: TrafficSplit
    on_event: Callable[[Event], None] = lambda event: None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    events: list[Event] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._started = self.clock()

    def record(self, action: str, weight: int, message: str,
               analysis: dict[str, Any] | None = None) -> None:
        event = Event(action, weight, message, self.clock() - self._started,
                      dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
                      analysis)
        self.events.append(event)
        self.on_event(event)

    def preflight(self) -> None:
        """The analysis source must answer before any traffic moves: a rollout it cannot judge
        does not start."""
        try:
            self.analyser.preflight()
        except SourceError as error:
            raise OpsError(f"stack '{self.stack}': rollout not started, nothing changed: {error}; "
                           f"no release is promoted without its analysis") from None

    def set_weight(self, percent: int, reason: str, action: str = "set-weight") -> None:
        self.split.set_weight(percent, reason)
        self.record(action, percent, reason)

    def roll_back(self, reason: str) -> Outcome:
        try:
            self.split.set_weight(0, reason)
        except Exception as error:  # noqa: BLE001 - any failure of the split: say what still serves
            raise OpsError(f"stack '{self.stack}': ROLLBACK FAILED ({error}); the new version "
                           f"may still serve {self.split.weight()} %: {reason}") from None
        self.record(Outcome.ROLLED_BACK.value, 0, f"rolled back to the stable version: {reason}")
        return Outcome.ROLLED_BACK

    def abort(self) -> Outcome:
        return self.roll_back("aborted by the operator")

    def run(self) -> Outcome:
        steps = self.canary.steps
        current = self.split.weight()
        self.preflight()
        self.record("start", current, f"{self.split.describe()}: steps "
                    f"{' -> '.join(f'{s}%' for s in steps)}, analysis every "
                    f"{self.canary.window_seconds}s, at least {self.canary.min_requests} requests, "
                    f"failure limit {self.canary.failure_limit}")
        canary_steps = steps[:-1]
        # Held earlier at a step: resume its analysis there, without moving traffic.
        start = canary_steps.index(current) if current in canary_steps else 0
        failures = 0
        passed = ""  # the analysis the next step is taken on, kept with it in the step's reason
        for weight in canary_steps[start:]:
            if self.split.weight() != weight:
                self.set_weight(weight, f"step {steps.index(weight) + 1}/{len(steps)}: "
                                        f"the new version takes {weight} % of the traffic"
                                        + passed)
            inconclusive = errors = 0
            while True:
                self.sleep(self.canary.window_seconds)
                analysis = self.analyser.analyse()
                self.record("analysis", weight, f"{analysis.verdict.value}: "
                            + "; ".join(analysis.reasons), analysis.to_dict())
                if analysis.verdict is Verdict.PASS:
                    passed = f" (analysis at {weight} % passed: {'; '.join(analysis.reasons)})"
                    break
                if analysis.verdict is Verdict.FAIL:
                    failures += 1
                    if failures > self.canary.failure_limit:
                        return self.roll_back(
                            f"analysis failed at {weight} % ({failures} failure(s), limit "
                            f"{self.canary.failure_limit}): " + "; ".join(analysis.reasons))
                    inconclusive = errors = 0
                elif analysis.verdict is Verdict.INCONCLUSIVE:
                    inconclusive, errors = inconclusive + 1, 0
                    if inconclusive >= self.canary.inconclusive_limit:
                        self.record(Outcome.HELD.value, weight,
                                    f"held at {weight} %, not promoted: {inconclusive} "
                                    f"inconclusive analyses in a row ("
                                    + "; ".join(analysis.reasons) + "). Run the rollout again "
                                    "to resume here, or abort it (--abort) to send every "
                                    "request back to the stable version")
                        return Outcome.HELD
                else:
                    errors, inconclusive = errors + 1, 0
                    if errors >= self.canary.error_limit:
                        return self.roll_back(
                            f"{self.analyser.source} could not judge the release {errors} times "
                            f"in a row "
                            f"(" + "; ".join(analysis.reasons) + "): failing safe")
        self.set_weight(100, f"step {len(steps)}/{len(steps)}: every step passed its analysis: "
                             f"the new version is promoted and serves all traffic" + passed,
                        action=Outcome.PROMOTED.value)
        return Outcome.PROMOTED
