"""The GitHub Actions workflows, checked offline: actionlint (with shellcheck on every script),
GitHub's workflow and action schemas, zizmor's security audit, and what the workflows promise:
every stack reachable by the deploy matrices, deploy gated on the tests and staged in the
promotion order, every job that changes a stack holding that stack's concurrency group,
production behind its environment, each identity only in its GitHub environment and none of
production's (nor any that writes) reachable by pull-request code, the released CLI (never the
engine build) on every job that runs the engine, a roll-up check per workflow, secrets never in
a script, and every `platform` call one that the command's own parser accepts.
"""
from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infra.stacks import promotion_order

ENVIRONMENTS = promotion_order()  # the promotion order the deploy workflow follows
from ops.cli import build_parser
from ops.planning.affected import github_matrices
from ops.planning.git import Change, FolderTree
from ops.planning.impact import affected_stacks

from tests.conftest import engine_tools
from tests.e2e.harness import REPO_ROOT

WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))
ACTIONS = sorted((REPO_ROOT / ".github" / "actions").glob("*/action.yml"))
VENV_BIN = Path(sys.executable).parent
MUTATING = re.compile(r"\bplatform (up|rollback|destroy|scale|recover)\b")
# The `platform` commands that run the engine: the job needs the released CLI and its plugins.
ENGINE_COMMANDS = re.compile(r"\bplatform (preview|up|rollback|destroy|drift|history|env|scale|recover|adopt)(?![\w-])")
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
def actionlint(pytestconfig) -> Path:
    """actionlint built from its upstream module by the engine build (tools/engine/actionlint)."""
    return engine_tools(pytestconfig, ["actionlint"], "test") / "actionlint"


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


def test_every_outside_action_has_an_offline_stand_in_for_the_act_runs():
    # make e2e runs the workflows with act (tests/e2e/test_workflows_act.py), each pinned outside
    # action replaced by its stand-in in tests/e2e/actions/<owner>/<name>/, which the README there
    # describes: a new outside action needs one, or those runs would try to fetch it.
    stand_ins = REPO_ROOT / "tests" / "e2e" / "actions"
    readme = (stand_ins / "README.md").read_text()
    outside = {m for path in WORKFLOWS + ACTIONS
               for m in re.findall(r"uses:\s*([\w.-]+/[\w.-]+)@[0-9a-f]{40}", path.read_text())}
    assert outside
    assert [a for a in sorted(outside) if not (stand_ins / a / "action.yml").is_file()] == []
    assert [a for a in sorted(outside) if f"| `{a}` |" not in readme] == []


def test_every_stand_in_script_passes_shellcheck(tmp_path):
    failures = []
    for path in sorted((REPO_ROOT / "tests" / "e2e" / "actions").glob("*/*/action.yml")):
        for number, step in enumerate(yaml.safe_load(path.read_text())["runs"]["steps"]):
            script = tmp_path / f"{path.parent.parent.name}-{path.parent.name}-{number}.sh"
            script.write_text("#!/bin/bash\nset -e\n" + EXPRESSION.sub("expression", step["run"]))
            result = subprocess.run([str(VENV_BIN / "shellcheck"), "-S", "style", str(script)],
                                    capture_output=True, text=True, check=False)
            if result.returncode:
                failures.append(result.stdout)
    assert failures == [], "\n".join(failures)


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
        matrices = github_matrices(affected_stacks([Change("M", f"Pulumi.{stack}.yaml")], tree))
        deployed_by = [job for job, output in outputs.items() if stack in [e["stack"] for e in matrices[output]]]
        assert deployed_by, f"no deploy job's matrix holds {stack}"


