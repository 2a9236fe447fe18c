"""Pulumi.yaml runs the program the way the tests do: as the module `infra` from the root."""
from __future__ import annotations

import yaml

from infra.stacks import PROJECT_ROOT


def project() -> dict:
    return yaml.safe_load((PROJECT_ROOT / "Pulumi.yaml").read_text())


def test_project_is_a_python_program_run_as_the_infra_module():
    runtime = project()["runtime"]
    assert project()["name"] == "platform"
    assert runtime["name"] == "python"
    # `main: infra/` would chdir into infra/ and break `import components` (pulumi#7360).
    assert runtime["options"] == {"toolchain": "pip", "virtualenv": ".venv", "module": "infra"}
    assert "main" not in project()
    assert (PROJECT_ROOT / "infra" / "__main__.py").is_file()


def test_default_providers_are_disabled_project_wide():
    assert project()["config"]["pulumi:disable-default-providers"] == {"value": ["*"]}


def test_requirements_pin_every_runtime_package():
    lines = [line.strip() for line in (PROJECT_ROOT / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines and all("==" in line for line in lines)
    names = {line.split("==")[0].lower() for line in lines}
    assert {"pulumi", "pulumi-kubernetes", "pulumi-cloudflare", "pulumi-docker",
            "pydantic"} <= names
