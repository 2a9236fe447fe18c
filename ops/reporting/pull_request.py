"""`platform pull-request --branch B --title T --body-file F [PATH ...]`: the stack files a CI
run changed (an image CI pushed, a rollback), proposed to the default branch as one pull request,
so a stack file reaches `main` only through review and always says what runs.

The files are those named, else every `Pulumi.*.yaml` the checkout changed (`git diff`); none
changed: no branch, no pull request, exit 0. Needs GITHUB_TOKEN (`contents: write`,
`pull-requests: write`) and GITHUB_REPOSITORY.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ops.errors import OpsError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "pull-request", help="propose the stack files a CI run changed as one pull request")
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="files to propose (default: every Pulumi.*.yaml git sees changed)")
    parser.add_argument("--branch", required=True, help="the new branch (unique per run)")
    parser.add_argument("--title", required=True, help="the commits' message and the pull request's title")
    parser.add_argument("--body-file", type=Path, required=True, metavar="FILE",
                        help="the pull request's description")
    parser.add_argument("--summary", type=Path, metavar="FILE",
                        help="also append the outcome to FILE ($GITHUB_STEP_SUMMARY)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ops.planning.git import changed_files
    from ops.reporting.github import GitHub

    paths = args.paths or changed_files(Path.cwd(), "Pulumi.*.yaml")
    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        raise OpsError(f"nothing to propose from {', '.join(missing)}: no such file")
    try:
        body = args.body_file.read_text()
    except OSError as error:
        raise OpsError(f"--body-file {args.body_file}: {error.strerror}") from None
    if not paths:
        outcome = "no stack file changed: no pull request"
    else:
        url = GitHub.from_environment().propose_files(
            args.branch, args.title, body, {p: Path(p).read_bytes() for p in paths})
        outcome = f"pull request {url}: {', '.join(paths)} on branch {args.branch}"
    print(outcome, file=sys.stderr)
    if args.summary:
        with args.summary.open("a") as summary:
            summary.write(outcome + "\n")
    return 0
