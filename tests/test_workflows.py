"""The GitHub Actions workflows, checked offline: actionlint (with shellcheck on every script),
GitHub's workflow and action schemas, and what the workflows promise: every stack reachable by
the deploy matrices, every job that changes a stack holding that stack's concurrency group,
production behind its environment, secrets never in a script, and every `platform` call one
that the command's own parser accepts.
"""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infra.stacks import ENVIRONMENTS
from ops.affected import affected_stacks
from ops.cli import build_parser
from ops.git_tree import Change, FolderTree
from tests.e2e.harness import BIN_DIR, REPO_ROOT

WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))
ACTIONS = sorted((REPO_ROOT / ".github" / "actions").glob("*/action.yml"))
VENV_BIN = Path(sys.executable).parent
MUTATING = re.compile(r"\bplatform (up|rollback|destroy|scale|recover)\b")
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}", re.S)


def load(path: Path) -> dict:
    document = yaml.safe_load(path.read_text())
    document["on"] = document.pop(True, document.get("on"))  # YAML 1.1 reads `on:` as true
    return document


def jobs(path: Path) -> dict[str, dict]:
    return load(path)["jobs"]


def scripts(job: dict) -> list[str]:
    return [step["run"] for step in job.get("steps", []) if "run" in step]


@pytest.fixture(scope="module")
def actionlint() -> Path:
    """actionlint built from its upstream module by the engine build (tools/engine/actionlint)."""
    subprocess.run([sys.executable, str(REPO_ROOT / "tools" / "engine" / "build.py"), "actionlint"],
                   check=True, capture_output=True)
    return BIN_DIR / "actionlint"


def run_actionlint(actionlint: Path, *files: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(actionlint), "-shellcheck", str(VENV_BIN / "shellcheck"), "-no-color",
                           *map(str, files)], cwd=REPO_ROOT, capture_output=True, text=True)


def test_there_are_the_five_workflows_the_platform_runs_on():
    assert {p.stem for p in WORKFLOWS} >= {"test", "preview", "deploy", "rollback", "drift"}


