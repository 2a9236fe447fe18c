"""`platform preview-comment`: one stack's preview as a pull-request comment.

    platform preview-comment PREVIEW [--stack STACK] [--policy-pack DIR]     (an engine preview)
    platform preview-comment --render-diff BASE_DIR HEAD_DIR --stack STACK   (a fork's pull request)
    platform preview-comment --removed --stack STACK                          (a removed stack file)
    platform preview-comment --body FILE                                      (a comment built earlier)
      [--out FILE] [--summary FILE] [--post --pr N [--expect-head SHA]]
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from ops.errors import OpsError

STACK_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*(\.[a-z0-9][a-z0-9-]*)?$")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "preview-comment", help="turn one stack's preview into a pull-request comment",
        description="Write the markdown comment for one stack: from its engine preview (the JSON "
                    "of `platform preview --json`, of `pulumi preview --json`, or an engine event "
                    "log), from the diff of two offline renders (pull requests from forks), or for "
                    "a stack file the change removes. The comment carries a hidden marker of its "
                    "stack: --post edits that stack's comment, or creates it.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("preview", nargs="?", type=Path, metavar="PREVIEW",
                        help="the preview file of one stack")
    source.add_argument("--render-diff", nargs=2, type=Path, metavar=("BASE_DIR", "HEAD_DIR"),
                        help="compare two `python -m offline.render --out DIR` folders instead")
    source.add_argument("--removed", action="store_true",
                        help="the comment for a stack whose stack file the change removes")
    source.add_argument("--body", type=Path, nargs="+", metavar="FILE",
                        help="comments built earlier (by a run that could not post them)")
    parser.add_argument("--stack", help="the stack (required unless PREVIEW names it)")
    parser.add_argument("--commit", help="the commit previewed, shown in the heading")
    parser.add_argument("--base", metavar="SHA", help="with --head: the base the previewed merge "
                        "commit merges the head into, both named in the heading")
    parser.add_argument("--head", metavar="SHA", help="with --base: the pull request's head")
    parser.add_argument("--policy-pack", metavar="DIR",
                        help="the policy pack the preview ran with (named when it found nothing)")
    parser.add_argument("--out", type=Path, metavar="FILE", help="write the comment here (default: stdout)")
    parser.add_argument("--summary", type=Path, metavar="FILE",
                        help="also append the comment to FILE ($GITHUB_STEP_SUMMARY)")
    parser.add_argument("--post", action="store_true",
                        help="create or edit the stack's comment on pull request --pr (needs "
                             "GITHUB_TOKEN and GITHUB_REPOSITORY)")
    parser.add_argument("--pr", type=int, metavar="N", help="the pull request number")
    parser.add_argument("--expect-head", metavar="SHA",
                        help="with --post: refuse unless the pull request's head is still SHA")
    parser.add_argument("--fail-on-error", action="store_true",
                        help="exit 1 after commenting when the preview itself failed")
    parser.set_defaults(run=run)


def _stack(args: argparse.Namespace, required: bool) -> str | None:
    if args.stack is not None and not STACK_NAME.match(args.stack):
        raise OpsError(f"--stack '{args.stack}' is not a stack name ('<env>' or '<component>.<env>')")
    if required and not args.stack:
        raise OpsError("--stack is required with --render-diff and --removed")
    return args.stack


def read_body(path: Path, stack: str | None) -> str:
    """A comment built by an earlier run: it must be one stack's comment, within the limit."""
    from ops.reporting import comments

    try:
        body = path.read_text()
    except OSError as error:
        raise OpsError(f"cannot read the comment {path}: {error.strerror}") from None
    marked = comments.marked_stack(body)
    if marked is None:
        raise OpsError(f"{path} is not a preview comment: it has no stack marker")
    if stack and marked != stack:
        raise OpsError(f"{path} is the comment of stack '{marked}', not '{stack}'")
    if len(body) > comments.LIMIT:
        raise OpsError(f"{path} is {len(body)} characters: over GitHub's {comments.LIMIT}")
    return body


def build(args: argparse.Namespace) -> tuple[list[str], bool]:
    """The comment bodies, and whether the preview they show failed."""
    from ops.reporting import comments

    if args.body is not None:
        return [read_body(path, _stack(args, required=False)) for path in args.body], False
    if args.removed:
        stack = _stack(args, required=True)
        return [comments.removed_comment(stack, stack.rpartition(".")[2], args.commit)], False
    if args.render_diff:
        from ops.reporting.render_diff import render_diff

        stack = _stack(args, required=True)
        base_dir, head_dir = args.render_diff
        chunks, changed = render_diff(base_dir, head_dir, stack)
        return [comments.render_diff_comment(stack, chunks, changed, args.commit,
                                             base=args.base, head=args.head)], False
    report = comments.load_report(args.preview, _stack(args, required=False))
    return [comments.preview_comment(report, args.commit, args.policy_pack, base=args.base, head=args.head)], \
        report.failed or bool(report.errors)


def run(args: argparse.Namespace) -> int:
    from ops.reporting import comments

    if args.post and args.pr is None:
        raise OpsError("--post needs --pr N, the pull request to comment on")
    bodies, failed = build(args)
    if args.out:
        args.out.write_text("".join(bodies))
    elif not args.post:
        sys.stdout.write("".join(bodies))
    if args.summary:
        with args.summary.open("a") as summary:
            for body in bodies:
                summary.write(body.split("\n", 1)[1] + "\n")  # without the marker line
    if args.post:
        from ops.reporting.github import GitHub

        github = GitHub.from_environment()
        if args.expect_head:
            head = github.pull_request_head(args.pr)
            if head != args.expect_head:
                raise OpsError(f"pull request #{args.pr} is now at {head[:12] or 'an unknown commit'}, "
                               f"not {args.expect_head[:12]}: this comment is stale and is not posted")
        for body in bodies:
            stack = comments.marked_stack(body)
            outcome, url = github.upsert_comment(args.pr, body, lambda text, s=stack: comments.belongs_to(text, s))
            print(f"{stack}: comment {outcome} {url}".rstrip(), file=sys.stderr)
    if failed and args.fail_on_error:
        print("error: the preview failed (see the comment)", file=sys.stderr)
        return 1
    return 0
