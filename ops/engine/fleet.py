"""Many stacks at once, in dependency order: a stack starts once every stack it needs succeeded,
up to N at a time; a failed stack stops only the stacks that need it.

The order is given by the caller (from the stack model: an environment before its components,
the components of one environment independent; the reverse to destroy). What each stack's run
did is shown live (one line per stack) and recorded in a file after every change, so that an
interrupted or failed run can be resumed: `--resume` runs only what did not finish.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional, TextIO

from ops.errors import OpsError

WAITING, RUNNING, SUCCEEDED, FAILED, SKIPPED, NOT_STARTED = (
    "waiting", "running", "succeeded", "failed", "skipped", "not started")
FINISHED = {SUCCEEDED, FAILED, SKIPPED}
MARK = {WAITING: "·", RUNNING: "▸", SUCCEEDED: "✓", FAILED: "✗", SKIPPED: "-", NOT_STARTED: "·"}
# What one stack's run gives back: the stack succeeded or not, a note, resource counts.
INTERRUPTED = 130


@dataclass
class Outcome:
    ok: bool
    note: str = ""  # one line: the outcome ("no changes", "drift", the first line of an error)
    detail: str = ""  # the whole error or drift, printed in the summary
    counts: dict[str, int] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)  # per command, for --json


@dataclass
class FleetStack:
    name: str
    needs: tuple[str, ...] = ()
    state: str = WAITING
    started: Optional[float] = None
    ended: Optional[float] = None
    earlier: bool = False  # finished in the run being resumed, not run again
    counts: dict[str, int] = field(default_factory=dict)
    note: str = ""
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> Optional[float]:
        if self.started is None:
            return None
        return round((self.ended or time.monotonic()) - self.started, 1)

    def to_dict(self) -> dict[str, Any]:
        return {"stack": self.name, "state": self.state, "needs": list(self.needs),
                "seconds": self.seconds, "resumed_from_earlier_run": self.earlier,
                "counts": self.counts, "note": self.note, "detail": self.detail, **self.data}


Action = Callable[[FleetStack, Callable[[dict[str, int]], None]], Outcome]


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{v} {k}" for k, v in sorted(counts.items()) if v)


class Display:
    """One line per stack: live (redrawn in place) on a terminal, else a line per change."""

    def __init__(self, stream: TextIO, stacks: list[FleetStack], live: Optional[bool] = None):
        self.stream, self.stacks = stream, stacks
        self.live = stream.isatty() if live is None else live
        self.lock = threading.Lock()
        self.drawn = 0
        self.width = max((len(s.name) for s in stacks), default=0)

    def line(self, stack: FleetStack) -> str:
        seconds = f"{stack.seconds:>6.1f}s" if stack.seconds is not None else " " * 7
        counts = _counts_text(stack.counts)
        note = " ".join(filter(None, [counts, stack.note.splitlines()[0] if stack.note else ""]))
        state = f"{stack.state} (earlier run)" if stack.earlier else stack.state
        return f"  {MARK[stack.state]} {stack.name:<{self.width}}  {state:<12} {seconds}  {note}".rstrip()

    def changed(self, stack: FleetStack) -> None:
        with self.lock:
            if self.live:
                self._redraw()
            else:
                self.stream.write(self.line(stack).lstrip() + "\n")
                self.stream.flush()

    def tick(self) -> None:
        if self.live:
            with self.lock:
                self._redraw()

    def _redraw(self) -> None:
        if self.drawn:
            self.stream.write(f"\x1b[{self.drawn}F")  # back to the first line of the block
        for stack in self.stacks:
            self.stream.write("\x1b[2K" + self.line(stack) + "\n")
        self.drawn = len(self.stacks)
        self.stream.flush()


class Record:
    """The run's progress on disk, rewritten after every change: what `--resume` reads."""

    def __init__(self, path: Path, command: str, target: str):
        self.path, self.command, self.target = path, command, target

    def load(self) -> dict[str, str]:
        """The state of each stack in the recorded run; refused when there is none to resume."""
        if not self.path.is_file():
            raise OpsError(f"nothing to resume: no earlier `platform {self.command}` of {self.target} "
                           f"was recorded ({self.path})")
        data = json.loads(self.path.read_text())
        return {s["stack"]: s["state"] for s in data.get("stacks", [])}

    def save(self, stacks: list[FleetStack], started_at: str, finished: bool) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"command": self.command, "target": self.target, "started_at": started_at,
                "finished": finished, "stacks": [s.to_dict() for s in stacks]}
        partial = self.path.with_suffix(".partial")
        partial.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(partial, self.path)


@dataclass
class Summary:
    stacks: list[FleetStack]
    interrupted: bool = False

    def count(self, state: str) -> int:
        return sum(1 for s in self.stacks if s.state == state)

    @property
    def failed(self) -> list[FleetStack]:
        return [s for s in self.stacks if s.state == FAILED]

    def text(self) -> str:
        parts = [f"{self.count(state)} {state}" for state in (SUCCEEDED, FAILED, SKIPPED, NOT_STARTED)]
        lines = [("interrupted: " if self.interrupted else "") + ", ".join(parts)]
        for stack in self.stacks:
            if stack.state in (FAILED, SKIPPED) or stack.detail:
                lines.append(f"{stack.name}: {stack.state}" + (f": {stack.note}" if stack.note else ""))
                if stack.detail:
                    lines.append("  " + stack.detail.replace("\n", "\n  "))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"interrupted": self.interrupted,
                "summary": {state: self.count(state) for state in (SUCCEEDED, FAILED, SKIPPED, NOT_STARTED)},
                "stacks": [s.to_dict() for s in self.stacks]}


