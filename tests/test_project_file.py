"""Pulumi.yaml runs the program the way the tests do: as the module `infra` from the root."""
from __future__ import annotations

import runpy

import yaml

from infra.stacks import PROJECT_ROOT


def project() -> dict:
    return yaml.safe_load((PROJECT_ROOT / "Pulumi.yaml").read_text())


def test_project_is_a_python_program_run_from_the_project_root():
    runtime = project()["runtime"]
    assert project()["name"] == "platform"
    assert runtime["name"] == "python"
    assert runtime["options"] == {"toolchain": "pip", "virtualenv": ".venv"}
    # `main: infra/` would chdir into infra/ and break `import components` (pulumi#7360).
    assert "main" not in project()


def test_the_root_entry_point_runs_the_infra_package_as_the_tests_do(monkeypatch):
    """The CLI runs ./__main__.py (runpy.run_path on the project folder); it must run the same
    module `infra` the mocked tests run, with the project root importable."""
    calls = []
    monkeypatch.setattr(runpy, "run_module", lambda *a, **k: calls.append((a, k)))
    runpy.run_path(str(PROJECT_ROOT), run_name="__main__")
    assert calls == [(("infra",), {"run_name": "__main__", "alter_sys": True})]
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
