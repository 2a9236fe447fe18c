"""What a program run pays to start: each stack imports only its own provider SDK (the Cloudflare
SDK alone costs 2.3 s compiled, 170 MiB), and the SDKs come compiled."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from infra.project import PROJECT_ROOT

from tests.conftest import ALL_STACKS, kind_of

EXPECTED_SDKS = {"environment": ["pulumi_kubernetes"], "go-service": ["pulumi_kubernetes"],
                 "cloudflare-worker": ["pulumi_cloudflare"]}


@pytest.fixture(scope="module")
def environment_outputs(tmp_path_factory, repo_renderer):
    path = tmp_path_factory.mktemp("outputs") / "environments.json"
    path.write_text(json.dumps({s: repo_renderer.run(s).outputs for s in ALL_STACKS
                                if "." not in s}))
    return path


@pytest.mark.parametrize("stack", ALL_STACKS)
def test_stack_imports_only_the_provider_sdk_it_uses(environment_outputs, stack):
    child = subprocess.run([sys.executable, "-m", "offline.bench", "--one", stack, "--outputs",
                            str(environment_outputs)], cwd=PROJECT_ROOT, capture_output=True,
                           text=True, check=True, timeout=120)
    report = json.loads(child.stdout.strip().splitlines()[-1])
    assert report["sdks"] == EXPECTED_SDKS[kind_of(stack)]


# The heaviest imports of a program run, a policy pack run and a `platform` command.
STARTUP_MODULES = ["pulumi", "pulumi_policy", "pulumi_kubernetes.core.v1._inputs",
                   "pulumi_kubernetes.apps.v1._inputs", "pulumi_cloudflare", "pydantic"]


@pytest.mark.parametrize("module", STARTUP_MODULES)
def test_the_virtualenv_holds_each_sdks_bytecode(module):
    """Where PYTHONDONTWRITEBYTECODE is set (as on many CI images) an import never writes its
    bytecode, so unless the install compiled it (`make venv`: uv with UV_COMPILE_BYTECODE) every
    process compiles the SDKs from source again: 9 s for pulumi_cloudflare alone, against 2.3."""
    source = importlib.util.find_spec(module).origin
    bytecode = importlib.util.cache_from_source(source)
    assert Path(bytecode).is_file(), (
        f"{module}: no bytecode beside {source}; the virtualenv was installed without compiling "
        "it: recreate it with `rm -rf .venv && make venv`")
