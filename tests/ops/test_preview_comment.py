"""`platform preview-comment`: one comment per stack from the engine's structured preview.

The previews here are written in the engine's own shapes (an event log as `--event-log`
writes it, `pulumi preview --json`, and `platform preview --json`); the e2e suite makes the
same comments from previews of the real engine.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from offline.render import Renderer, render
from ops.engine.report import FieldChange, PolicyResult, Report, Step
from ops.reporting.comments import (
    LIMIT,
    belongs_to,
    load_report,
    marked_stack,
    marker,
    preview_comment,
)

from tests.ops.conftest import ProjectRepo

STACK = "api-gateway.staging"
PREFIX = f"urn:pulumi:{STACK}::platform::platform:go_service:GoService$"
OLD_IMAGE = "registry.example.com/platform/api-gateway@sha256:" + "1" * 64
NEW_IMAGE = "registry.example.com/platform/api-gateway@sha256:" + "2" * 64
SECRET_TOKEN = "tok_live_5f2b7c9e"  # what a secret decrypts to: it must never be printed
SIGNED_SECRET = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
                 "plaintext": json.dumps(SECRET_TOKEN)}


def deployment(image: str) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api-gateway"},
            "spec": {"template": {"spec": {"containers": [{"name": "api-gateway", "image": image}]}}}}


def secret(token) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "api-gateway-env"},
            "stringData": {"WORKER_API_TOKEN": token}}


# One preview: the Deployment's image changes, its Secret's token changes (secret), a new
# ConfigMap replaces the old one, a Service is created and a PDB is deleted.
STEPS = [
    ("update", "kubernetes:apps/v1:Deployment", "api-gateway", deployment(OLD_IMAGE), deployment(NEW_IMAGE),
     {"spec.template.spec.containers[0].image": "update"}),
    ("update", "kubernetes:core/v1:Secret", "api-gateway-env", secret(SIGNED_SECRET), secret(SIGNED_SECRET),
     {"stringData.WORKER_API_TOKEN": "update"}),
    ("replace", "kubernetes:core/v1:ConfigMap", "api-gateway-files", {"immutable": True, "data": {"a": "1"}},
     {"immutable": True, "data": {"a": "2"}}, {"data.a": "update-replace"}),
    ("create", "kubernetes:core/v1:Service", "api-gateway", None, {"spec": {"type": "ClusterIP"}}, {}),
    ("delete", "kubernetes:policy/v1:PodDisruptionBudget", "api-gateway-pdb", {"spec": {"minAvailable": 1}}, None, {}),
    ("same", "kubernetes:core/v1:ServiceAccount", "api-gateway", {"a": 1}, {"a": 1}, {}),
]
COUNTS = {"update": 2, "replace": 1, "create": 1, "delete": 1, "same": 1}


def engine_events() -> list[dict]:
    events, sequence = [], 0
    for op, type_, name, old, new, detailed in STEPS:
        urn = PREFIX + f"{type_}::{name}"
        ops = ["create-replacement", "replace", "delete-replaced"] if op == "replace" else [op]
        for one in ops:
            sequence += 1
            metadata = {"op": one, "urn": urn, "type": type_, "provider": "urn:...::default",
                        "diffs": sorted({p.split(".")[0] for p in detailed}),
                        "detailedDiff": {p: {"diffKind": k, "inputDiff": True} for p, k in detailed.items()}}
            if old is not None:
                metadata["old"] = {"type": type_, "urn": urn, "inputs": old}
            if new is not None:
                metadata["new"] = {"type": type_, "urn": urn, "inputs": new}
            events.append({"sequence": sequence, "timestamp": 1, "resourcePreEvent": {"metadata": metadata}})
    events.append({"sequence": sequence + 1, "timestamp": 2,
                   "summaryEvent": {"maybeCorrupt": False, "durationSeconds": 3,
                                    "resourceChanges": COUNTS, "PolicyPacks": {}}})
    return events


def cli_preview_json() -> dict:
    steps = []
    for op, type_, name, old, new, detailed in STEPS:
        urn = PREFIX + f"{type_}::{name}"
        step = {"op": op, "urn": urn, "provider": "urn:...::default",
                "diffReasons": sorted({p.split(".")[0] for p in detailed}),
                "detailedDiff": {p: {"kind": k, "inputDiff": True} for p, k in detailed.items()}}
        if old is not None:
            step["oldState"] = {"urn": urn, "type": type_, "inputs": old}
        if new is not None:
            step["newState"] = {"urn": urn, "type": type_, "inputs": new}
        steps.append(step)
    return {"config": {}, "steps": steps, "duration": 3000000000, "changeSummary": COUNTS}


@pytest.fixture(params=["event-log", "pulumi-preview-json", "platform-preview-json"])
def preview_file(request, tmp_path) -> Path:
    """The same preview in each form `preview-comment` reads."""
    path = tmp_path / "preview.json"
    if request.param == "event-log":
        path.write_text("".join(json.dumps(e) + "\n" for e in engine_events()))
    elif request.param == "pulumi-preview-json":
        path.write_text(json.dumps(cli_preview_json()))
    else:
        path.write_text(json.dumps(load_report(_write(tmp_path / "events.jsonl", engine_events()), STACK).to_dict()))
    return path


def _write(path: Path, events: list[dict]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def comment_for(*args: str) -> tuple[int, str, str]:
    """`platform preview-comment ARGS` in this process: (exit code, stdout, stderr)."""
    return ProjectRepo(Path(".")).platform("preview-comment", *args)


# -- what a comment says ---------------------------------------------------------------------


def test_the_comment_counts_each_kind_of_change_and_has_one_line_per_changed_resource(preview_file):
    code, body, err = comment_for(str(preview_file), "--stack", STACK)
    assert code == 0, err
    assert "**1** to create · **2** to update · **1** to replace · **1** to delete" in body
    rows = [line for line in body.splitlines() if line.startswith("| ") and "`kubernetes:" in line]
    assert [row.split("|")[2].strip() for row in rows] == [
        "`api-gateway`", "`api-gateway-env`", "`api-gateway-files`", "`api-gateway`", "`api-gateway-pdb`"]
    assert "**replace**" in rows[2] and "**replace**" not in "".join(rows[:2] + rows[3:])
    assert "replaces or deletes" in body


def test_changed_fields_show_the_old_and_the_new_value(preview_file):
    _, body, _ = comment_for(str(preview_file), "--stack", STACK)
    assert f"`spec.template.spec.containers[0].image`: `{OLD_IMAGE}` → `{NEW_IMAGE}`" in body
    assert "`data.a`: `1` → `2` (forces replacement)" in body


def test_no_secret_value_ever_reaches_the_comment(preview_file):
    _, body, _ = comment_for(str(preview_file), "--stack", STACK)
    assert SECRET_TOKEN not in body and "plaintext" not in body
    assert "`stringData.WORKER_API_TOKEN`: `[secret]` → `[secret]`" in body


def test_a_kubernetes_secret_field_is_masked_even_when_the_preview_shows_it_plain():
    report = Report(stack=STACK, steps=[Step("update", PREFIX + "kubernetes:core/v1:Secret::s",
                                             "kubernetes:core/v1:Secret", "s",
                                             [FieldChange("stringData.TOKEN", "update", "old-plain", SECRET_TOKEN)])])
    body = preview_comment(report)
    assert SECRET_TOKEN not in body and "old-plain" not in body


def test_a_stack_with_nothing_to_do_says_so():
    body = preview_comment(Report(stack="production", counts={"same": 5}))
    assert "No changes" in body and "to update" not in body


def test_a_new_stack_is_said_to_be_new_never_up_to_date():
    body = preview_comment(Report(stack="api-gateway.staging", new_stack=True, warnings=["not in the backend"]))
    assert "New stack: the backend does not hold it yet" in body
    assert "No changes" not in body and "failed" not in body


def test_a_failed_preview_shows_the_engine_errors_first():
    report = Report(stack=STACK, errors=["stack 'api-gateway.staging': invalid config (1 problem):\n"
                                         "  - platform:port: Input should be greater than or equal to 1024"])
    body = preview_comment(report)
    assert body.index("The preview failed") < body.index("platform:port")
    assert "No changes" not in body


def test_policy_results_are_listed_when_the_pack_found_something():
    report = Report(stack=STACK, steps=[], policies=[PolicyResult(
        "platform", "images-pinned-by-digest", "mandatory", "image must be pinned | by digest",
        PREFIX + "kubernetes:apps/v1:Deployment::api-gateway")])
    body = preview_comment(report, policy_pack="policy")
    assert "| mandatory | `platform/images-pinned-by-digest` | `api-gateway` | image must be pinned \\| by digest |" in body


def test_a_pack_that_found_nothing_is_named_as_having_run():
    assert "Policy pack `policy`: no violations." in preview_comment(Report(stack=STACK), policy_pack="policy")
    assert "Policy pack" not in preview_comment(Report(stack=STACK))


# -- one comment per stack, never another stack's ----------------------------------------------


def test_each_comment_is_marked_with_exactly_its_stack():
    dev, dev_tokyo = preview_comment(Report(stack="dev")), preview_comment(Report(stack="dev-tokyo"))
    assert dev.splitlines()[0] == marker("dev") and marked_stack(dev_tokyo) == "dev-tokyo"
    assert belongs_to(dev, "dev") and not belongs_to(dev, "dev-tokyo")
    assert belongs_to(dev_tokyo, "dev-tokyo") and not belongs_to(dev_tokyo, "dev")
    assert not belongs_to("### Preview of `dev`", "dev")  # a heading is no marker


def test_re_runs_edit_each_stack_own_comment_and_never_another(github, tmp_path):
    def post(stack: str, image: str) -> None:
        report = Report(stack=stack, steps=[Step("update", f"urn:pulumi:{stack}::p::d", "kubernetes:apps/v1:Deployment",
                                                 "api", [FieldChange("image", "update", OLD_IMAGE, image)])])
        preview = tmp_path / f"{stack}.json"
        preview.write_text(json.dumps(report.to_dict()))
        code, _, err = comment_for(str(preview), "--post", "--pr", "7")
        assert code == 0, err

    github.comments[7] = [{"id": 1, "body": "Looks good to me", "html_url": "u"}]
    post("dev-tokyo", NEW_IMAGE)
    post("dev", NEW_IMAGE)
    post("dev", OLD_IMAGE)  # a re-run after a new push
    bodies = [c["body"] for c in github.comments[7]]
    assert bodies[0] == "Looks good to me"
    assert [marked_stack(b) for b in bodies[1:]] == ["dev-tokyo", "dev"]
    assert NEW_IMAGE in bodies[1] and f"`{OLD_IMAGE}` → `{OLD_IMAGE}`" in bodies[2]
    assert [m for m, _ in github.requests].count("POST") == 2 and [m for m, _ in github.requests].count("PATCH") == 1


def test_comments_past_the_first_page_are_found(github, tmp_path):
    github.comments[7] = [{"id": i, "body": f"comment {i}", "html_url": "u"} for i in range(1, 151)]
    github.comments[7].append({"id": 151, "body": preview_comment(Report(stack="staging")), "html_url": "u"})
    preview = tmp_path / "p.json"
    preview.write_text(json.dumps(Report(stack="staging", counts={"update": 1}).to_dict()))
    assert comment_for(str(preview), "--post", "--pr", "7")[0] == 0
    assert len(github.comments[7]) == 151 and "to update" in github.comments[7][-1]["body"]


def test_a_pull_requests_comment_names_the_merge_commit_and_the_base_and_head_it_merges(tmp_path):
    preview = tmp_path / "p.json"
    preview.write_text(json.dumps(Report(stack="staging").to_dict()))
    merge, base, head = "a" * 40, "b" * 40, "c" * 40
    code, body, _ = comment_for(str(preview), "--commit", merge, "--base", base, "--head", head)
    assert code == 0
    assert f"### Preview of `staging` at {merge[:12]} (head {head[:12]} merged into base {base[:12]})" in body


def test_the_job_summary_gets_the_comment_without_its_marker(tmp_path):
    preview, summary = tmp_path / "p.json", tmp_path / "summary.md"
    preview.write_text(json.dumps(Report(stack="staging").to_dict()))
    summary.write_text("earlier\n")
    code, body, _ = comment_for(str(preview), "--summary", str(summary))
    assert code == 0
    assert summary.read_text().startswith("earlier\n### Preview of `staging`")
    assert marker("staging") not in summary.read_text() and body.startswith(marker("staging"))


# -- GitHub's size limit -----------------------------------------------------------------------


def test_a_huge_preview_stays_under_the_limit_cutting_details_before_the_summary():
    steps = [Step("update", PREFIX + f"kubernetes:core/v1:ConfigMap::cm-{i}", "kubernetes:core/v1:ConfigMap",
                  f"cm-{i}", [FieldChange(f"data.file{j}", "update", "x" * 400, "y" * 400) for j in range(5)])
             for i in range(3000)]
    body = preview_comment(Report(stack=STACK, steps=steps, counts={"update": 3000}))
    assert len(body) <= LIMIT
    assert body.startswith(marker(STACK))
    assert "**0** to create · **3000** to update" in body
    assert "cut to fit GitHub's comment limit" in body
    rows = [line for line in body.splitlines() if line.startswith("| ~ update")]
    assert 0 < len(rows) < 3000


def test_details_are_cut_before_any_resource_row():
    steps = [Step("update", PREFIX + f"t::r{i}", "t", f"r{i}", [FieldChange("data", "update", "a" * 250, "b" * 250)])
             for i in range(100)]
    body = preview_comment(Report(stack=STACK, steps=steps), limit=12000)
    assert len(body) <= 12000
    assert len([line for line in body.splitlines() if line.startswith("| ~ update")]) == 100


# -- forks: the offline render diff ------------------------------------------------------------


def test_a_fork_gets_the_render_diff_of_exactly_what_changed(tmp_path):
    base, head = tmp_path / "base", tmp_path / "head"
    assert render([STACK], base) == []
    assert render([STACK], head, Renderer(overrides={STACK: {"platform:image": {"ref": NEW_IMAGE}}})) == []
    code, body, err = comment_for("--render-diff", str(base), str(head), "--stack", STACK)
    assert code == 0, err
    assert marked_stack(body) == STACK and "Offline render diff" in body
    assert "**1** rendered file(s) differ: `deployment-api-gateway.yaml`" in body
    added = [line for line in body.splitlines() if line.startswith("+") and not line.startswith("+++")]
    assert added == [f"+        image: {NEW_IMAGE}"]
    assert "[secret]" not in "".join(added)


def test_a_fork_change_that_renders_the_same_says_so(tmp_path):
    assert render(["staging"], tmp_path / "base") == [] and render(["staging"], tmp_path / "head") == []
    _, body, _ = comment_for("--render-diff", str(tmp_path / "base"), str(tmp_path / "head"), "--stack", "staging")
    assert "No differences" in body


def test_a_comment_built_by_a_fork_run_is_posted_only_to_its_unchanged_pull_request(github, tmp_path):
    body = tmp_path / "comment.md"
    body.write_text(preview_comment(Report(stack="staging", counts={"update": 1})))
    github.pulls[9] = {"number": 9, "head": {"sha": "a" * 40}}
    assert comment_for("--body", str(body), "--post", "--pr", "9", "--expect-head", "a" * 40)[0] == 0
    assert marked_stack(github.comments[9][0]["body"]) == "staging"
    code, _, err = comment_for("--body", str(body), "--post", "--pr", "9", "--expect-head", "b" * 40)
    assert code == 1 and "is now at aaaaaaaaaaaa, not bbbbbbbbbbbb: this comment is stale" in err


def test_a_removed_stack_gets_a_comment_that_promises_no_silent_teardown():
    code, body, _ = comment_for("--removed", "--stack", "ai-worker.staging")
    assert code == 0 and marked_stack(body) == "ai-worker.staging"
    assert "does **not** destroy" in body and "platform destroy ai-worker.staging --yes" in body


# -- bad input: one message, exit 1 ------------------------------------------------------------


@pytest.mark.parametrize("content, message", [
    ("{}", "is not a preview"),
    ("not json at all", "is not a preview"),
    (json.dumps(cli_preview_json()), "does not name its stack: pass --stack"),
])
def test_a_file_that_is_no_preview_of_a_named_stack_is_refused(tmp_path, content, message):
    path = tmp_path / "p.json"
    path.write_text(content)
    code, out, err = comment_for(str(path))
    assert code == 1 and out == "" and message in err and err.startswith("error: ")


def test_a_missing_preview_file_is_one_message(tmp_path):
    code, _, err = comment_for(str(tmp_path / "nope.json"), "--stack", STACK)
    assert code == 1 and err == f"error: cannot read the preview {tmp_path / 'nope.json'}: No such file or directory\n"


def test_a_report_of_another_stack_is_refused(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps(Report(stack="staging").to_dict()))
    code, _, err = comment_for(str(path), "--stack", "production")
    assert code == 1 and "is the preview of stack 'staging', not 'production'" in err


def test_posting_needs_a_pull_request_and_credentials(tmp_path, monkeypatch):
    path = tmp_path / "p.json"
    path.write_text(json.dumps(Report(stack="staging").to_dict()))
    assert "--post needs --pr N" in comment_for(str(path), "--post")[2]
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    monkeypatch.setenv("GITHUB_REPOSITORY", "example/platform")
    code, _, err = comment_for(str(path), "--post", "--pr", "3")
    assert code == 1 and "posting to GitHub needs GITHUB_TOKEN in the environment" in err


def test_a_refusal_from_github_is_one_message_without_the_token(github, tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps(Report(stack="staging").to_dict()))
    github.fail_with = 403
    code, _, err = comment_for(str(path), "--post", "--pr", "3")
    assert code == 1
    assert err.startswith("error: GitHub answered 403 to GET /repos/example/platform/issues/3/comments")
    assert github.token not in err


def test_a_failed_preview_is_commented_and_then_fails_the_step(github, tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps(Report(stack="staging", errors=["boom"], failed=True).to_dict()))
    code, _, err = comment_for(str(path), "--post", "--pr", "4", "--fail-on-error")
    assert code == 1 and err.endswith("error: the preview failed (see the comment)\n")
    assert "The preview failed" in github.comments[4][0]["body"]
    assert comment_for(str(path), "--post", "--pr", "4")[0] == 0  # without the flag: commented only


def test_several_comments_of_a_fork_run_each_go_to_their_own_stack(github, tmp_path):
    paths = []
    for stack in ("staging", "api-gateway.staging"):
        paths.append(tmp_path / f"{stack}.md")
        paths[-1].write_text(preview_comment(Report(stack=stack)))
    assert comment_for("--body", *map(str, paths), "--post", "--pr", "5")[0] == 0
    assert [marked_stack(c["body"]) for c in github.comments[5]] == ["staging", "api-gateway.staging"]
