"""The images workflow (.github/workflows/images.yml): on a push to main it builds, pushes and
signs the changed services' images and proposes their digests in staging; by hand it proposes
a later environment's promotion. Held here: who may do what (permissions), pinned actions, and
that every command it runs is a real one, run here as the workflow runs it where it can be."""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infra.project import PROJECT_ROOT
from infra.stack_files import load_stack_file
from ops.cli import build_parser as platform_parser
from tools.images.__main__ import build_parser as images_parser
from tools.images.changes import SHARED_INPUTS, changed_paths, changed_services
from tools.images.services import Service, discover_services

from tests.ops.conftest import ProjectRepo, git, project_template, repo  # noqa: F401 -- the fixtures

WORKFLOW = PROJECT_ROOT / ".github" / "workflows" / "images.yml"
ACTIONS = PROJECT_ROOT / ".github" / "actions"
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}", re.S)
DIGEST = "@sha256:" + "cd" * 32


def load(path: Path) -> dict:
    document = yaml.safe_load(path.read_text())
    if True in document:
        document["on"] = document.pop(True)  # YAML 1.1 reads `on:` as true
    return document


@pytest.fixture(scope="module")
def workflow() -> dict:
    return load(WORKFLOW)


def steps_of(workflow: dict) -> list[dict]:
    steps = [s for job in workflow["jobs"].values() for s in job["steps"]]
    for step in list(steps):  # the local composite actions' steps run in the job too
        if step.get("uses", "").startswith("./"):
            steps += load(PROJECT_ROOT / step["uses"] / "action.yml")["runs"]["steps"]
    return steps


def test_it_runs_on_a_push_to_main_and_by_hand_with_the_stack_to_promote(workflow):
    assert workflow["on"]["push"] == {"branches": ["main"]}
    assert workflow["on"]["workflow_dispatch"]["inputs"]["stack"]["required"] is True


def test_only_the_signing_job_gets_an_oidc_token_and_only_the_proposing_jobs_may_write(workflow):
    assert workflow["permissions"] == {"contents": "read"}
    jobs = workflow["jobs"]
    assert jobs["images"]["permissions"] == {"contents": "read", "id-token": "write"}
    for name in ("staging", "promote"):
        assert jobs[name]["permissions"] == {"contents": "write", "pull-requests": "write"}
    assert "permissions" not in jobs["changed"]  # the workflow's read-only default
    writers = {name for name, job in jobs.items()
               if any(v == "write" for v in (job.get("permissions") or {}).values())}
    assert writers == {"images", "staging", "promote"}


def test_no_checkout_leaves_git_credentials_behind_pull_requests_are_made_through_the_api(workflow):
    for name, job in workflow["jobs"].items():
        for step in job["steps"]:
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False, name
    script = load(ACTIONS / "pull-request" / "action.yml")["runs"]["steps"][0]["run"]
    assert "git push" not in script and ".venv/bin/platform pull-request" in script


def test_registry_credentials_reach_only_the_job_that_pushes(workflow):
    assert workflow["jobs"]["images"]["environment"] == "images"  # held by a GitHub environment
    for name, job in workflow["jobs"].items():
        uses_secrets = "secrets." in json.dumps(job)
        assert uses_secrets == (name == "images"), name
    for step in steps_of(workflow):
        assert "secrets." not in step.get("run", "")


def test_every_outside_action_is_pinned_to_a_commit_with_its_release_named():
    files = [WORKFLOW, ACTIONS / "pull-request" / "action.yml", ACTIONS / "image-tools" / "action.yml"]
    for path in files:
        for line in path.read_text().splitlines():
            found = re.search(r"uses:\s*(\S+)(.*)$", line)
            if not found or found.group(1).startswith("./"):
                continue
            assert PINNED.match(found.group(1)), f"{path.name}: {found.group(1)} is not pinned to a commit"
            assert re.search(r"#\s*v\d", found.group(2)), f"{path.name}: {found.group(1)} names no release"


def test_the_local_actions_it_uses_exist(workflow):
    for step in steps_of(workflow):
        uses = step.get("uses", "")
        if uses.startswith("./"):
            assert (PROJECT_ROOT / uses / "action.yml").is_file(), uses


def commands(workflow: dict, program: str) -> list[list[str]]:
    """Each call of `program` in the workflow's scripts, with ${{ }} and $VARIABLES as words."""
    found = []
    for step in steps_of(workflow):
        script = EXPRESSION.sub("EXPR", step.get("run", ""))
        for line in re.split(r"&&|\|\||;|\n|\|", script):
            words = shlex.split(line.split(">")[0].split("<<<")[0], comments=True) if program in line else []
            at = [i for i, w in enumerate(words) if w == program or w.endswith("/" + program)]
            if at:
                found.append(words[at[0] + 1:])
    return found


def test_every_images_command_it_runs_is_one_the_command_accepts(workflow):
    calls = [argv[1:] for argv in commands(workflow, "-m") if argv[:1] == ["tools.images"]]
    assert {argv[0] for argv in calls} == {"changed", "build", "push", "sign", "attest"}
    parser = images_parser()
    for argv in calls:
        args = parser.parse_args([a.replace("${names[@]}", "api-gateway") for a in argv])
        if args.command in ("sign", "attest"):
            assert args.keyless, f"`{' '.join(argv)}` does not sign keyless"


