"""Environments are their stack files, and the promotion order is data in them: adding `qa` is
adding files (no Python change); a pull request's environment is generated from a template
environment's files and stays out of git and out of the promotion order."""
from __future__ import annotations

import subprocess

import pytest
import yaml

from infra.errors import StackFileError
from infra.stack_files import read_stack_config
from infra.stacks import environments, is_ephemeral, parse_stack_name, promotion_order
from ops.errors import OpsError
from ops.operator.env import parse_duration, write_stack_files

from tests.ops.conftest import ProjectRepo


def add_qa(repo: ProjectRepo, after: str = "staging") -> None:
    """qa by files only: its environment stack file and the gateway's, from staging's."""
    env = repo.read("Pulumi.staging.yaml").replace("platform-staging", "platform-qa").replace(
        "staging.example.com", "qa.example.com")
    env = env.replace("  platform:namespace: platform-qa\n",
                      f"  platform:namespace: platform-qa\n  platform:promotion:\n    after: {after}\n")
    repo.write("Pulumi.qa.yaml", env)
    repo.write("Pulumi.api-gateway.qa.yaml", repo.read("Pulumi.api-gateway.staging.yaml"))
    production = repo.read("Pulumi.production.yaml").replace("after: staging", "after: qa")
    repo.write("Pulumi.production.yaml", production)


def test_the_promotion_order_is_read_from_the_environment_stack_files():
    assert promotion_order() == ("staging", "production")
    assert environments() == ("staging", "production")


def test_qa_added_by_files_is_an_environment_in_the_promotion_order(repo: ProjectRepo):
    add_qa(repo)
    assert promotion_order(repo.root) == ("staging", "qa", "production")
    assert parse_stack_name("api-gateway.qa", repo.root).env == "qa"
    code, out, err = repo.platform("stacks", "--env", "qa", "--json")
    assert code == 0, err
    assert {r["stack"] for r in yaml.safe_load(out)} == {"qa", "api-gateway.qa"}


def test_affected_deploys_qa_between_staging_and_production(repo: ProjectRepo):
    add_qa(repo)
    repo.commit("qa")
    result = repo.affected(stdin="M\tPulumi.api-gateway.qa.yaml\nM\tPulumi.api-gateway.production.yaml\n")
    matrix = result["matrix"]
    assert [e["stack"] for e in matrix["qa-components"]] == ["api-gateway.qa"]
    assert matrix["production-components"][0]["after"] == "api-gateway.qa"


def test_an_unknown_environment_names_the_stack_files(repo: ProjectRepo):
    code, out, err = repo.platform("preview", "api-gateway.qa")
    assert code == 1
    assert "unknown environment 'qa': no stack file Pulumi.qa.yaml (environments: staging, production)" in err


@pytest.mark.parametrize("value, reason", [
    ("\n    after: nowhere\n", "platform:promotion.after: environment 'nowhere' has no stack file"),
    ("\n    before: staging\n", "platform:promotion must be a mapping with one key, `after: <environment>`"),
    (" staging\n", "platform:promotion must be a mapping with one key"),
])
def test_a_promotion_order_that_cannot_be_followed_is_refused(repo: ProjectRepo, value: str, reason: str):
    text = repo.read("Pulumi.production.yaml").replace("  platform:promotion:\n    after: staging\n",
                                                       f"  platform:promotion:{value}")
    repo.write("Pulumi.production.yaml", text)
    with pytest.raises(StackFileError, match=f"stack 'production': {reason}".replace("`", ".").replace("(", ".")):
        promotion_order(repo.root)


def test_a_cycle_in_the_promotion_order_is_refused(repo: ProjectRepo):
    add_qa(repo, after="production")
    with pytest.raises(StackFileError, match="the environments production, qa name each other in a cycle"):
        promotion_order(repo.root)


