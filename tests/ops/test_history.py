"""Which update a version number means, what it ran with, and what a rollback restores:
decided on history records captured from the real CLI (tests/ops/records)."""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from pulumi import automation as auto

from infra.stack_files import StackFileEditor
from ops.engine.updates import SECRET, number, restored_config, rollback_target, settings_of
from ops.errors import OpsError

RECORDS = Path(__file__).parent / "records"
STACK = "api-gateway.production"
# The stack file as it was when the records were captured: what those updates ran with.
RECORDED_STACK_FILE = RECORDS / f"Pulumi.{STACK}.yaml"
NEW_IMAGE = "registry.example.com/platform/api-gateway@sha256:" + "ab" * 32


def cli_records() -> list[dict]:
    """`pulumi stack history --json`, newest first, every version 0 (a file backend)."""
    return json.loads((RECORDS / f"{STACK}.history.json").read_text())


def api_summaries() -> list[auto.UpdateSummary]:
    """The same records as the Automation API's Stack.history() gives them."""
    def parse(value):
        return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None
    return [auto.UpdateSummary(kind=r["kind"], start_time=parse(r["startTime"]), message=r["message"],
                               environment=r["environment"], config=r["config"], result=r["result"],
                               end_time=parse(r.get("endTime")), version=r["version"],
                               deployment=None, resource_changes=r.get("resourceChanges"))
            for r in cli_records()]


@pytest.fixture(params=["cli-json", "automation-api"])
def updates(request):
    return number(cli_records() if request.param == "cli-json" else api_summaries())


def test_a_self_managed_backends_updates_are_numbered_oldest_first(updates):
    assert all(r["version"] == 0 for r in cli_records())
    assert [u.version for u in updates] == list(range(1, 9))
    assert [u.result for u in updates] == ["failed"] * 5 + ["succeeded"] * 3
    assert updates[-1].start_time >= updates[0].start_time


def test_the_settings_that_matter_are_read_from_each_updates_config(updates):
    original = StackFileEditor(RECORDED_STACK_FILE).plain()
    first_up, scale, image = updates[5], updates[6], updates[7]
    assert settings_of("go-service", first_up) == {
        "image": original["platform:image"]["ref"], "min_replicas": 3, "max_replicas": 10}
    assert settings_of("go-service", scale) == {"image": original["platform:image"]["ref"],
                                                "min_replicas": 4, "max_replicas": 8}
    assert scale.message == "scale to min 4, max 8"
    assert settings_of("go-service", image)["image"] == NEW_IMAGE


def test_a_secret_is_recorded_as_present_and_never_readable(updates):
    assert updates[-1].config["platform:secret_env"] is SECRET
    assert "[secret]" == repr(SECRET)


def test_a_rollback_goes_only_to_an_update_that_exists_and_succeeded(updates):
    assert rollback_target(updates, 6, STACK).version == 6
    with pytest.raises(OpsError, match=rf"stack '{STACK}' has no update 99 \(its updates are 1 to 8"):
        rollback_target(updates, 99, STACK)
    with pytest.raises(OpsError, match=r"update 3 is a failed update; roll back to a succeeded update"):
        rollback_target(updates, 3, STACK)
    with pytest.raises(OpsError, match="has never been deployed"):
        rollback_target([], 1, STACK)


def test_rolling_forward_restores_the_recorded_plain_config_and_keeps_todays_secrets(updates):
    stack_file = StackFileEditor(RECORDED_STACK_FILE)
    current = stack_file.plain()
    current["platform:image"] = {"ref": NEW_IMAGE}
    current["platform:scaling"] = {**current["platform:scaling"], "min_replicas": 4, "max_replicas": 8}
    current["platform:env"] = {**current["platform:env"], "LOG_LEVEL": "debug"}

    restored, missing = restored_config(current, updates[5].config)

    original = stack_file.plain()
    assert missing == []
    assert restored["platform:image"] == original["platform:image"]
    assert restored["platform:scaling"] == original["platform:scaling"]
    assert restored["platform:env"]["LOG_LEVEL"] == original["platform:env"]["LOG_LEVEL"]
    assert restored["platform:secret_env"] == current["platform:secret_env"]  # the ciphertext of today
    assert set(restored) == set(original)
    stack_file.replace_config(restored)
    assert stack_file.text() == stack_file.original  # that update ran with the committed file


def test_a_secret_the_stack_no_longer_sets_is_named_not_invented(updates):
    current = StackFileEditor(RECORDED_STACK_FILE).plain()
    del current["platform:secret_env"]
    restored, missing = restored_config(current, updates[5].config)
    assert missing == ["platform:secret_env"]
    assert "platform:secret_env" not in restored


def test_every_page_of_a_long_history_is_read_so_the_newest_update_keeps_its_number():
    """The CLI lists ten updates a page unless asked for more; a stack with 250 updates on a
    self-managed backend (every version 0) numbers its newest 250, not 10."""
    from ops.engine import updates as module

    records = [dict(cli_records()[0], message=f"update {n}") for n in range(250, 0, -1)]  # newest first
    asked = []

    def page_of(size: int, page: int) -> list[dict]:
        asked.append((size, page))
        return records[(page - 1) * size: page * size]

    numbered = number(module.every_summary(page_of))
    assert [u.version for u in numbered] == list(range(1, 251))
    assert numbered[-1].message == "update 250" and numbered[0].message == "update 1"
    assert asked == [(module.HISTORY_PAGE, page) for page in (1, 2, 3)]


def test_a_history_that_fills_its_last_page_exactly_is_read_to_the_empty_page_after():
    from ops.engine import updates as module

    records = [cli_records()[0]] * module.HISTORY_PAGE
    pages = []

    def page_of(size: int, page: int) -> list[dict]:
        pages.append(page)
        return records[(page - 1) * size: page * size]

    assert len(module.every_summary(page_of)) == module.HISTORY_PAGE and pages == [1, 2]
