"""`platform promote STACK [--image REF] [--dry-run]`: set the image a Go service's stack runs,
by digest, in its stack file, never by a rebuild.

- Without --image, the stack takes the image the same service runs in the environment promoted
  before its own (`platform:promotion.after` of its environment: production takes staging's),
  copied from that stack's file: production runs the very digest staging ran.
- With --image, a reference by digest built and pushed elsewhere (CI's images workflow) goes into
  a stack of an environment that comes first in the promotion order; any later environment only
  ever takes its predecessor's digest.

Only the stack file changes (comments and layout kept): it is reviewed and merged like any
change, and deploy.yml (or `platform up STACK`) applies it. The stack file says what runs.
"""
from __future__ import annotations

from infra.stack_files import StackFileEditor
from infra.stacks import is_ephemeral, promotion_order
from ops.errors import OpsError
from ops.project import Project, StackInfo
from policy.images import is_pinned

IMAGE = "platform:image"  # ops.stack_config.IMAGE, named here without the config models' import
GO_SERVICE = "go-service"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "promote", help="set a Go service's image by digest in its stack file: the one its "
                        "previous environment runs, or (first environment) one CI pushed")
    parser.add_argument("stack", metavar="STACK")
    parser.add_argument("--image", metavar="REF",
                        help="registry/repository@sha256:<digest> to set (only in an environment "
                             "that comes first in the promotion order)")
    parser.add_argument("--dry-run", action="store_true", help="print the change; write nothing")
    parser.set_defaults(run=run)


def predecessor(project: Project, info: StackInfo) -> str:
    """The environment promoted right before the stack's own, or a refusal saying why none."""
    order = promotion_order(project.root)  # refuses an order it cannot follow, naming the key
    if info.env not in order:
        why = "is ephemeral, outside the promotion order" if is_ephemeral(info.env, project.root) else \
            "is in no promotion order"
        raise OpsError(f"stack '{info.name}': environment '{info.env}' {why}: it has no previous "
                       f"environment to promote from; set an image with --image REF")
    from ops.stack_config import validated  # the config models cost other commands their import
    before = validated(project, project.stack(info.env)).promotion.after
    if before is None:
        raise OpsError(f"stack '{info.name}': environment '{info.env}' comes first in the promotion "
                       f"order ({' -> '.join(order)}; Pulumi.{info.env}.yaml sets no "
                       f"platform:promotion.after): nothing to promote from; set the image CI built "
                       f"with --image REF")
    return before


def run(args) -> int:
    project = Project.at(getattr(args, "project_dir", None))
    info = project.stack(args.stack)  # an unknown stack: the program's own refusal
    if info.kind != GO_SERVICE:
        kind = "an environment" if info.is_environment else f"a {info.kind}"
        raise OpsError(f"stack '{info.name}' is {kind} stack: `platform promote` sets the "
                       f"image of a Go service ({IMAGE}.ref)")
    if args.image is not None:
        before = predecessor_or_none(project, info)
        if before is not None:
            raise OpsError(f"stack '{info.name}': {IMAGE}.ref is promoted, never set: environment "
                           f"'{info.env}' takes the digest '{before}' runs (`platform promote "
                           f"{info.name}` without --image)")
        image, source = args.image, "--image"
    else:
        before = predecessor(project, info)
        source = f"{info.component}.{before}"
        if not project.stack_file(source).exists():
            raise OpsError(f"stack '{info.name}': environment '{before}' comes before '{info.env}', "
                           f"but it has no stack {source} (no Pulumi.{source}.yaml) to promote from")
        from ops.stack_config import image_ref
        image = image_ref(project.root, source)
        if image is None or not is_pinned(image):
            what = f"'{image}'" if image else "no image reference (an image built at `up` time has no digest)"
            raise OpsError(f"stack '{info.name}': {source} runs {what}, not an image pinned by "
                           f"digest ({IMAGE}.ref in Pulumi.{source}.yaml): nothing to promote; "
                           f"set a digest there first")

    from ops.stack_config import image_ref, validated
    validated(project, info, {IMAGE: {"ref": image}})  # the program's own rules (a digest, a repository)
    current = image_ref(project.root, info.name)
    if current == image:
        print(f"{info.name} already runs {image}; nothing to do")
        return 0
    stack_file = StackFileEditor(project.stack_file(info.name))
    stack_file.set(IMAGE, [], {"ref": image})  # a `build:` goes: a promoted image is never rebuilt
    print(stack_file.diff(), end="")
    if args.dry_run:
        print(f"{info.name}: would run {image} (from {source}); nothing written (--dry-run)")
        return 0
    stack_file.write()
    print(f"{info.name}: {current or '(no image reference)'} -> {image} (from {source}); "
          f"commit Pulumi.{info.name}.yaml, then `platform up {info.name}` (deploy.yml on merge)")
    return 0


def predecessor_or_none(project: Project, info: StackInfo) -> str | None:
    try:
        return predecessor(project, info)
    except OpsError:
        return None