def test_each_environment_deploys_its_environment_stack_before_its_components_and_in_order():
    deploy = jobs(REPO_ROOT / ".github" / "workflows" / "deploy.yml")
    stages = [name for name, job in deploy.items() if job.get("environment") and not name.startswith("teardown")]
    # Exactly one stage per environment of the promotion order, and (after the first) its
    # read-only preview: a new environment in the stack files needs its stage here.
    expected = [f"{env}-{stage}" for index, env in enumerate(ENVIRONMENTS)
                for stage in ((["preview"] if index else []) + ["environment", "components"])]
    assert sorted(stages) == sorted(expected)
    for index, env in enumerate(ENVIRONMENTS):
        environment, components = deploy[f"{env}-environment"], deploy[f"{env}-components"]
        assert environment["environment"] == env and components["environment"] == env
        assert f"{env}-environment" in components["needs"]
        for earlier in ENVIRONMENTS[:index]:
            assert {f"{earlier}-environment", f"{earlier}-components"} <= set(environment["needs"])
        if index:
            # The approval of a later environment sees this commit's preview, made in this run.
            preview = deploy[f"{env}-preview"]
            assert preview["environment"] == f"{env}-read"
            assert f"{env}-preview" in environment["needs"] and f"{env}-preview" in components["needs"]
            assert f"needs.{env}-preview.result == 'success'" in environment["if"]
            assert set(preview["needs"]) == set(environment["needs"]) - {f"{env}-preview"}
            assert preview["strategy"]["matrix"]["stack"] == "${{ fromJSON(needs.affected.outputs." + env + "-stacks) }}"
            runs = "\n".join(scripts(preview))
            assert 'platform preview "$STACK" --json' in runs and '--summary "$GITHUB_STEP_SUMMARY"' in runs
            assert not any(MUTATING.search(r) for r in scripts(preview))
        # a skipped job before them must not silently skip them
        assert "!cancelled()" in components["if"] and "!cancelled()" in environment["if"] or index == 0


def test_every_deploy_job_applies_the_one_commit_of_the_push():
    deploy = jobs(REPO_ROOT / ".github" / "workflows" / "deploy.yml")
    for name, job in deploy.items():
        for step in job.get("steps", []):
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["ref"] in ("${{ env.COMMIT }}", "${{ env.BEFORE }}"), name


def test_production_applies_the_update_plan_its_reviewers_approved():
    deploy = jobs(REPO_ROOT / ".github" / "workflows" / "deploy.yml")
    preview = deploy["production-preview"]
    (saving,) = [s for s in scripts(preview) if "--save-plan" in s]
    assert '--save-plan "$RUNNER_TEMP/plan/plan.json"' in saving and '> "$RUNNER_TEMP/plan/preview.json"' in saving
    (kept,) = [s for s in preview["steps"] if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert kept["with"] == {"name": "plan-${{ matrix.stack }}", "path": "${{ runner.temp }}/plan/",
                            "retention-days": 7}
    for name in ("production-environment", "production-components"):
        job = deploy[name]
        assert "production-preview" in job["needs"], name
        (fetched,) = [s for s in job["steps"] if s.get("with", {}).get("name") == "plan-${{ matrix.stack }}"]
        assert fetched["uses"].startswith("actions/download-artifact@") and fetched["with"]["path"] == "build/plan"
        (up,) = [s for s in scripts(job) if "platform up" in s]
        # Every up of an existing stack is held to the plan; only a new stack (nothing to plan
        # against, said by its preview's JSON) is created without one.
        assert up.count("platform up") == 2 and "--plan build/plan/plan.json" in up, name
        assert "jq -e '.new_stack' build/plan/preview.json" in up, name
        assert job["steps"].index(fetched) < [i for i, s in enumerate(job["steps"]) if "platform up" in s.get("run", "")][0]


def test_deploy_runs_only_for_a_commit_whose_tests_passed():
    deploy = load(REPO_ROOT / ".github" / "workflows" / "deploy.yml")
    assert deploy["jobs"]["tests"]["uses"] == "./.github/workflows/test.yml"
    assert "workflow_call" in load(REPO_ROOT / ".github" / "workflows" / "test.yml")["on"]
    assert deploy["jobs"]["affected"]["needs"] == "tests"

    def ancestors(name: str) -> set[str]:
        needs = deploy["jobs"][name].get("needs", [])
        needs = [needs] if isinstance(needs, str) else needs
        return set(needs).union(*(ancestors(n) for n in needs)) if needs else set()
    for name in deploy["jobs"]:
        if name not in ("tests", "roll-up"):
            assert "tests" in ancestors(name), f"deploy.yml:{name} can run before the tests passed"


def test_a_pull_request_of_this_repository_runs_the_tests_once():
    # No push trigger beside pull_request: a branch's push and its pull request would both run.
    # main is tested by the deploy workflow, which calls this one.
    assert set(load(REPO_ROOT / ".github" / "workflows" / "test.yml")["on"]) == {"pull_request", "workflow_call"}


def test_the_engine_end_to_end_runs_beside_make_test_not_after_it():
    # The two longest jobs of a pull request: one after the other, its checks take their sum
    # (about 8 + 21 minutes on a 2-core runner, README); side by side, the longer of the two.
    # Neither uses the other's output, and `test passed` still waits for both.
    document = jobs(REPO_ROOT / ".github" / "workflows" / "test.yml")
    assert "needs" not in document["e2e"] and "needs" not in document["test"]
    assert {"test", "e2e"} <= set(document["roll-up"]["needs"])


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.stem)
def test_every_workflow_has_one_stable_roll_up_job_to_require(workflow):
    document = jobs(workflow)
    rollup = document["roll-up"]
    assert rollup["name"] == f"{workflow.stem} passed"  # no expression: a required check's name is fixed
    assert rollup["if"] == "always()"
    assert sorted(rollup["needs"]) == sorted(n for n in document if n != "roll-up")
    assert 'select(.value.result != "success" and .value.result != "skipped")' in scripts(rollup)[0]
    assert "exit 1" in scripts(rollup)[0]


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
    first = ENVIRONMENTS[0]
    assert f"{first}-environment" in preview[f"{first}-components"]["needs"]
    assert preview[f"{first}-components"]["if"].startswith("${{ !failure() && !cancelled()")


