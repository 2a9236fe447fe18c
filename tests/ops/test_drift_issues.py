"""`platform drift-issues`: one issue per drifted stack, edited by each check, closed when clean."""
from __future__ import annotations

import json
from pathlib import Path

from ops.engine.report import FieldChange, Report, Step
from ops.reporting.issues import drift_stack

from tests.ops.conftest import ProjectRepo

SECRET_TOKEN = "tok_live_5f2b7c9e"


def results(tmp_path: Path, statuses: dict[str, str]) -> Path:
    """A `platform drift --all --json` result: stack -> clean, drift or error."""
    document = {}
    for stack, status in statuses.items():
        report = Report(stack=stack)
        if status == "drift":
            report.steps = [Step("update", f"urn:pulumi:{stack}::p::kubernetes:apps/v1:Deployment::api",
                                 "kubernetes:apps/v1:Deployment", "api",
                                 [FieldChange("spec.replicas", "update", 5, 2)]),
                            Step("update", f"urn:pulumi:{stack}::p::kubernetes:core/v1:Secret::env",
                                 "kubernetes:core/v1:Secret", "env",
                                 [FieldChange("stringData.TOKEN", "update", SECRET_TOKEN, "[secret]")])]
        if status == "error":
            report.errors, report.failed = ["stack is locked"], True
        document[stack] = {"status": status, "report": report.to_dict()}
    path = tmp_path / "drift.json"
    path.write_text(json.dumps(document))
    return path


def drift_issues(path: Path, *args: str) -> tuple[int, str, str]:
    return ProjectRepo(Path(".")).platform("drift-issues", str(path), *args)


def test_a_drifted_stack_gets_one_issue_that_the_next_check_edits(github, tmp_path):
    path = results(tmp_path, {"staging": "clean", "api-gateway.staging": "drift"})
    code, _, err = drift_issues(path)
    assert code == 2, err
    assert len(github.issues) == 1
    issue = github.issues[0]
    assert drift_stack(issue["body"]) == "api-gateway.staging" and issue["labels"] == ["drift"]
    assert "`spec.replicas`: `5` → `2`" in issue["body"] and "platform up --refresh api-gateway.staging --yes" in issue["body"]
    assert SECRET_TOKEN not in issue["body"]
    assert drift_issues(path)[0] == 2
    assert len(github.issues) == 1  # edited, not opened again


def test_a_stack_clean_again_has_its_issue_closed_and_no_other(github, tmp_path):
    drift_issues(results(tmp_path, {"staging": "drift", "api-gateway.staging": "drift"}))
    code, _, _ = drift_issues(results(tmp_path, {"staging": "drift", "api-gateway.staging": "clean"}))
    assert code == 2
    states = {drift_stack(i["body"]): i["state"] for i in github.issues}
    assert states == {"staging": "open", "api-gateway.staging": "closed"}
    assert "clean again" in github.comments[[i for i in github.issues if i["state"] == "closed"][0]["number"]][0]["body"]


def test_a_check_that_could_not_run_fails_without_an_issue(github, tmp_path):
    summary = tmp_path / "summary.md"
    code, _, err = drift_issues(results(tmp_path, {"staging": "error"}), "--summary", str(summary))
    assert code == 1 and "staging: the check could not run: stack is locked" in err
    assert github.issues == [] and "| `staging` | error |" in summary.read_text()


def test_a_file_that_is_no_drift_result_is_one_message(github, tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"staging": {"status": "fine"}}')
    code, _, err = drift_issues(path)
    assert code == 1 and err == f"error: {path} is not the output of `platform drift --all --json`\n"