def test_every_platform_command_it_runs_is_one_the_command_accepts(workflow):
    calls = commands(workflow, "platform")
    assert {argv[0] for argv in calls} == {"promote", "pull-request"}
    assert any("--image" in argv for argv in calls) and any("--image" not in argv for argv in calls)
    parser = platform_parser()
    for argv in calls:
        parser.parse_args([a.lstrip("$") for a in argv])


def test_the_staging_step_sets_each_pushed_digest_in_its_service_staging_stack(workflow, repo: ProjectRepo, tmp_path):
    """The job's own script, run as the job runs it (bash -eo pipefail, `platform` on PATH)."""
    step = next(s for s in workflow["jobs"]["staging"]["steps"] if "platform promote" in s.get("run", ""))
    (repo.root / ".venv").symlink_to(PROJECT_ROOT / ".venv")  # what the setup action makes
    ref = f"registry.example.com/platform/api-gateway{DIGEST}"
    env = {**os.environ, "PUSHED": json.dumps([ref]), "GITHUB_SERVER_URL": "https://github.com",
           "GITHUB_REPOSITORY": "example/platform", "GITHUB_RUN_ID": "7", "COMMIT": "0" * 40,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                            cwd=repo.root, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert load_stack_file("api-gateway.staging", repo.root)["config"]["platform:image"] == {"ref": ref}
    assert load_stack_file("api-gateway.production", repo.root)["config"]["platform:image"]["ref"] != ref
    body = (repo.root / "build" / "promotion.txt").read_text()
    assert f"+    ref: {ref}" in body and "https://github.com/example/platform/actions/runs/7" in body
    changed = repo.git("status", "--porcelain", "--", "Pulumi.*.yaml").splitlines()
    assert [line.split()[-1] for line in changed if "Pulumi." in line] == ["Pulumi.api-gateway.staging.yaml"]


def test_the_staging_step_fails_when_a_promotion_is_refused(workflow, repo: ProjectRepo):
    step = next(s for s in workflow["jobs"]["staging"]["steps"] if "platform promote" in s.get("run", ""))
    (repo.root / ".venv").symlink_to(PROJECT_ROOT / ".venv")
    # A service pushed without a staging stack: the job fails, naming the stack file it lacks.
    env = {**os.environ, "PUSHED": json.dumps([f"registry.example.com/platform/billing{DIGEST}"]),
           "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "example/platform",
           "GITHUB_RUN_ID": "7", "COMMIT": "0" * 40,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                            cwd=repo.root, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "error: stack 'billing.staging': no stack config file Pulumi.billing.staging.yaml" in result.stderr


# -- which services a push rebuilds -----------------------------------------------------------

SERVICES = [Service("api-gateway", PROJECT_ROOT / "apps" / "api-gateway"),
            Service("billing", PROJECT_ROOT / "apps" / "billing")]


@pytest.mark.parametrize("paths, rebuilt", [
    (["apps/api-gateway/main.go"], ["api-gateway"]),
    (["apps/billing/go.mod", "docs/rollouts.md"], ["billing"]),
    (["apps/api-gateway-v2/main.go"], []),  # another folder, not a prefix of the name
    (["Pulumi.api-gateway.staging.yaml", "README.md"], []),  # a digest proposal rebuilds nothing
    *[([f"{shared}x"], ["api-gateway", "billing"]) for shared in SHARED_INPUTS],
])
def test_a_service_is_rebuilt_when_its_folder_or_what_every_image_holds_changed(paths, rebuilt):
    assert [s.name for s in changed_services(SERVICES, paths, PROJECT_ROOT)] == rebuilt


def test_changed_reads_the_push_from_git_and_writes_the_job_output(repo: ProjectRepo, tmp_path):
    before = repo.git("rev-parse", "HEAD")
    repo.write("apps/api-gateway/README.md", repo.read("apps/api-gateway/README.md") + "\nMore.\n")
    repo.write("docs/rollouts.md", repo.read("docs/rollouts.md") + "\nMore.\n")
    head = repo.commit("gateway docs")
    assert changed_paths(before, head, repo.root) == ["apps/api-gateway/README.md", "docs/rollouts.md"]
    assert [s.name for s in changed_services(discover_services(repo.root), changed_paths(before, head, repo.root),
                                             repo.root)] == ["api-gateway"]
    # The command as the job runs it, on this repository: a push changing no image input.
    output = tmp_path / "github-output"
    head_here = git(PROJECT_ROOT, "rev-parse", "HEAD")
    result = subprocess.run([sys.executable, "-m", "tools.images", "changed", "--base", head_here,
                             "--head", head_here, "--github-output", str(output)],
                            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and output.read_text() == "services=[]\n"


def test_a_push_that_creates_the_branch_rebuilds_every_service(repo: ProjectRepo):
    head = repo.git("rev-parse", "HEAD")
    assert "apps/api-gateway/main.go" in changed_paths("0" * 40, head, repo.root)


def test_changed_names_a_commit_git_does_not_know():
    result = subprocess.run([sys.executable, "-m", "tools.images", "changed", "--base", "no-such-commit"],
                            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith("images: git diff --name-only --no-renames no-such-commit...HEAD failed")
    assert "Traceback" not in result.stderr