def test_pull_request_previews_run_on_the_merge_commit_and_name_its_base_and_head():
    preview = load(REPO_ROOT / ".github" / "workflows" / "preview.yml")
    assert preview["env"]["MERGE"] == "${{ github.sha }}"  # refs/pull/N/merge for pull_request
    for name, job in preview["jobs"].items():
        for step in job.get("steps", []):
            if step.get("uses", "").startswith("actions/checkout@"):
                assert "ref" not in step["with"], f"preview.yml:{name} checks out another commit than the merge"
    comments = [argv for workflow, argv in platform_calls()
                if workflow == "preview.yml" and argv[0] == "preview-comment" and "--body" not in argv]
    assert comments
    for argv in comments:
        assert argv[argv.index("--commit") + 1] == "MERGE", argv
        if "--removed" not in argv:
            assert argv[argv.index("--base") + 1] == "BASE" and argv[argv.index("--head") + 1] == "HEAD", argv


# -- identities: each in its GitHub environment, none of production's for pull-request code -------

PULL_REQUEST_TRIGGERS = {"pull_request", "pull_request_target"}
CLOUD_ROLE_ACTIONS = ("pulumi/auth-actions@", "aws-actions/configure-aws-credentials@",
                      "google-github-actions/auth@", "azure/login@")


def job_secrets(job: dict) -> set[str]:
    text = yaml.safe_dump(job)
    return set(re.findall(r"secrets\.([A-Z0-9_]+)", text))


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.stem)
def test_every_job_holding_a_secret_takes_it_from_its_github_environment(workflow):
    for name, job in jobs(workflow).items():
        if job_secrets(job):
            assert job.get("environment"), f"{workflow.name}:{name} reads repository-level secrets"


def test_pull_request_code_holds_only_read_only_identities_of_the_first_environment():
    # preview.yml runs the pull request's code: staging's read-only identities at most. No
    # environment that writes, and nothing of a later environment (production): those stacks get
    # the offline render diff, made with no credential.
    first = ENVIRONMENTS[0]
    preview = load(REPO_ROOT / ".github" / "workflows" / "preview.yml")
    assert set(preview["on"]) == {"pull_request"}
    bound = {name: job["environment"] for name, job in preview["jobs"].items() if job.get("environment")}
    assert bound and set(bound.values()) == {f"{first}-read"}, bound
    render = preview["jobs"]["render-diff"]
    assert not job_secrets(render) and "environment" not in render
    for env in ENVIRONMENTS[1:]:
        assert f"needs.affected.outputs.{env}-stacks" in render["strategy"]["matrix"]["stack"]
    for workflow in WORKFLOWS:
        document = load(workflow)
        if not PULL_REQUEST_TRIGGERS & set(document["on"] or {}):
            continue
        for name, job in document["jobs"].items():
            environment = job.get("environment") or ""
            assert environment not in ENVIRONMENTS[1:] and not any(
                environment.startswith(f"{env}-") for env in ENVIRONMENTS[1:]), \
                f"{workflow.name}:{name} gives pull-request code production's identities ({environment})"