def check_run_options(parallel: int, record: Record, resume: bool) -> None:
    """Refuse a run that cannot start: fewer than one stack at a time, or nothing to resume."""
    if parallel < 1:
        raise OpsError(f"--parallel must be at least 1 (got {parallel})")
    if resume:
        record.load()


def run_fleet(stacks: list[FleetStack], action: Action, *, parallel: int, display: Display,
              record: Record, resume: bool = False, err: TextIO = sys.stderr) -> Summary:
    """Run `action` on every stack in dependency order, `parallel` at a time.

    A first interrupt (SIGINT, SIGTERM) starts nothing more and waits for the stacks running
    (an update cut short leaves its stack locked and half done); a second one stops waiting.
    """
    check_run_options(parallel, record, resume)
    by_name = {s.name: s for s in stacks}
    if resume:
        for name, state in record.load().items():
            if state == SUCCEEDED and name in by_name:
                by_name[name].state, by_name[name].earlier = SUCCEEDED, True
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    lock = threading.Lock()
    stop = threading.Event()

    def finish(stack: FleetStack, state: str, note: str = "", detail: str = "") -> None:
        with lock:
            stack.state, stack.note, stack.detail = state, note, detail
            if stack.started is not None:
                stack.ended = time.monotonic()
            record.save(stacks, started_at, finished=False)
        display.changed(stack)

    def run_one(stack: FleetStack) -> None:
        def counted(counts: dict[str, int]) -> None:
            stack.counts = dict(counts)
            display.tick()
        try:
            outcome = action(stack, counted)
        except OpsError as error:
            outcome = Outcome(False, str(error).splitlines()[0], str(error))
        except Exception as error:  # noqa: BLE001 -- one stack's bug must not hide the others'
            outcome = Outcome(False, f"{type(error).__name__}: {error}")
        stack.counts = outcome.counts or stack.counts
        stack.data = outcome.data
        finish(stack, SUCCEEDED if outcome.ok else FAILED, outcome.note, outcome.detail)

    def skip_dependents(failed: FleetStack) -> None:
        for other in stacks:
            if other.state == WAITING and failed.name in other.needs:
                finish(other, SKIPPED, f"needs {failed.name}, which {failed.state}")
                skip_dependents(other)

    def ready() -> list[FleetStack]:
        return [s for s in stacks if s.state == WAITING and
                all(by_name[n].state == SUCCEEDED for n in s.needs if n in by_name)]

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    interrupts = [0]

    def interrupted(signum, frame) -> None:
        interrupts[0] += 1
        stop.set()
        if interrupts[0] == 1:
            running = [s.name for s in stacks if s.state == RUNNING]
            err.write(f"\ninterrupted: starting nothing more; waiting for {', '.join(running) or 'nothing'}"
                      " (interrupt again to stop waiting)\n")
            err.flush()
        else:
            raise KeyboardInterrupt

    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        for sig in previous:
            signal.signal(sig, interrupted)
    for stack in stacks:
        if stack.state == WAITING:
            display.changed(stack)
    pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="fleet")
    running: dict[Future, FleetStack] = {}
    try:
        while True:
            if not stop.is_set():
                for stack in ready()[:parallel - len(running)]:
                    stack.state, stack.started = RUNNING, time.monotonic()
                    display.changed(stack)
                    running[pool.submit(run_one, stack)] = stack
            if not running:
                break
            done, _ = wait(list(running), timeout=0.5, return_when=FIRST_COMPLETED)
            display.tick()
            for future in done:
                stack = running.pop(future)
                if stack.state in (FAILED, SKIPPED):
                    skip_dependents(stack)
    except KeyboardInterrupt:
        for stack in running.values():
            stack.note = "still running when the run stopped waiting"
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        if in_main:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    for stack in stacks:
        if stack.state in (WAITING, RUNNING):
            stack.state = NOT_STARTED if stack.state == WAITING else FAILED
    record.save(stacks, started_at, finished=not stop.is_set())
    display.tick()
    return Summary(stacks, interrupted=stop.is_set())


def environment_order(environments: list[str], components: dict[str, list[str]], *,
                      reverse: bool = False, chained: bool = False) -> list[FleetStack]:
    """The stacks of `environments` with what each needs: an environment stack before its
    components (`reverse`: after them, to destroy); with `chained`, an environment starts only
    once the one before it in `environments` (the promotion order) finished whole."""
    stacks: list[FleetStack] = []
    previous: list[str] = []
    for env in environments:
        members = components.get(env, [])
        if reverse:
            mine = [FleetStack(c, tuple(previous)) for c in members]
            mine.append(FleetStack(env, tuple(members) + tuple(previous)))
        else:
            mine = [FleetStack(env, tuple(previous))] + [FleetStack(c, (env,)) for c in members]
        stacks += mine
        previous = [s.name for s in mine] if chained else []
    return stacks


def add_target_options(parser, every: bool = True) -> None:
    """What a command acts on: one stack, a whole environment (`--env`), or, with `every`,
    every environment in promotion order (`--all`); and how a whole environment runs."""
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("stack", nargs="?", metavar="STACK")
    target.add_argument("--env", metavar="ENV", help="a whole environment: its environment stack "
                        "first, then its component stacks in parallel (destroy: the reverse)")
    if every:
        target.add_argument("--all", action="store_true",
                            help="every environment, in promotion order")
    parser.add_argument("--components", metavar="LIST",
                        help="with --env/--all: only these components (comma-separated; the "
                             "environment stacks always take part)")
    parser.add_argument("--parallel", type=int, default=4, metavar="N",
                        help="with --env/--all: stacks run at once (default 4)")
    parser.add_argument("--resume", action="store_true",
                        help="with --env/--all: run only what the last run of this command did not finish")
