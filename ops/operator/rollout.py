"""`platform rollout STACK --prometheus URL [--check] [--abort] [--json]`: take a release's new
version through the stack's `platform:canary` steps, judged between steps by the service's own
objectives over the new version's series (ops.rollout).

`--check` runs one analysis of the new version now and changes nothing: exit 0 pass, 2 fail,
3 inconclusive (too little traffic, no data), 1 Prometheus could not be asked; the gate a
pipeline runs between the steps it takes itself. Without it the whole loop runs through the
stack's step actions (a Go service's: the weight of the canary release its stack file declares,
each step one `up` of the stack, ops.rollout.canary_stack): exit 0 promoted, 2 rolled back, 3
held at a step; a stack file without a release has nothing to roll out (exit 1). Every step and
decision is printed as it happens; `--json` prints them as one document at the end.
"""
from __future__ import annotations

import json

from ops.engine.session import Session
from ops.errors import OpsError
from ops.project import StackInfo
from ops.rollout.analysis import Verdict
from ops.rollout.canary_stack import CanaryStackSplit
from ops.rollout.controller import Event, Rollout, TrafficSplit
from ops.rollout.stack import analyser_for

CHECK_EXIT = {Verdict.PASS: 0, Verdict.FAIL: 2, Verdict.INCONCLUSIVE: 3, Verdict.ERROR: 1}


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "rollout", help="take a release through its canary steps, analysed between them")
    parser.add_argument("stack", metavar="STACK")
    parser.add_argument("--prometheus", metavar="URL", required=True,
                        help="the environment's Prometheus (its HTTP API, e.g. a port-forward)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true",
                      help="one analysis of the new version now; change nothing")
    mode.add_argument("--abort", action="store_true",
                      help="send every request back to the stable version")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(run=run)


def split_for(session: Session, info: StackInfo) -> TrafficSplit:
    """The step actions of a Go service stack (the only kind `analyser_for` admits): its canary
    release's weight in its stack file, applied by `up` of the stack."""
    split = CanaryStackSplit(session, info)
    if split.release() is None:
        raise OpsError(
            f"stack '{info.name}': nothing to roll out: Pulumi.{info.name}.yaml declares no canary "
            f"release (platform:canary.release: {{image: <repository>@sha256:<digest>, weight: "
            f"0}}, docs/rollouts.md)")
    return split


def line(event: Event) -> str:
    return f"[{event.elapsed:7.1f}s] {event.action:<11} {event.weight:>3}%  {event.message}\n"


def run(args) -> int:
    session = Session.from_args(args)
    info = session.stack(args.stack)
    canary, analyser = analyser_for(session.project, info, args.prometheus)
    if args.check:
        analysis = analyser.analyse()
        if args.json:
            session.print_json({"stack": info.name, **analysis.to_dict()})
        else:
            session.out.write(f"{info.name}: {analysis.verdict.value}\n"
                              + "".join(f"  {reason}\n" for reason in analysis.reasons))
        return CHECK_EXIT[analysis.verdict]
    split = split_for(session, info)

    def show(event: Event) -> None:
        if not args.json:
            session.out.write(line(event))
            session.out.flush()

    rollout = Rollout(info.name, canary, analyser, split, on_event=show)
    outcome = rollout.abort() if args.abort else rollout.run()
    if args.json:
        session.out.write(json.dumps({"stack": info.name, "outcome": outcome.value,
                                      "events": [e.to_dict() for e in rollout.events]},
                                     indent=2, sort_keys=True) + "\n")
    return outcome.exit_code
