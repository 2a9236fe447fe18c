"""The policy pack inside real previews and updates: `pulumi preview --policy-pack policy` and
`pulumi up --policy-pack policy` run it through the language host's RunPlugin, with the stack's
name and config and every planned resource, and a violating change stops before anything is
applied. The mocked suite (tests/policy) proves each rule; this proves the engine runs them.

Stack validations judge the whole plan, so the engine runs them once the plan is complete: in
`up`, after its preview (`--skip-preview` would apply first and judge after), which is why the
operator's `up` keeps its preview.

The module deploys into a namespace of its own, so its stacks never own another module's
objects on the shared cluster."""

from __future__ import annotations

import json

import pytest

from tools.cluster import Cluster
from tools.cluster.kube import path_for

from tests.e2e.harness import Workspace

ENVIRONMENT, STACK = "staging", "api-gateway.staging"
NAMESPACE = "policy-e2e"
QUOTA_MESSAGE = "HPA 'api-gateway' may scale to 50 pods; the environment quota allows 40"


@pytest.fixture(scope="module")
def ws(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    workspace = Workspace.create(tmp_path_factory.mktemp("policy"), cluster.kubeconfig)
    workspace.init_stack(ENVIRONMENT)
    workspace.init_stack(STACK)
    workspace.pulumi("config", "set", "-s", ENVIRONMENT, "platform:namespace", NAMESPACE)
    workspace.pulumi("config", "set", "-s", ENVIRONMENT, "platform:deletion_protection", "false")
    yield workspace
    workspace.pulumi("destroy", "--yes", "--skip-preview", "-s", STACK, check=False)
    workspace.pulumi("destroy", "--yes", "--skip-preview", "-s", ENVIRONMENT, check=False)


def with_pack(ws: Workspace, command: str, stack: str, check: bool = True):
    extra = ["--yes"] if command == "up" else []
    return ws.pulumi(command, "-s", stack, *extra, "--policy-pack", str(ws.root / "policy"),
                     check=check)


def test_the_pack_runs_in_real_updates_and_passes_the_repository_stacks(ws: Workspace):
    for stack in (ENVIRONMENT, STACK):
        result = with_pack(ws, "up", stack)
        output = result.stdout + result.stderr
        assert "platform-guardrails" in output, output  # the engine loaded the pack
        assert "mandatory" not in output and "advisory" not in output, output


def test_a_change_beyond_the_environment_quota_is_stopped_by_preview_and_up(ws: Workspace,
                                                                            cluster: Cluster):
    # The quota is the environment stack's; the component stack exports what it read, and the
    # pack finds it on the stack resource the engine shows it.
    ws.pulumi("config", "set", "--path", "-s", STACK, "platform:scaling.max_replicas", "50")
    try:
        for command in ("preview", "up"):
            result = with_pack(ws, command, STACK, check=False)
            output = result.stdout + result.stderr
            assert result.returncode != 0, f"`pulumi {command}` went through:\n{output}"
            assert "hpa-within-environment-quota" in output and QUOTA_MESSAGE in output, output
            assert "Traceback" not in output, output
    finally:
        ws.pulumi("config", "set", "--path", "-s", STACK, "platform:scaling.max_replicas", "4")
    # Nothing was applied: the state and the cluster keep the last good update.
    state = ws.export(STACK)["deployment"]["resources"]
    hpa = next(r for r in state if r["type"] == "kubernetes:autoscaling/v2:HorizontalPodAutoscaler")
    assert hpa["inputs"]["spec"]["maxReplicas"] == 4
    live = cluster.client().get(path_for("autoscaling/v2", "HorizontalPodAutoscaler",
                                         "api-gateway", NAMESPACE))
    assert live["spec"]["maxReplicas"] == 4


def test_platform_up_yes_stops_a_violating_change_before_applying_it(ws: Workspace,
                                                                      cluster: Cluster):
    # `platform up --yes` (CI's path) drives the Automation API, whose up skips the preview;
    # the pack's stack validations must still stop the change before anything is applied.
    ws.pulumi("config", "set", "--path", "-s", STACK, "platform:scaling.max_replicas", "50")
    try:
        result = ws.platform("up", STACK, "--yes", check=False)
        output = result.stdout + result.stderr
        assert result.returncode != 0, f"`platform up --yes` went through:\n{output}"
        assert QUOTA_MESSAGE in output, output
        assert "Traceback" not in output, output
    finally:
        ws.pulumi("config", "set", "--path", "-s", STACK, "platform:scaling.max_replicas", "4")
    live = cluster.client().get(path_for("autoscaling/v2", "HorizontalPodAutoscaler",
                                         "api-gateway", NAMESPACE))
    assert live["spec"]["maxReplicas"] == 4


def test_no_secret_reaches_the_state_in_plain_text(ws: Workspace):
    secrets = ws.secret_values[STACK]
    exported = json.dumps(ws.export(STACK))
    assert secrets and not any(value in exported for value in secrets)