def test_every_workflow_passes_actionlint_and_shellcheck(actionlint):
    result = run_actionlint(actionlint, *WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_really_checks_expressions_and_scripts(actionlint, tmp_path):
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n"
                   "      - run: echo ${{ needs.nope.outputs.x }}\n      - run: cd $HOME/x; ls $1\n")
    result = subprocess.run([str(actionlint), "-shellcheck", str(VENV_BIN / "shellcheck"), "-no-color", str(bad)],
                            cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 1
    assert "needs.nope" in result.stdout or "property \"nope\"" in result.stdout
    assert "shellcheck reported issue" in result.stdout


@pytest.mark.parametrize("schema, files", [("vendor.github-workflows", WORKFLOWS), ("vendor.github-actions", ACTIONS)])
def test_every_workflow_and_action_matches_github_schema(schema, files):
    result = subprocess.run([str(VENV_BIN / "check-jsonschema"), "--builtin-schema", schema, *map(str, files)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dependabot_config_matches_its_schema():
    result = subprocess.run([str(VENV_BIN / "check-jsonschema"), "--builtin-schema", "vendor.dependabot",
                             str(REPO_ROOT / ".github" / "dependabot.yml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40} # v\d+\.\d+\.\d+$")


@pytest.mark.parametrize("path", WORKFLOWS + ACTIONS, ids=lambda p: p.relative_to(REPO_ROOT).as_posix())
def test_every_outside_action_is_pinned_to_a_commit_with_its_release_named(path):
    # A tag can be moved to other code; a commit cannot. The comment names the release the SHA
    # is, which is what Dependabot updates (.github/dependabot.yml).
    uses = [line.split("uses:", 1)[1].strip()
            for line in path.read_text().splitlines() if re.match(r"^\s*-?\s*uses:", line)]
    outside = [u for u in uses if not u.startswith("./")]
    assert all(PINNED.match(u) for u in outside), [u for u in outside if not PINNED.match(u)]


# -- what the workflows promise ------------------------------------------------------------------


def deploy_matrix_outputs() -> dict[str, str]:
    """Deploy job -> the `platform affected` output its matrix is made from."""
    deploy = jobs(REPO_ROOT / ".github" / "workflows" / "deploy.yml")
    exported = {name: EXPRESSION.search(value)[1].rsplit(".", 1)[-1]
                for name, value in deploy["affected"]["outputs"].items()}
    found = {}
    for name, job in deploy.items():
        include = ((job.get("strategy") or {}).get("matrix") or {}).get("include")
        if isinstance(include, str) and any(MUTATING.search(s) for s in scripts(job)):
            source = re.search(r"needs\.affected\.outputs\.([\w-]+)", include)[1]
            found[name] = exported[source]
    return found


def test_every_stack_of_the_repository_is_reachable_by_the_deploy_matrix():
    outputs = deploy_matrix_outputs()
    tree = FolderTree(REPO_ROOT)
    every = [s for s in (p.name[len("Pulumi."):-len(".yaml")] for p in REPO_ROOT.glob("Pulumi.*.yaml"))]
    assert every
    for stack in every:
        matrices = affected_stacks([Change("M", f"Pulumi.{stack}.yaml")], tree).matrices()
        deployed_by = [job for job, output in outputs.items() if stack in [e["stack"] for e in matrices[output]]]
        assert deployed_by, f"no deploy job's matrix holds {stack}"


def test_each_environment_deploys_its_environment_stack_before_its_components_and_in_order():
    deploy = jobs(REPO_ROOT / ".github" / "workflows" / "deploy.yml")
    for index, env in enumerate(ENVIRONMENTS):
        environment, components = deploy[f"{env}-environment"], deploy[f"{env}-components"]
        assert environment["environment"] == env and components["environment"] == env
        assert f"{env}-environment" in components["needs"]
        for earlier in ENVIRONMENTS[:index]:
            assert {f"{earlier}-environment", f"{earlier}-components"} <= set(environment["needs"])
        # a skipped job before them must not silently skip them
        assert "!cancelled()" in components["if"] and "!cancelled()" in environment["if"] or index == 0


def test_a_production_component_is_promoted_only_after_its_own_staging_stack():
    job = jobs(REPO_ROOT / ".github" / "workflows" / "deploy.yml")["production-components"]
    gate = job["steps"][0]
    assert gate["uses"].startswith("actions/download-artifact@") and gate["with"]["name"] == "deployed-${{ matrix.after }}"
    assert "needs.staging-components.result" not in job["if"]  # another component's failure never stops it
    staging = jobs(REPO_ROOT / ".github" / "workflows" / "deploy.yml")["staging-components"]
    assert staging["strategy"]["fail-fast"] is False
    assert staging["steps"][-1]["with"]["name"] == "deployed-${{ matrix.stack }}"


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.stem)
def test_every_job_that_changes_a_stack_holds_that_stack_concurrency_group(workflow):
    document = load(workflow)
    for name, job in document["jobs"].items():
        if not any(MUTATING.search(s) for s in scripts(job)):
            continue
        stack = (job.get("env") or {}).get("STACK") or (document.get("env") or {}).get("STACK")
        assert stack, f"{workflow.name}:{name} changes a stack without naming it in STACK"
        concurrency = job.get("concurrency") or {}
        assert concurrency.get("cancel-in-progress") is False, f"{workflow.name}:{name}"
        assert EXPRESSION.sub(r"\1", concurrency.get("group", "")) == "pulumi-" + EXPRESSION.sub(r"\1", stack), \
            f"{workflow.name}:{name} holds {concurrency.get('group')!r}, not its stack's group"
        assert job.get("environment"), f"{workflow.name}:{name} changes a stack outside a deployment environment"


def test_pull_request_previews_put_environments_first_and_guard_the_components():
    preview = jobs(REPO_ROOT / ".github" / "workflows" / "preview.yml")
    assert "environments" in preview["components"]["needs"]
    assert preview["components"]["if"].startswith("${{ !failure() && !cancelled()")


@pytest.mark.parametrize("workflow", [*WORKFLOWS, *ACTIONS], ids=lambda p: p.parent.name + "/" + p.stem)
def test_no_script_ever_holds_a_secret(workflow):
    text = workflow.read_text()
    document = yaml.safe_load(text)
    steps = [s for job in (document.get("jobs") or {}).values() for s in job.get("steps", [])]
    steps += (document.get("runs") or {}).get("steps", [])
    for step in steps:
        assert "secrets." not in step.get("run", ""), f"{workflow.name}: a secret inside a script"
        assert not re.search(r"(echo|printf|cat)\b[^|>]*\$\{?(PULUMI_CONFIG_PASSPHRASE|CLOUDFLARE_API_TOKEN|"
                             r"GITHUB_TOKEN|AWS_SECRET_ACCESS_KEY)", step.get("run", "")), workflow.name


def platform_calls() -> list[tuple[str, list[str]]]:
    found = []
    for workflow in [*WORKFLOWS, *ACTIONS]:
        text = EXPRESSION.sub("EXPR", workflow.read_text())
        document = yaml.safe_load(text)
        steps = [s for job in (document.get("jobs") or {}).values() for s in job.get("steps", [])]
        steps += (document.get("runs") or {}).get("steps", [])
        for step in steps:
            for command in re.split(r"&&|\|\||;|\n|\|", step.get("run", "")):
                words = shlex.split(command.split(">")[0], comments=True) if "platform" in command else []
                if words and words[0] in ("platform", ".venv/bin/platform"):
                    found.append((workflow.name, [w.replace("$", "") if w.startswith("$") else w for w in words[1:]]))
    return found


def test_every_platform_call_in_the_workflows_is_one_the_command_accepts():
    calls = platform_calls()
    assert {argv[0] for _, argv in calls} >= {"affected", "preview", "preview-comment", "up", "rollback",
                                               "drift", "drift-issues", "destroy", "history"}
    parser = build_parser()
    for workflow, argv in calls:
        argv = ["7" if (a in ("PR",) or a.startswith("(head")) else a for a in argv]
        try:
            parser.parse_args([a if a != "TO" else "3" for a in argv])
        except SystemExit:
            pytest.fail(f"{workflow}: `platform {' '.join(argv)}` is refused by the command's parser")


def test_rollback_offers_exactly_the_environments_the_program_knows():
    inputs = load(REPO_ROOT / ".github" / "workflows" / "rollback.yml")["on"]["workflow_dispatch"]["inputs"]
    assert inputs["environment"]["options"] == list(ENVIRONMENTS)
    assert inputs["mode"]["options"] == ["config", "state-only", "commit"]
