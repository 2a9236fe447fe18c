"""Bad input to `platform` gets one clear message, exit 1, no traceback and no change: these
refusals happen before the engine is asked anything (the engine-side ones are in tests/e2e)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from infra.project import PROJECT_ROOT


def platform(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ops", *args], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=120)


REFUSALS = {
    "an_unknown_stack": (["scale", "billing.staging", "--min", "2"],
                         "error: stack 'billing.staging': no stack config file Pulumi.billing.staging.yaml. "
                         "Valid stacks: ai-worker.production, ai-worker.staging"),
    "an_unknown_environment": (["preview", "api-gateway.qa"],
                               "error: stack 'api-gateway.qa': unknown environment 'qa'"),
    "min_above_max": (["scale", "api-gateway.staging", "--min", "5", "--max", "3"],
                      "error: stack 'api-gateway.staging': invalid config (1 problem):\n"
                      "  - platform:scaling.max_replicas: 3 is below min_replicas 5"),
    "min_at_the_disruption_budget": (["scale", "api-gateway.staging", "--min", "1"],
                                     "platform:min_available: 1 must be below scaling.min_replicas 1"),
    "max_beyond_the_environment_quota": (
        ["scale", "api-gateway.staging", "--max", "40"],
        "platform:scaling.max_replicas: 40 replicas: the Go services of 'staging' at their maximum "
        "(+1 each during a roll-out, and a canary release's pods) would need pods 41, above the environment's quota 40"),
    "scaling_a_worker": (["scale", "ai-worker.production", "--max", "3"],
                         "error: stack 'ai-worker.production' is a cloudflare-worker stack"),
    "scale_without_a_bound": (["scale", "api-gateway.staging"], "error: say what to change"),
    "a_usage_error": (["drift"], "one of the arguments STACK --env --all is required"),
    "a_rollback_without_a_version": (["rollback", "api-gateway.staging"],
                                     "the following arguments are required: --to"),
    "a_plan_of_a_whole_environment": (["preview", "--env", "staging", "--save-plan", "plan.json"],
                                      "error: --save-plan writes the plan of one stack"),
    "up_of_a_whole_environment_by_plan": (["up", "--env", "staging", "--yes", "--plan", "plan.json"],
                                          "error: --plan applies the plan of one stack"),
    "up_by_a_plan_that_is_not_there": (
        ["up", "api-gateway.staging", "--yes", "--plan", "build/no-such-plan.json"],
        "error: stack 'api-gateway.staging': --plan build/no-such-plan.json: no such file (write it "
        "with `platform preview api-gateway.staging --save-plan build/no-such-plan.json`)"),
    "adopt_without_a_terminal_or_yes": (["adopt", "api-gateway.staging"],
                                        "error: `platform adopt` asks before changing anything: pass --yes"),
}


@pytest.mark.parametrize("args, message", REFUSALS.values(), ids=REFUSALS.keys())
def test_platform_refuses_bad_input_with_one_message_and_changes_nothing(args, message):
    files = {p: p.read_bytes() for p in PROJECT_ROOT.glob("Pulumi.*.yaml")}
    result = platform(*args)
    assert result.returncode == 1, result.stderr
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert {p: p.read_bytes() for p in PROJECT_ROOT.glob("Pulumi.*.yaml")} == files


def test_platform_outside_a_project_says_where_it_looked(tmp_path):
    result = subprocess.run([sys.executable, "-m", "ops", "--project-dir", str(tmp_path), "stacks"],
                            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"error: no Pulumi.yaml in {tmp_path}" in result.stderr
    assert "Traceback" not in result.stderr