def test_drift_checks_every_environment_with_its_read_only_identities():
    drift = jobs(REPO_ROOT / ".github" / "workflows" / "drift.yml")["drift"]
    assert drift["strategy"]["matrix"]["env"] == list(ENVIRONMENTS)
    assert drift["environment"] == "${{ matrix.env }}-read"
    assert not any(MUTATING.search(s) for s in scripts(drift))


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.stem)
def test_id_token_only_where_a_job_assumes_a_cloud_role(workflow):
    document = load(workflow)
    assert "id-token" not in (document.get("permissions") or {}), f"{workflow.name}: id-token for every job"
    for name, job in document["jobs"].items():
        assumes = any(step.get("uses", "").startswith(CLOUD_ROLE_ACTIONS) for step in job.get("steps", []))
        # Keyless signing: cosign trades the job's OIDC token for a signing certificate.
        signs = any(re.search(r"tools\.images (sign|attest) .*--keyless", s) for s in scripts(job))
        if (job.get("permissions") or {}).get("id-token") == "write":
            assert assumes or signs, f"{workflow.name}:{name} has id-token: write but assumes no cloud role nor signs"


@pytest.mark.parametrize("path", WORKFLOWS + ACTIONS, ids=lambda p: p.relative_to(REPO_ROOT).as_posix())
def test_no_checkout_leaves_the_token_in_the_working_folder(path):
    document = yaml.safe_load(path.read_text())
    steps = [s for job in (document.get("jobs") or {}).values() for s in job.get("steps", [])]
    steps += (document.get("runs") or {}).get("steps", [])
    for step in steps:
        if step.get("uses", "").startswith("actions/checkout@"):
            assert (step.get("with") or {}).get("persist-credentials") is False, path.name


# -- the released CLI on runners, never the engine build ----------------------------------------


def engine_jobs() -> list[tuple[str, str, dict]]:
    return [(workflow.name, name, job) for workflow in WORKFLOWS for name, job in jobs(workflow).items()
            if any(ENGINE_COMMANDS.search(s) for s in scripts(job))]


def test_every_job_that_runs_the_engine_installs_the_released_cli_and_never_builds_it():
    found = engine_jobs()
    assert {w for w, _, _ in found} >= {"preview.yml", "deploy.yml", "rollback.yml", "drift.yml", "pr-environment.yml"}
    for workflow, name, job in found:
        uses = [step.get("uses", "") for step in job.get("steps", [])]
        assert "./.github/actions/pulumi" in uses, f"{workflow}:{name} runs the engine without the released CLI"
        assert uses.index("./.github/actions/pulumi") > uses.index("./.github/actions/setup")


def test_every_job_that_previews_or_changes_production_has_cosign_for_admission():
    # `platform preview`/`up`/`rollback` of a production stack verify its images' signatures
    # before the engine runs, and refuse when cosign is missing: such a job installs it. A job
    # whose environment is an expression (the rollback workflow's input) may be production.
    def may_be_production(job: dict) -> bool:
        environment = str(job.get("environment", ""))
        return environment.startswith("production") or "${{" in environment

    found = {(w, n): job for w, n, job in engine_jobs() if may_be_production(job)
             and any(re.search(r"platform (preview|up|rollback|scale) ", s) for s in scripts(job))}
    assert set(found) >= {("deploy.yml", "production-preview"), ("deploy.yml", "production-environment"),
                          ("deploy.yml", "production-components"), ("rollback.yml", "rollback")}
    for (workflow, name), job in found.items():
        uses = [step.get("uses", "") for step in job.get("steps", [])]
        assert "./.github/actions/image-tools" in uses, f"{workflow}:{name} cannot verify production's signatures"


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.stem)
def test_only_the_e2e_job_builds_the_engine(workflow):
    for name, job in jobs(workflow).items():
        builds = (any(step.get("uses") == "./.github/actions/engine" for step in job.get("steps", []))
                  or any(re.search(r"\bmake\b.*\bengine\b|tools/engine/build\.py", s) for s in scripts(job)))
        assert not builds or (workflow.name, name) == ("test.yml", "e2e"), f"{workflow.name}:{name} builds the engine"


