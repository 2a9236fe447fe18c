"""Stack files are edited as an operator would edit them: only the changed values move."""
from __future__ import annotations

import shutil

import pytest

from infra.project import PROJECT_ROOT
from infra.stack_files import StackFileEditor, discover_stacks


@pytest.fixture
def gateway_file(tmp_path):
    path = tmp_path / "Pulumi.api-gateway.staging.yaml"
    shutil.copy(PROJECT_ROOT / path.name, path)
    return path


@pytest.mark.parametrize("stack", discover_stacks())
def test_a_stack_file_written_back_unchanged_is_byte_identical(stack):
    stack_file = StackFileEditor(PROJECT_ROOT / f"Pulumi.{stack}.yaml")
    stack_file.replace_config(stack_file.plain())
    assert stack_file.text() == stack_file.original


def test_setting_replicas_changes_only_those_lines_and_keeps_comments(gateway_file):
    stack_file = StackFileEditor(gateway_file)
    stack_file.set("platform:scaling", ["min_replicas"], 3)
    stack_file.set("platform:scaling", ["max_replicas"], 6)
    changed = [line for line in stack_file.diff().splitlines()
               if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert changed == ["-    min_replicas: 2", "-    max_replicas: 4",
                       "+    min_replicas: 3", "+    max_replicas: 6"]
    stack_file.write()
    text = gateway_file.read_text()
    assert text.startswith("# Go-service stack: the api-gateway in staging.")
    assert "# The AI Worker, on Cloudflare's edge" in text


def test_values_recorded_as_strings_keep_the_files_types(gateway_file):
    """The engine records config values as strings ("8080"); the file says 8080."""
    stack_file = StackFileEditor(gateway_file)
    config = stack_file.plain()
    config["platform:port"] = "8080"
    config["platform:scaling"] = {**config["platform:scaling"], "max_replicas": "5"}
    stack_file.replace_config(config)
    assert stack_file.plain()["platform:port"] == 8080
    assert stack_file.plain()["platform:scaling"]["max_replicas"] == 5


def test_replacing_the_config_removes_absent_keys_and_keeps_the_rest_in_place(gateway_file):
    stack_file = StackFileEditor(gateway_file)
    config = stack_file.plain()
    del config["platform:peers"]
    config["platform:env"] = {**config["platform:env"], "LOG_LEVEL": "info"}
    stack_file.replace_config(config)
    assert "platform:peers" not in stack_file.plain()
    assert list(stack_file.plain()) == list(config)
    assert "+    LOG_LEVEL: info" in stack_file.diff()
