"""What a preview would change, from the engine's own events and from `pulumi preview --json`
captured from the real CLI (tests/ops/records): the same report either way, secrets masked."""
from __future__ import annotations

import io
import json
from pathlib import Path

from pulumi import automation as auto

from ops.engine.progress import Progress
from ops.engine.report import Report, ReportBuilder, field_changes, report_from_cli_json

RECORDS = Path(__file__).parent / "records"
STACK = "api-gateway.production"
IMAGE_PATH = "spec.template.spec.containers[0].image"


def events() -> list[auto.EngineEvent]:
    lines = (RECORDS / f"{STACK}.preview-events.jsonl").read_text().splitlines()
    return [auto.EngineEvent.from_json(json.loads(line)) for line in lines if line.strip()]


def from_events() -> Report:
    builder = ReportBuilder(STACK)
    for event in events():
        builder(event)
    return builder.report


def test_an_image_change_is_one_deployment_update_with_the_image_field():
    report = from_events()
    assert report.counts == {"same": 10, "update": 1}
    [step] = report.changed_steps
    assert (step.op, step.type, step.name) == ("update", "kubernetes:apps/v1:Deployment",
                                                "api-gateway-deployment")
    [field] = step.fields
    assert field.path == IMAGE_PATH and field.kind == "update"
    assert field.old.startswith("registry.example.com/platform/api-gateway@sha256:ab")
    assert field.new.startswith("registry.example.com/platform/api-gateway@sha256:cd")
    assert not report.failed and not report.errors


def test_pulumi_preview_json_gives_the_same_kind_of_report():
    report = report_from_cli_json(STACK, json.loads((RECORDS / f"{STACK}.preview.json").read_text()))
    assert report.counts == {"same": 10, "update": 1}
    [step] = report.changed_steps
    assert step.type == "kubernetes:apps/v1:Deployment" and step.fields[0].path == IMAGE_PATH


def test_a_report_survives_its_json_form():
    report = from_events()
    assert Report.from_dict(json.loads(json.dumps(report.to_dict()))).to_dict() == report.to_dict()


def test_a_changed_secret_field_shows_as_secret_never_as_its_value():
    """The engine's events carry a Secret's data wrapped and masked; a change to it is shown as
    `[secret]` on both sides, whatever path the diff names."""
    [secret] = [e.resource_pre_event.metadata for e in events() if e.resource_pre_event is not None
                and e.resource_pre_event.metadata.type == "kubernetes:core/v1:Secret"]
    changes = field_changes(secret.old.inputs, secret.new.inputs,
                            {"data": "update", "data.WORKER_API_TOKEN": "update"}, [])
    assert [(c.path, c.old, c.new) for c in changes] == [
        ("data", "[secret]", "[secret]"), ("data.WORKER_API_TOKEN", "[secret]", "[secret]")]


def test_progress_prints_one_line_per_planned_change_and_the_summary():
    out = io.StringIO()
    progress = Progress(out, STACK, preview=True)
    for event in events():
        progress(event)
    lines = out.getvalue().splitlines()
    assert lines[0] == "  ~  update   kubernetes:apps/v1:Deployment  api-gateway-deployment"
    assert lines[1].startswith(f"{STACK}: 10 same, 1 update (")
    assert len(lines) == 2


def test_a_label_whose_key_holds_dots_shows_its_old_and_new_values():
    old = {"metadata": {"labels": {"app.kubernetes.io/name": "api-gateway"}}}
    new = {"metadata": {"labels": {"app.kubernetes.io/name": "api-gateway",
                                   "app.kubernetes.io/managed-by": "pulumi"}}}
    (change,) = field_changes(old, new, {'metadata.labels["app.kubernetes.io/managed-by"]': "add"}, [])
    assert (change.old, change.new) == (None, "pulumi")
    (change,) = field_changes(new, old, {'metadata.labels["app.kubernetes.io/name"]': "update"}, [])
    assert (change.old, change.new) == ("api-gateway", "api-gateway")