def test_a_pull_request_environment_is_generated_from_the_template(repo: ProjectRepo):
    lifetime = {"template": "staging", "created_at": "2026-01-01T00:00:00+00:00",
                "expires_at": "2026-01-04T00:00:00+00:00"}
    written = write_stack_files(repo.root, "pr-7", "staging", ["api-gateway", "ai-worker"], lifetime)
    assert [p.name for p in written] == ["Pulumi.pr-7.yaml", "Pulumi.api-gateway.pr-7.yaml",
                                         "Pulumi.ai-worker.pr-7.yaml"]
    env = yaml.safe_load(repo.read("Pulumi.pr-7.yaml"))
    staging = yaml.safe_load(repo.read("Pulumi.staging.yaml"))
    assert env["encryptionsalt"] == staging["encryptionsalt"]  # the template's secrets provider
    assert env["config"]["platform:namespace"] == "platform-staging-pr-7"
    assert env["config"]["platform:base_domain"] == "pr-7.staging.example.com"
    assert env["config"]["platform:lifetime"] == lifetime
    assert env["config"]["platform:quota"] == staging["config"]["platform:quota"]
    assert "platform:promotion" not in env["config"]
    worker = yaml.safe_load(repo.read("Pulumi.ai-worker.pr-7.yaml"))["config"]
    assert "platform:routes" not in worker and worker["platform:workers_dev"] is True
    gateway = read_stack_config("api-gateway.pr-7", repo.root)
    assert gateway.secret_keys == read_stack_config("api-gateway.staging", repo.root).secret_keys
    # An ephemeral environment: a stack of the project, in no promotion order, ignored by git.
    assert is_ephemeral("pr-7", repo.root) and promotion_order(repo.root) == ("staging", "production")
    assert environments(repo.root) == ("staging", "production", "pr-7")
    assert parse_stack_name("api-gateway.pr-7", repo.root).env == "pr-7"
    status = subprocess.run(["git", "status", "--porcelain"], cwd=repo.root, capture_output=True, text=True)
    assert status.stdout == ""


def test_the_generated_environment_config_is_valid_for_the_program(repo: ProjectRepo):
    from infra.config.environment import EnvironmentConfig
    from infra.config.loader import RawConfig, load_config
    import json

    lifetime = {"template": "staging", "created_at": "2026-01-01T00:00:00+00:00",
                "expires_at": "2026-01-04T00:00:00+00:00"}
    write_stack_files(repo.root, "pr-7", "staging", [], lifetime)
    config = read_stack_config("pr-7", repo.root).config
    values = {k.split(":", 1)[1]: (json.loads(v) if v[:1] in "{[" else v) for k, v in config.items()
              if k.startswith("platform:")}
    loaded = load_config(parse_stack_name("pr-7", repo.root), RawConfig(values, frozenset()))
    assert isinstance(loaded, EnvironmentConfig) and loaded.lifetime.template == "staging"


@pytest.mark.parametrize("text, seconds", [("90s", 90), ("30m", 1800), ("72h", 259200), ("1h30m", 5400),
                                           ("7d", 604800), ("0s", 0)])
def test_durations_are_read_as_operators_write_them(text: str, seconds: int):
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "3x", "1.5h", "h", "10"])
def test_a_bad_duration_is_refused(text: str):
    with pytest.raises(OpsError, match="is no duration"):
        parse_duration(text)


@pytest.mark.parametrize("args, message", [
    (["env", "create", "pr_7", "--from", "staging", "--yes"], "'pr_7' is no name for a pull request's environment"),
    (["env", "create", "staging", "--from", "staging", "--yes"], "'staging' is no name for a pull request's environment"),
    (["env", "create", "pr-7", "--from", "qa", "--yes"], "--from qa: no long-lived environment of that name"),
    (["env", "create", "pr-7", "--from", "staging", "--components", "nope", "--yes"],
     "--components: nope has no stack in staging (components of staging: ai-worker, api-gateway)"),
    (["env", "create", "pr-7", "--from", "staging", "--ttl", "0s", "--yes"], "--ttl 0s: a time to live must be longer than nothing"),
    (["env", "create", "pr-7", "--from", "staging"], "`platform env create` asks before changing anything"),
    (["up", "--env", "qa", "--yes"], "unknown environment 'qa' (environments: staging, production)"),
    (["preview", "--env", "staging", "--parallel", "0"], "--parallel must be at least 1 (got 0)"),
    (["up", "--env", "staging", "--yes", "--resume"], "nothing to resume: no earlier `platform up` of environment staging"),
])
def test_bad_input_is_refused_with_one_message_and_nothing_written(repo: ProjectRepo, tmp_path, monkeypatch,
                                                                  args: list[str], message: str):
    monkeypatch.setenv("PULUMI_BACKEND_URL", f"file://{tmp_path}")
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "unused")
    code, out, err = repo.platform(*args)
    assert code == 1 and message in err, err
    assert "Traceback" not in err
    status = subprocess.run(["git", "status", "--porcelain", "--ignored"], cwd=repo.root,
                            capture_output=True, text=True).stdout
    assert "Pulumi.pr-7" not in status and not (tmp_path / ".pulumi").exists()
