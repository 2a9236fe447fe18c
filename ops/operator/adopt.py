"""`platform adopt STACK`: bring Kubernetes objects that already run under a stack, without
deleting or restarting them.

The stack's plan names every object the program gives it; those found on the cluster are
imported under the program's own names (ops/operator/adoption.py says how), then a preview shows what the
next `platform up` changes. An adoption whose preview would replace an object is undone: the
stack's state goes back to what it was and the objects named must first be made to match the
stack's config (or the config to match them).
"""
from __future__ import annotations

import time

from ops.engine.operation import can_ask, confirm, policy_packs, preview, preview_summary
from ops.engine.session import Session
from ops.errors import OpsError
from ops.operator.adoption import Cluster, KubernetesObject, Plan, import_file, trim_imported_inputs


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "adopt", help="import the objects of a stack that already run on the cluster")
    parser.add_argument("stack", metavar="STACK")
    parser.add_argument("--dry-run", action="store_true",
                        help="list the objects found and those the next update would create; change nothing")
    parser.add_argument("--yes", action="store_true", help="do not ask (CI)")
    parser.set_defaults(run=run)


def plan_of(session: Session, stack, name: str) -> Plan:
    """What an update of the stack would register (a preview without the policy pack: the
    names are wanted here, the judgement comes with the preview after the import)."""
    plan = Plan()
    with session.engine.errors(name):
        stack.preview(on_event=plan, color="never")
    return plan


def find_on_cluster(session: Session, info, plan: Plan) -> tuple[list, list]:
    """The objects the plan would create, split into those already on the cluster (to adopt)
    and those missing (the next update creates them); each is listed as it is judged."""
    foreign = plan.foreign()
    if foreign:
        raise OpsError(f"stack '{info.name}' registers {', '.join(sorted({r.type for r in foreign}))}: "
                       "`platform adopt` finds Kubernetes objects only; import others with "
                       "`pulumi import` and their provider's import ID (nothing was changed)")
    candidates = plan.to_create()
    if not candidates:
        return [], []
    provider = plan.by_urn(candidates[0].provider_urn or "")
    cluster = Cluster(provider.inputs)
    adopted, missing = [], []
    for resource in sorted(candidates, key=lambda r: KubernetesObject.of(r).describe()):
        obj = KubernetesObject.of(resource)
        (adopted if cluster.get(obj) is not None else missing).append(resource)
        session.out.write(f"  {'found  ' if resource in adopted else 'missing'} {obj.describe()} "
                          f"-> {resource.name}\n")
    return adopted, missing


def import_objects(session: Session, info, stack, plan: Plan, adopted: list):
    """Import the objects under the program's names; the state before, to undo it with."""
    with session.engine.errors(info.name):
        before = stack.export_stack()
        # Each entry may carry `inputs` (a provider's configuration), which the CLI reads
        # although the SDK's ImportResource type does not name it.
        stack.import_resources(resources=import_file(plan, adopted), protect=False,
                               generate_code=False, message=f"adopt {len(adopted)} existing object(s)")
        deployment = stack.export_stack()
        trim_imported_inputs(deployment.deployment, plan, adopted)
        stack.import_stack(deployment)
    return before


def keep_or_undo(session: Session, info, stack, before):
    """The preview after the import; an import it fails on, or that it would replace an
    object of, is undone (the state put back as it was) and refused."""
    report = preview(session, info, packs=policy_packs(session, None, False), quiet=True)
    replaced = [step for step in report.changed_steps if step.replaces]
    if not report.failed and not replaced:
        return report
    with session.engine.errors(info.name):
        stack.import_stack(before)
    if report.failed:
        raise OpsError(f"stack '{info.name}': the preview after the import failed, so the "
                       "adoption was undone:\n  " + "\n  ".join(report.errors))
    lines = [f"  {step.name} ({step.type}): "
             + (", ".join(f.path for f in step.fields if f.kind.endswith("-replace"))
                or ", ".join(f.path for f in step.fields) or "replacement") for step in replaced]
    raise OpsError(f"stack '{info.name}': adopting would replace {len(replaced)} object(s), so the "
                   "adoption was undone (the stack's state is as it was):\n" + "\n".join(lines)
                   + "\nmake these fields of the running objects and of the stack's config agree, "
                     "then adopt again")


def run(args) -> int:
    session = Session.from_args(args)
    info = session.stack(args.stack)
    if not args.dry_run:
        can_ask(args.yes, "`platform adopt`")
    session.require_environment(info)
    stack = session.engine.select(info.name, create=True)
    session.require_clean(stack)
    started = time.monotonic()

    plan = plan_of(session, stack, info.name)
    adopted, missing = find_on_cluster(session, info, plan)
    if not adopted and not missing:
        session.out.write(f"{info.name}: nothing to adopt: the stack already holds every object "
                          "its program registers\n")
        return 0
    if not adopted:
        session.out.write(f"{info.name}: none of its objects is on the cluster; "
                          f"`platform up {info.name}` creates them\n")
        return 0
    session.out.write(f"{info.name}: {len(adopted)} object(s) to adopt, {len(missing)} the next "
                      "update creates\n")
    if args.dry_run:
        return 0
    confirm(session, f"import {len(adopted)} object(s) into stack '{info.name}'?", args.yes)
    before = import_objects(session, info, stack, plan, adopted)
    report = keep_or_undo(session, info, stack, before)
    session.out.write(f"{info.name}: adopted {len(adopted)} object(s) in "
                      f"{time.monotonic() - started:.1f}s; the next `platform up {info.name}`: "
                      f"{preview_summary(report)}\n")
    return 0
