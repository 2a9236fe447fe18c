"""Whole environments: the order, the parallelism, a failure stopping only what depends on it,
an interrupt, and a resumed run, with stand-in stack runs (the engine's part is the e2e's)."""
from __future__ import annotations

import io
import json
import os
import signal
import threading
import time

import pytest

from ops.engine.fleet import (
    FAILED,
    NOT_STARTED,
    SKIPPED,
    SUCCEEDED,
    Display,
    FleetStack,
    Outcome,
    Record,
    environment_order,
    run_fleet,
)
from ops.errors import OpsError

COMPONENTS = {"staging": ["api.staging", "ai.staging", "web.staging"],
              "production": ["api.production", "ai.production"]}


class Runs:
    """A stand-in action: records when each stack started and ended; fails the ones named."""

    def __init__(self, fail=(), hold=0.05):
        self.fail, self.hold = set(fail), hold
        self.events: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.running, self.peak = 0, 0

    def __call__(self, stack: FleetStack, counted) -> Outcome:
        with self.lock:
            self.events.append(("start", stack.name))
            self.running += 1
            self.peak = max(self.peak, self.running)
        time.sleep(self.hold)  # a stand-in for the engine's work, not a wait on a condition
        counted({"create": 2})
        with self.lock:
            self.running -= 1
            self.events.append(("end", stack.name))
        if stack.name in self.fail:
            raise OpsError(f"stack '{stack.name}': the engine said no")
        return Outcome(True, counts={"create": 2})

    def order(self, kind: str) -> list[str]:
        return [name for k, name in self.events if k == kind]


def run(stacks, action, tmp_path, parallel=4, resume=False, stream=None):
    stream = stream or io.StringIO()
    return run_fleet(stacks, action, parallel=parallel, display=Display(stream, stacks),
                     record=Record(tmp_path / "run.json", "up", "environment staging"),
                     resume=resume, err=stream)


def test_the_environment_stack_runs_before_its_components_and_they_run_in_parallel(tmp_path):
    together = threading.Barrier(3, timeout=30)  # passes only when the three run at once
    runs = Runs()

    def action(stack: FleetStack, counted) -> Outcome:
        if stack.name != "staging":
            together.wait()
        return runs(stack, counted)

    summary = run(environment_order(["staging"], COMPONENTS), action, tmp_path, parallel=4)
    assert summary.count(SUCCEEDED) == 4
    ends = runs.order("end")
    starts = runs.order("start")
    assert starts[0] == "staging" and ends[0] == "staging"
    assert set(starts[1:]) == set(COMPONENTS["staging"])
    assert runs.peak == 3  # the three components at once


def test_parallel_bounds_how_many_run_at_once(tmp_path):
    runs = Runs()
    run(environment_order(["staging"], COMPONENTS), runs, tmp_path, parallel=1)
    assert runs.peak == 1


def test_destroy_runs_the_components_first_then_the_environment(tmp_path):
    runs = Runs()
    run(environment_order(["staging"], COMPONENTS, reverse=True), runs, tmp_path)
    assert runs.order("start")[-1] == "staging"
    assert set(runs.order("end")[:3]) == set(COMPONENTS["staging"])


def test_environments_follow_the_promotion_order_when_chained(tmp_path):
    runs = Runs()
    run(environment_order(["staging", "production"], COMPONENTS, chained=True), runs, tmp_path)
    starts = runs.order("start")
    assert starts.index("production") > max(starts.index(s) for s in ["staging", *COMPONENTS["staging"]])


def test_a_failed_stack_stops_only_what_depends_on_it(tmp_path):
    runs = Runs(fail={"api.staging"})
    stacks = environment_order(["staging", "production"], COMPONENTS)
    summary = run(stacks, runs, tmp_path)
    states = {s.name: s.state for s in summary.stacks}
    assert states["api.staging"] == FAILED
    assert all(states[s] == SUCCEEDED for s in ["staging", "ai.staging", "web.staging",
                                                 "production", *COMPONENTS["production"]])
    assert "the engine said no" in summary.text()


def test_a_failed_environment_skips_its_components_and_names_why(tmp_path):
    runs = Runs(fail={"staging"})
    summary = run(environment_order(["staging"], COMPONENTS), runs, tmp_path)
    skipped = [s for s in summary.stacks if s.state == SKIPPED]
    assert {s.name for s in skipped} == set(COMPONENTS["staging"])
    assert all(s.note == "needs staging, which failed" for s in skipped)
    assert runs.order("start") == ["staging"]
    assert "1 succeeded" not in summary.text() and "0 succeeded, 1 failed, 3 skipped, 0 not started" in summary.text()


