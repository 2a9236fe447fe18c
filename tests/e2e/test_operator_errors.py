"""Bad input under the real CLI, as an operator meets it: `pulumi preview` and `pulumi up`
exit non-zero with one readable message naming the stack, the key and the reason, print no
traceback, and register nothing. The mocked suite proves every rule; this proves the
message survives the language host and the engine, and that the state stays empty."""

from __future__ import annotations

import pytest

from tools.cluster import Cluster

from tests.e2e.harness import Workspace

STACK = "api-gateway.staging"


@pytest.fixture(scope="module")
def ws(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A workspace of its own, with an empty backend: nothing is up, nothing may appear."""
    workspace = Workspace.create(tmp_path_factory.mktemp("errors"), cluster.kubeconfig)
    workspace.init_stack("staging")
    workspace.init_stack(STACK)
    return workspace


def refused(ws: Workspace, stack: str) -> list[str]:
    """Runs preview and up of `stack`; both must fail cleanly. Returns their outputs."""
    outputs = []
    for command in (["preview"], ["up", "--yes", "--skip-preview"]):
        result = ws.pulumi(*command, "-s", stack, check=False)
        output = result.stdout + result.stderr
        assert result.returncode != 0, f"`pulumi {command[0]}` of {stack} succeeded:\n{output}"
        assert "Traceback" not in output, output
        outputs.append(output)
    resources = ws.export(stack)["deployment"].get("resources") or []
    ours = [r["urn"] for r in resources if not r["type"].startswith("pulumi:")]
    assert ours == [], f"{stack}: a refused update registered {ours}"
    return outputs


def message(output: str) -> str:
    """The program's error as the CLI prints it, without the engine's framing lines."""
    return "\n".join(line for line in output.splitlines() if "platform:" in line or "stack '" in line)


def set_config(ws: Workspace, stack: str, *args: str) -> None:
    ws.pulumi("config", "set", "--path", "-s", stack, *args)


def test_an_invalid_value_names_the_stack_the_key_and_the_reason(ws: Workspace):
    set_config(ws, STACK, "platform:scaling.max_replicas", "1")
    try:
        for output in refused(ws, STACK):
            assert f"stack '{STACK}': invalid config" in output, output
            assert "platform:scaling.max_replicas: 1 is below min_replicas 2" in message(output), output
    finally:
        set_config(ws, STACK, "platform:scaling.max_replicas", "4")


def test_a_secret_set_in_plain_text_is_refused_before_it_can_leak(ws: Workspace):
    stack_file = ws.root / f"Pulumi.{STACK}.yaml"
    before = stack_file.read_text()
    set_config(ws, STACK, "platform:secret_env.WORKER_API_TOKEN", "plain-token")
    try:
        outputs = refused(ws, STACK)
    finally:
        stack_file.write_text(before)
    for output in outputs:
        assert ("platform:secret_env.WORKER_API_TOKEN: is a secret in plain text: set it with "
                "`pulumi config set --secret --path 'platform:secret_env.WORKER_API_TOKEN' <value>`"
                in message(output)), output
        assert "plain-token" not in output


def test_a_stack_init_without_a_stack_file_of_ours_lists_the_valid_stacks(ws: Workspace):
    # `stack init` writes Pulumi.billing.staging.yaml with only the passphrase's salt.
    ws.pulumi("stack", "init", "billing.staging")
    for output in refused(ws, "billing.staging"):
        assert "stack 'billing.staging': Pulumi.billing.staging.yaml sets no platform: keys" in output, output
        assert ("Valid stacks: ai-worker.production, ai-worker.staging, api-gateway.production, "
                "api-gateway.staging, production, staging") in output, output


def test_an_unknown_environment_lists_the_valid_stacks(ws: Workspace):
    ws.pulumi("stack", "init", "api-gateway.qa")
    for output in refused(ws, "api-gateway.qa"):
        assert ("stack 'api-gateway.qa': unknown environment 'qa': no stack file Pulumi.qa.yaml "
                "(environments: staging, production)") in output
        assert "Valid stacks: ai-worker.production" in output, output
