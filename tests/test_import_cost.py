"""Each stack imports only its own provider SDK (the Cloudflare SDK alone costs ~1.4 s, 170 MiB)."""
from __future__ import annotations

import json
import subprocess
import sys

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
