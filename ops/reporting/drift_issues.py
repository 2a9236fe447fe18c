"""`platform drift-issues RESULTS`: open, update or close one issue per stack from a drift check.

    platform drift --all --json > drift.json; platform drift-issues drift.json

Exit 0 when every stack is clean, 2 when one drifted, 1 when a check could not run.
"""
from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path

DRIFT = 2


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "drift-issues", help="one GitHub issue per drifted stack, from `platform drift --all --json`",
        description="Open or update one issue (label `drift`) per drifted stack, close the issue of "
                    "a stack that is clean again. Needs GITHUB_TOKEN and GITHUB_REPOSITORY.")
    parser.add_argument("results", type=Path, metavar="RESULTS", help="the output of `platform drift --all --json`")
    parser.add_argument("--summary", type=Path, metavar="FILE", help="also append a summary to FILE ($GITHUB_STEP_SUMMARY)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ops.reporting import issues
    from ops.reporting.github import GitHub

    results = issues.load_results(args.results)
    github = GitHub.from_environment()
    checked = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = ["### Drift check", "", "| stack | status | issue |", "|---|---|---|"]
    for stack, result in results.items():
        status, url = result["status"], ""
        if status == "drift":
            outcome, url = github.upsert_issue(
                issues.title(stack), issues.issue_body(result["report"], checked), issues.LABEL,
                lambda body, s=stack: issues.drift_stack(body) == s)
            print(f"{stack}: drift, issue {outcome} {url}", file=sys.stderr)
        elif status == "clean":
            closed = github.close_issues(issues.LABEL, lambda body, s=stack: issues.drift_stack(body) == s,
                                         f"The drift check of {checked} found `{stack}` clean again.")
            url = " ".join(closed)
            print(f"{stack}: clean" + (f", closed {url}" if closed else ""), file=sys.stderr)
        else:
            print(f"{stack}: the check could not run: " + "; ".join(result["report"].errors), file=sys.stderr)
        lines.append(f"| `{stack}` | {status} | {url} |")
    if args.summary:
        with args.summary.open("a") as summary:
            summary.write("\n".join(lines) + "\n")
    statuses = {r["status"] for r in results.values()}
    return 1 if "error" in statuses else (DRIFT if "drift" in statuses else 0)