def test_the_released_cli_and_plugins_come_from_the_pins_the_engine_build_is_held_to():
    action = yaml.safe_load((REPO_ROOT / ".github" / "actions" / "pulumi" / "action.yml").read_text())
    steps = action["runs"]["steps"]
    assert steps[0]["run"] == 'python3 tools/engine/versions.py --released --github-output "$GITHUB_OUTPUT"'
    cli = next(s for s in steps if s.get("uses", "").startswith("pulumi/actions@"))
    assert cli["with"] == {"pulumi-version": "${{ steps.pins.outputs.pulumi }}"}
    cache = next(s for s in steps if s.get("uses", "").startswith("actions/cache@"))
    from tools.engine.versions import PLUGIN_PACKAGES
    for plugin in PLUGIN_PACKAGES:
        assert f"steps.pins.outputs.plugin-{plugin}" in cache["with"]["key"]  # cached by version
    install = next(s for s in steps if "pulumi plugin install" in s.get("run", ""))
    assert install["env"]["PLUGINS"] == "${{ steps.pins.outputs.plugins }}"


# -- a rollback that sticks ----------------------------------------------------------------------


def test_a_rollback_opens_a_pull_request_with_the_stack_file_it_left():
    rollback = jobs(REPO_ROOT / ".github" / "workflows" / "rollback.yml")
    assert (rollback["rollback"].get("permissions") or {}).get("contents", "read") == "read"
    upload = rollback["rollback"]["steps"][-1]
    assert upload["uses"].startswith("actions/upload-artifact@") and upload["with"]["name"] == "rolled-back-stack-file"
    record = rollback["record"]
    assert record["needs"] == "rollback" and "!inputs.dry-run" in record["if"]
    assert record["permissions"] == {"contents": "write", "pull-requests": "write"}
    assert not job_secrets(record) and "environment" not in record  # no cloud identity beside the write token
    # The file the rollback left, over the checkout, proposed by the same action images.yml uses
    # (`platform pull-request`: one commit through the API, then the pull request).
    assert 'cp "build/rolled-back/Pulumi.$STACK.yaml" "Pulumi.$STACK.yaml"' in scripts(record)[0]
    (propose,) = [s for s in record["steps"] if s.get("uses") == "./.github/actions/pull-request"]
    assert propose["with"]["branch"] == "${{ env.BRANCH }}" and "${{ github.run_id }}" in record["env"]["BRANCH"]
    assert record["steps"].index(propose) == len(record["steps"]) - 1


# -- zizmor ----------------------------------------------------------------------------------------

ZIZMOR = VENV_BIN / "zizmor"
SUPPRESSION = re.compile(r"zizmor: ignore\[[\w,-]+\](.*)")


def test_zizmor_finds_nothing_at_medium_or_above():
    result = subprocess.run([str(ZIZMOR), "--offline", "--min-severity", "medium", "--format", "json",
                             str(REPO_ROOT / ".github")], capture_output=True, text=True, timeout=300)
    findings = json.loads(result.stdout or "[]")
    assert findings == [] and result.returncode == 0, "\n".join(
        f"{f['ident']} ({f['determinations']['severity']}): {f['locations'][0]['symbolic']['key']}"
        for f in findings) or result.stderr


def test_zizmor_really_audits(tmp_path):
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text("on: pull_request_target\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-24.04\n"
                   "    steps:\n      - uses: actions/checkout@11d5960a326750d5838078e36cf38b85af677262 # v4.4.0\n")
    result = subprocess.run([str(ZIZMOR), "--offline", "--min-severity", "medium", "--format", "json", str(tmp_path)],
                            capture_output=True, text=True, timeout=300)
    assert {f["ident"] for f in json.loads(result.stdout)} >= {"dangerous-triggers", "artipacked"}


def test_every_zizmor_suppression_says_why_beside_it():
    for path in [*WORKFLOWS, *ACTIONS, REPO_ROOT / ".github" / "dependabot.yml"]:
        for line in path.read_text().splitlines():
            match = SUPPRESSION.search(line)
            if match:
                assert re.match(r"\s*--\s+\S+(\s+\S+){4,}", match[1]), f"{path.name}: {line.strip()}"


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
