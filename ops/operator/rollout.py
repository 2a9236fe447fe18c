"""`platform rollout STACK [--prometheus URL | --analytics URL] [--check] [--abort] [--json]`:
take a release's new version through the stack's `platform:canary` steps, judged between steps
by the stack's own objectives over the new version alone (ops.rollout): a Go service's series in
Prometheus (`--prometheus`, required for one), a Worker's invocations in Cloudflare's analytics
(its GraphQL API, with $CLOUDFLARE_API_TOKEN; `--analytics` only to ask another endpoint).

`--check` runs one analysis of the new version now and changes nothing: exit 0 pass, 2 fail,
3 inconclusive (too little traffic, no data), 1 the analysis source could not be asked; the
gate a pipeline runs between the steps it takes itself. Without it the whole loop runs through
the stack's step actions, each step one `up` of the stack (a Go service's: the weight of the
canary release its stack file declares, ops.rollout.canary_stack; a Worker's: its gradual
deployment, `platform:rollout`, ops.rollout.worker_split): exit 0 promoted, 2 rolled back, 3
held at a step; a stack with nothing to roll out is refused (exit 1). Every step and decision is
printed as it happens; `--json` prints them as one document at the end.
"""
from __future__ import annotations

import json

from ops.engine.session import Session
from ops.errors import OpsError
from ops.operator import env
from ops.project import StackInfo
from ops.rollout.analysis import Verdict
from ops.rollout.canary_stack import CanaryStackSplit
from ops.rollout.controller import Event, Rollout, TrafficSplit
from ops.rollout.stack import analyser_for
from ops.rollout.worker_split import WorkerSplit

CHECK_EXIT = {Verdict.PASS: 0, Verdict.FAIL: 2, Verdict.INCONCLUSIVE: 3, Verdict.ERROR: 1}


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "rollout", help="take a release through its canary steps, analysed between them")
    parser.add_argument("stack", metavar="STACK")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--prometheus", metavar="URL",
                        help="a Go service's: the environment's Prometheus (its HTTP API, e.g. "
                             "a port-forward); required for one")
    source.add_argument("--analytics", metavar="URL",
                        help="a Worker's: Cloudflare's GraphQL Analytics API (default: "
                             "Cloudflare's own; the token: $CLOUDFLARE_API_TOKEN)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true",
                      help="one analysis of the new version now; change nothing")
    mode.add_argument("--abort", action="store_true",
                      help="send every request back to the stable version")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(run=run)


def split_for(session: Session, info: StackInfo, worker: WorkerSplit | None,
              abort: bool = False) -> TrafficSplit:
    """The step actions of the stack (a kind `analyser_for` admits): a Go service's canary
    release's weight, a Worker's gradual deployment (`worker`, the Worker's split), in its stack
    file, applied by `up` of the stack."""
    if worker is not None:
        return checked_worker_split(worker, info, abort)
    split = CanaryStackSplit(session, info)
    if split.release() is None:
        raise OpsError(
            f"stack '{info.name}': nothing to roll out: Pulumi.{info.name}.yaml declares no canary "
            f"release (platform:canary.release: {{image: <repository>@sha256:<digest>, weight: "
            f"0}}, docs/rollouts.md)")
    return split


def worker_split(session: Session, info: StackInfo) -> WorkerSplit:
    """A Worker's split, reading the stack's outputs from its state whenever it needs them."""
    return WorkerSplit(session, info, lambda: env.stack_outputs(session, info.name))


def checked_worker_split(split: WorkerSplit, info: StackInfo, abort: bool) -> WorkerSplit:
    """A Worker's split, refused when it has nothing to roll out: no version deployed to be the
    stable one, no new bundle since, or (`abort`) no rollout in progress to abort."""
    if split.stable_version() is None:
        raise OpsError(f"stack '{info.name}': nothing to roll out: the stack serves no version "
                       f"yet (no version_id output); its first version is deployed by "
                       f"`platform up {info.name}`, the next ones rolled out")
    if abort:
        if not split.in_progress():
            raise OpsError(f"stack '{info.name}': no rollout to abort: Pulumi.{info.name}.yaml's "
                           f"platform:rollout splits no traffic (no stable_version_id)")
    elif not split.in_progress() and not split.new_bundle():
        raise OpsError(f"stack '{info.name}': nothing to roll out: the bundle is the one version "
                       f"{split.deployed_version()} was built from (build the new one first, "
                       f"`make worker`; docs/rollouts.md)")
    return split


def line(event: Event) -> str:
    return f"[{event.elapsed:7.1f}s] {event.action:<11} {event.weight:>3}%  {event.message}\n"


def run(args) -> int:
    session = Session.from_args(args)
    info = session.stack(args.stack)
    # A Worker's split, made once: the analysis asks it for the new version's id.
    worker = worker_split(session, info) if info.kind == "cloudflare-worker" else None
    canary, analyser = analyser_for(session.project, info, args.prometheus,
                                    analytics_url=args.analytics,
                                    version=worker.new_version if worker else None)
    if args.check:
        analysis = analyser.analyse()
        if args.json:
            session.print_json({"stack": info.name, **analysis.to_dict()})
        else:
            session.out.write(f"{info.name}: {analysis.verdict.value}\n"
                              + "".join(f"  {reason}\n" for reason in analysis.reasons))
        return CHECK_EXIT[analysis.verdict]
    split = split_for(session, info, worker, abort=args.abort)

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