def test_resume_runs_only_what_did_not_succeed(tmp_path):
    first = Runs(fail={"ai.staging"})
    run(environment_order(["staging"], COMPONENTS), first, tmp_path)
    again = Runs()
    summary = run(environment_order(["staging"], COMPONENTS), again, tmp_path, resume=True)
    assert again.order("start") == ["ai.staging"]
    assert summary.count(SUCCEEDED) == 4
    assert sum(s.earlier for s in summary.stacks) == 3


def test_resume_without_a_recorded_run_is_refused(tmp_path):
    with pytest.raises(OpsError, match="nothing to resume: no earlier `platform up` of environment staging"):
        run(environment_order(["staging"], COMPONENTS), Runs(), tmp_path, resume=True)


def test_an_interrupt_starts_nothing_more_and_waits_for_what_runs(tmp_path):
    stream = io.StringIO()
    runs = Runs()

    def interrupted_while_running(stack: FleetStack, counted) -> Outcome:
        if stack.name == "staging":  # the operator presses Ctrl-C while it runs
            os.kill(os.getpid(), signal.SIGINT)
            deadline = time.monotonic() + 10
            while "interrupted: starting nothing more" not in stream.getvalue():
                assert time.monotonic() < deadline, "the interrupt was never handled"
                time.sleep(0.01)
        return runs(stack, counted)

    summary = run(environment_order(["staging"], COMPONENTS), interrupted_while_running, tmp_path,
                  stream=stream)
    states = {s.name: s.state for s in summary.stacks}
    assert summary.interrupted
    assert states["staging"] == SUCCEEDED  # it was running: it was let finish
    assert all(states[c] == NOT_STARTED for c in COMPONENTS["staging"])
    assert "waiting for staging" in stream.getvalue()
    recorded = json.loads((tmp_path / "run.json").read_text())
    assert recorded["finished"] is False
    assert {s["stack"]: s["state"] for s in recorded["stacks"]}["staging"] == SUCCEEDED


def test_the_display_is_one_line_per_stack_redrawn_in_place_on_a_terminal(tmp_path):
    stacks = environment_order(["staging"], COMPONENTS)
    stream = io.StringIO()
    summary = run_fleet(stacks, Runs(), parallel=2, display=Display(stream, stacks, live=True),
                        record=Record(tmp_path / "run.json", "up", "environment staging"), err=stream)
    last = stream.getvalue().rsplit("\x1b[4F", 1)[-1]  # the final redraw of the 4-line block
    lines = [line.replace("\x1b[2K", "") for line in last.splitlines()]
    assert len(lines) == 4 and summary.count(SUCCEEDED) == 4
    assert lines[0].startswith("  ✓ staging ") and "succeeded" in lines[0] and "2 create" in lines[0]


def test_without_a_terminal_each_change_is_one_line(tmp_path):
    stacks = environment_order(["staging"], {"staging": ["api.staging"]})
    stream = io.StringIO()
    run(stacks, Runs(), tmp_path, stream=stream)
    lines = stream.getvalue().splitlines()
    assert [line.split()[1:3] for line in lines] == [
        ["staging", "waiting"], ["api.staging", "waiting"], ["staging", "running"],
        ["staging", "succeeded"], ["api.staging", "running"], ["api.staging", "succeeded"]]


def test_parallel_below_one_is_refused(tmp_path):
    with pytest.raises(OpsError, match="--parallel must be at least 1"):
        run(environment_order(["staging"], COMPONENTS), Runs(), tmp_path, parallel=0)


def test_drift_of_whole_environments_prints_each_stack_as_for_one(tmp_path, capsys):
    """`platform drift --all` says `<stack>: <status>` per stack checked, then what drifted."""
    from ops.operator.whole_environments import report

    class Quiet:
        def __init__(self):
            self.out = io.StringIO()

    def checked(name: str, status: str, detail: str = "") -> FleetStack:
        return FleetStack(name, state=SUCCEEDED if status != "error" else FAILED, note=status,
                          detail=detail, data={"status": status})

    session = Quiet()
    from ops.engine.fleet import Summary
    code = report(session, "drift", Summary([
        checked("staging", "drift", "  kubernetes:core/v1:ResourceQuota staging-quota differs"),
        checked("api-gateway.staging", "clean"),
        FleetStack("ai-worker.staging", state=SUCCEEDED, data={"status": "not deployed"})]), json_output=False)
    assert code == 2
    assert session.out.getvalue().splitlines() == [
        "staging: drift", "  kubernetes:core/v1:ResourceQuota staging-quota differs",
        "api-gateway.staging: clean", "3 succeeded, 0 failed, 0 skipped, 0 not started"]
