"""Pulumi.yaml runs the program the way the tests do: as the module `infra` from the root."""
from __future__ import annotations

import pytest
import yaml

from infra.errors import ConfigError
from infra.project import PROJECT_ROOT
from infra.stack_files import read_stack_config
from offline.mock_engine import StackRun, run_stack
from offline.render import graph


def project() -> dict:
    return yaml.safe_load((PROJECT_ROOT / "Pulumi.yaml").read_text())


def test_project_is_a_python_program_run_from_the_project_root():
    runtime = project()["runtime"]
    assert project()["name"] == "platform"
    assert runtime["name"] == "python"
    assert runtime["options"] == {"toolchain": "pip", "virtualenv": ".venv"}
    # `main: infra/` would chdir into infra/ and break `import components` (pulumi#7360).
    assert "main" not in project()


@pytest.mark.parametrize("stack", ["staging", "api-gateway.staging", "ai-worker.staging"])
def test_the_clis_entry_point_runs_the_program_the_tests_run(repo_renderer, stack):
    """The language host runs the project folder (runpy.run_path: its __main__.py, the folder
    first on sys.path); that must register what the module `infra`, which the mocked tests
    and the render run, registers."""
    run = run_stack(stack, read_stack_config(stack), resolve_stack=repo_renderer._outputs_of,
                    entry_point=PROJECT_ROOT)
    assert graph(run) == graph(repo_renderer.run(stack))


def test_the_entry_point_reports_bad_config_as_the_program_does():
    config = read_stack_config("api-gateway.staging", overrides={"platform:port": 80})
    attempt = StackRun(stack="api-gateway.staging")
    with pytest.raises(ConfigError, match="platform:port: Input should be greater than or equal"):
        run_stack("api-gateway.staging", config, entry_point=PROJECT_ROOT, run=attempt)
    assert attempt.resources == []


def test_default_providers_are_disabled_project_wide():
    assert project()["config"]["pulumi:disable-default-providers"] == {"value": ["*"]}


def test_requirements_pin_every_runtime_package():
    lines = [line.strip() for line in (PROJECT_ROOT / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines and all("==" in line for line in lines)
    names = {line.split("==")[0].lower() for line in lines}
    assert {"pulumi", "pulumi-kubernetes", "pulumi-cloudflare", "pulumi-docker",
            "pydantic"} <= names
