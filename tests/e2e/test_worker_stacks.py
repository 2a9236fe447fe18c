"""Worker stacks under the real CLI, as far as the engine here can take them.

No Cloudflare provider can be built on this machine (its Go module is not served, see
tools/engine/README.md), so nothing a Worker stack creates can be previewed for real: its graph
is proven under Pulumi's mocks (tests/test_cloudflare_worker.py, the render). What runs before
the provider is needed runs here for real, through the language host and the engine: the
program, its config rules, and its read of the environment stack. Each refusal prints one
message, no traceback, and leaves nothing of ours in the state.
"""

from __future__ import annotations

import shutil

import pytest

from infra.stacks import PROJECT_ROOT
from tests.e2e.harness import Workspace
from tests.e2e.test_operator_errors import message, refused, set_config
from tools.cluster import Cluster

STACK = "ai-worker.staging"


@pytest.fixture(scope="module")
def ws(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A workspace of its own, with the built Worker bundle (not tracked) and an empty backend."""
    workspace = Workspace.create(tmp_path_factory.mktemp("workers"), cluster.kubeconfig)
    bundle = "workers/ai-worker/dist/worker.js"
    assert (PROJECT_ROOT / bundle).is_file(), "build the Worker first: make worker"
    (workspace.root / bundle).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT_ROOT / bundle, workspace.root / bundle)
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
