"""Worker stacks under the real CLI, as far as the engine here can take them.

No Cloudflare provider can be built on this machine (its Go module is not served, see
tools/engine/README.md), so nothing a Worker stack creates can be previewed for real: its graph
is proven under Pulumi's mocks (tests/test_cloudflare_worker.py, the render). What runs before
the provider is needed runs here for real, through the language host and the engine: the
program, its config rules, and its read of the environment stack. Each refusal prints one
message, no traceback, and leaves nothing of ours in the state.
"""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

import pytest

from infra.project import PROJECT_ROOT
from tools.cluster import Cluster

from tests.e2e.harness import Workspace
from tests.e2e.test_operator_errors import message, refused, set_config

STACK = "ai-worker.staging"


@pytest.fixture
def ws(cluster: Cluster, tmp_path: Path) -> Workspace:
    """A workspace of its own per test, with the built Worker bundle (not tracked), an empty
    backend, and its environment in a namespace of its own on the process's cluster."""
    workspace = Workspace.create(tmp_path, cluster.kubeconfig)
    bundle = "workers/ai-worker/dist/worker.js"
    assert (PROJECT_ROOT / bundle).is_file(), "build the Worker first: make worker"
    (workspace.root / bundle).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT_ROOT / bundle, workspace.root / bundle)
    workspace.use_namespace("staging", f"workers-{secrets.token_hex(3)}")
    workspace.init_stack(STACK)
    return workspace


def test_a_worker_stack_whose_environment_stack_does_not_exist_is_refused(ws: Workspace):
    for output in refused(ws, STACK):
        assert 'unknown stack "organization/platform/staging"' in output, output


def test_a_worker_stack_whose_environment_was_never_deployed_names_what_to_run(ws: Workspace):
    ws.init_stack("staging")
    for output in refused(ws, STACK):
        assert (f"stack '{STACK}': environment stack 'organization/platform/staging' lacks "
                "output(s) environment, namespace, kubernetes_context") in output, output
        assert "run `pulumi up -s staging` first" in output, output


def test_a_route_outside_the_environments_zone_is_refused_after_reading_it(ws: Workspace):
    ws.init_stack("staging")
    ws.pulumi("up", "--yes", "--skip-preview", "-s", "staging")
    set_config(ws, STACK, "platform:routes[0]", "ai.example.org/*")
    for output in refused(ws, STACK):
        assert ("platform:routes[0]: 'ai.example.org' is outside the staging zone 'example.com'"
                in message(output)), output


def test_an_invalid_rollout_is_refused_before_the_environment_is_read(ws: Workspace):
    set_config(ws, STACK, "platform:rollout.percentage", "10")
    for output in refused(ws, STACK):
        assert ("platform:rollout.stable_version_id: required when percentage is below 100"
                in message(output)), output
        assert "StackReference" not in output, output
