"""`platform affected`: the stacks a change touches, from the repository's own structure.

Each test commits a change on a branch of a small git repository made from this project and
asks which stacks the change touches, the way the pull-request workflow asks.
"""
from __future__ import annotations

import json
import shutil

import pytest

from infra.config.go_service import GoServiceConfig
from infra.config.worker import WorkerConfig
from ops.planning.impact import repo_path_keys

from tests.ops.conftest import ProjectRepo

ENV_STACKS = ["staging", "production"]
GATEWAY = ["api-gateway.staging", "api-gateway.production"]
WORKER = ["ai-worker.staging", "ai-worker.production"]
EVERY_STACK = ["staging", "production", "ai-worker.staging", "api-gateway.staging",
               "ai-worker.production", "api-gateway.production"]


def change(repo: ProjectRepo, edits: dict[str, str | None]) -> dict:
    """Commit `edits` (path -> new content, None deletes) on a branch; affected against main."""
    repo.branch("change")
    for path, content in edits.items():
        if content is None:
            (repo.root / path).unlink()
        else:
            repo.write(path, content)
    repo.commit()
    return repo.affected("--base", "main")


def names(result: dict) -> list[str]:
    return [s["stack"] for s in result["stacks"]]


def appended(repo: ProjectRepo, path: str, text: str = "\n// changed\n") -> str:
    return repo.read(path) + text


# -- the rules of the issue, one by one --------------------------------------------------------


def test_a_change_only_under_the_worker_folder_touches_exactly_its_two_stacks(repo):
    result = change(repo, {"workers/ai-worker/src/index.ts": appended(repo, "workers/ai-worker/src/index.ts")})
    assert names(result) == WORKER
    assert result["removed"] == []


def test_the_production_environment_file_touches_production_first_then_every_production_component(repo):
    result = change(repo, {"Pulumi.production.yaml": appended(repo, "Pulumi.production.yaml", "# tuned\n")})
    assert names(result) == ["production", "ai-worker.production", "api-gateway.production"]


def test_a_readme_change_touches_no_stack(repo):
    result = change(repo, {"README.md": appended(repo, "README.md", "\nMore words.\n")})
    assert names(result) == [] and result["removed"] == []
    assert result["unaffecting"] == ["README.md"]


def test_docs_and_tests_only_touch_no_stack(repo):
    result = change(repo, {
        "docs/config.md": appended(repo, "docs/config.md", "\nA note.\n"),
        "docs/runbooks/new.md": "# A runbook\n",
        "tests/test_render.py": appended(repo, "tests/test_render.py", "\n# note\n"),
    })
    assert names(result) == [] and result["removed"] == []
    assert sorted(result["unaffecting"]) == ["docs/config.md", "docs/runbooks/new.md", "tests/test_render.py"]


def test_anything_in_a_component_source_folder_touches_its_stacks(repo):
    # The folder is the unit: its build and tests, docs included, are what the workload ships.
    assert names(change(repo, {"apps/api-gateway/README.md": None})) == GATEWAY


def test_a_component_stack_file_touches_that_stack_alone(repo):
    path = "Pulumi.api-gateway.staging.yaml"
    result = change(repo, {path: repo.read(path).replace("LOG_LEVEL: debug", "LOG_LEVEL: info")})
    assert names(result) == ["api-gateway.staging"]
    assert result["stacks"][0]["reasons"] == [f"{path}: its stack file"]


def test_a_removed_stack_file_is_reported_as_removed_and_never_as_affected(repo):
    result = change(repo, {"Pulumi.ai-worker.staging.yaml": None})
    assert names(result) == []
    assert result["removed"] == [{
        "stack": "ai-worker.staging", "env": "staging", "component": "ai-worker",
        "kind": "cloudflare-worker", "reasons": ["Pulumi.ai-worker.staging.yaml: its stack file was removed"]}]
    assert [r["stack"] for r in result["matrix"]["removed"]] == ["ai-worker.staging"]


def test_a_new_service_added_as_folder_plus_stack_files_touches_its_two_stacks(repo):
    stack_file = repo.read("Pulumi.api-gateway.staging.yaml").replace("apps/api-gateway/catalog.json",
                                                                      "apps/billing/catalog.json")
    result = change(repo, {
        "apps/billing/go.mod": "module example.com/billing\n\ngo 1.26\n",
        "apps/billing/main.go": "package main\n\nfunc main() {}\n",
        "apps/billing/catalog.json": "{}\n",
        "Pulumi.billing.staging.yaml": stack_file,
        "Pulumi.billing.production.yaml": stack_file,
    })
    assert names(result) == ["billing.staging", "billing.production"]
    assert result["matrix"]["workloads-go-service"] == [
        {"folder": "apps/billing", "kind": "go-service", "components": ["billing"]}]
    assert result["matrix"]["production-components"][0]["after"] == "billing.staging"


def test_a_renamed_stack_file_is_one_stack_removed_and_its_new_name_affected(repo):
    repo.branch("rename")
    repo.git("mv", "Pulumi.api-gateway.staging.yaml", "Pulumi.gateway.staging.yaml")
    repo.commit()
    result = repo.affected("--base", "main")
    assert names(result) == ["gateway.staging"]
    assert [r["stack"] for r in result["removed"]] == ["api-gateway.staging"]


def test_a_renamed_source_file_touches_its_component(repo):
    repo.branch("rename")
    repo.git("mv", "apps/api-gateway/breaker.go", "apps/api-gateway/circuit_breaker.go")
    repo.commit()
    assert names(repo.affected("--base", "main")) == GATEWAY


def test_a_file_a_stack_mounts_touches_that_stack_only(repo):
    repo.write("config/catalog.staging.json", "{}\n")
    path = "Pulumi.api-gateway.staging.yaml"
    repo.write(path, repo.read(path).replace("apps/api-gateway/catalog.json", "config/catalog.staging.json"))
    repo.commit("staging mounts its own catalog")
    result = change(repo, {"config/catalog.staging.json": '{"modules": []}\n'})
    assert names(result) == ["api-gateway.staging"]
    assert result["stacks"][0]["reasons"] == [
        "config/catalog.staging.json: named by platform:files.sources"]


def test_an_image_build_context_touches_the_stack_that_builds_from_it(repo):
    path = "Pulumi.api-gateway.production.yaml"
    text = repo.read(path)
    ref_line = next(line for line in text.splitlines() if line.strip().startswith("ref:"))
    repo.write(path, text.replace(ref_line, "    build:\n      context: images/gateway\n"
                                            "      repository: registry.example.com/platform/api-gateway"))
    repo.write("images/gateway/Dockerfile", "FROM scratch\n")
    repo.commit("production builds its image")
    result = change(repo, {"images/gateway/Dockerfile": "FROM scratch\nUSER 65532\n"})
    assert names(result) == ["api-gateway.production"]
    assert result["stacks"][0]["reasons"] == [
        "images/gateway/Dockerfile: the folder platform:image.build.context names"]


def test_the_worker_bundle_is_a_build_output_so_its_source_folder_is_what_changes(repo):
    assert "workers/ai-worker/dist/worker.js" not in repo.git("ls-files")
    result = change(repo, {"workers/ai-worker/package.json": appended(repo, "workers/ai-worker/package.json", "")
                           + " "})
    assert names(result) == WORKER


@pytest.mark.parametrize("module, expected", [
    ("components/go_service.py", GATEWAY),
    ("components/cloudflare_worker.py", WORKER),
    # imported by both the Environment and the GoService, never by the Worker
    ("components/kubernetes_objects.py", ENV_STACKS + GATEWAY),
])
def test_a_component_module_touches_the_stacks_of_every_kind_that_imports_it(repo, module, expected):
    result = change(repo, {module: appended(repo, module, "\n# changed\n")})
    assert sorted(names(result)) == sorted(expected)


def test_a_new_component_module_is_followed_through_the_imports(repo):
    repo.branch("helper")
    repo.write("components/labels.py", '"""Shared labels."""\nMANAGED = "platform"\n')
    repo.write("components/cloudflare_worker.py",
               repo.read("components/cloudflare_worker.py") + "\nfrom components.labels import MANAGED  # noqa\n")
    repo.commit()
    repo.git("checkout", "-q", "-b", "helper-change")
    repo.write("components/labels.py", '"""Shared labels."""\nMANAGED = "platform-2"\n')
    repo.commit()
    assert names(repo.affected("--base", "helper")) == WORKER


@pytest.mark.parametrize("path", ["infra/naming.py", "__main__.py", "Pulumi.yaml", "requirements.txt",
                                  "requirements-dev.txt"])
def test_the_program_touches_every_stack(repo, path):
    result = change(repo, {path: appended(repo, path, "\n# changed\n")})
    assert names(result) == EVERY_STACK


def test_the_api_contract_touches_the_stacks_of_both_workloads(repo):
    result = change(repo, {"contract/openapi.yaml": appended(repo, "contract/openapi.yaml", "\n# note\n")})
    assert sorted(names(result)) == sorted(GATEWAY + WORKER)
    assert {w["folder"] for w in result["workloads"]} == {"apps/api-gateway", "workers/ai-worker"}


def test_a_policy_rule_change_touches_every_stack_the_pack_judges_and_says_why(repo):
    # Every preview and update runs the whole pack: a new rule meets each stack in this change.
    result = change(repo, {"policy/kubernetes_rules.py": appended(repo, "policy/kubernetes_rules.py", "\n# tuned\n")})
    assert names(result) == EVERY_STACK
    assert all(s["reasons"] == ["policy/kubernetes_rules.py: the policy pack every preview and update of "
                                "every stack runs"] for s in result["stacks"])
    assert result["unaffecting"] == []


def test_a_policy_folder_without_its_pack_touches_no_stack(repo):
    (repo.root / "policy/PulumiPolicy.yaml").unlink()  # on main: no pack, before and after
    repo.commit()
    result = change(repo, {"policy/notes.md": "# notes\n"})
    assert names(result) == [] and result["unaffecting"] == ["policy/notes.md"]


def test_a_file_the_program_reads_by_path_touches_the_kinds_that_read_it(repo):
    # infra/environment_stack.py reads PROJECT_ROOT / "tools" / "kubernetes-version"
    result = change(repo, {"tools/kubernetes-version": "1.36\n"})
    assert names(result) == ENV_STACKS


def test_the_config_models_name_every_repository_path_a_stack_can_point_at():
    assert set(repo_path_keys(GoServiceConfig)) == {("files", "sources", "*"), ("image", "build", "context")}
    assert set(repo_path_keys(WorkerConfig)) == {("bundle",)}


# -- the shape CI consumes ---------------------------------------------------------------------


def test_the_matrices_put_environments_first_and_promote_components_after_their_earlier_stack(repo):
    result = change(repo, {"Pulumi.yaml": appended(repo, "Pulumi.yaml", "# changed\n")})
    matrix = result["matrix"]
    assert [e["stack"] for e in matrix["environments"]] == ENV_STACKS
    assert [e["stack"] for e in matrix["staging-environment"]] == ["staging"]
    assert [(e["stack"], e["after"]) for e in matrix["staging-components"]] == [
        ("ai-worker.staging", ""), ("api-gateway.staging", "")]
    assert [(e["stack"], e["after"]) for e in matrix["production-components"]] == [
        ("ai-worker.production", "ai-worker.staging"), ("api-gateway.production", "api-gateway.staging")]
    assert matrix["production-stacks"] == ["production", "ai-worker.production", "api-gateway.production"]
    assert matrix["any"] is True


def test_a_production_only_change_waits_for_no_staging_stack(repo):
    path = "Pulumi.api-gateway.production.yaml"
    matrix = change(repo, {path: appended(repo, path, "# tuned\n")})["matrix"]
    assert matrix["staging-components"] == [] and matrix["staging-environment"] == []
    assert [(e["stack"], e["after"]) for e in matrix["production-components"]] == [("api-gateway.production", "")]
    assert matrix["production-stacks"] == ["api-gateway.production"] and matrix["staging-stacks"] == []


def test_github_output_holds_one_line_per_matrix(repo, tmp_path):
    repo.branch("change")
    repo.write("apps/api-gateway/main.go", appended(repo, "apps/api-gateway/main.go"))
    repo.commit()
    output = tmp_path / "github_output"
    output.write_text("earlier=1\n")
    code, _, err = repo.platform("affected", "--base", "main", "--github-output", str(output))
    assert code == 0, err
    lines = dict(line.split("=", 1) for line in output.read_text().splitlines())
    assert lines["earlier"] == "1"  # appended, never overwritten
    assert json.loads(lines["stacks"]) == GATEWAY
    assert lines["any"] == "true" and lines["python"] == "false"
    assert json.loads(lines["workloads-go-service"])[0]["folder"] == "apps/api-gateway"
    assert json.loads(lines["workloads-cloudflare-worker"]) == []


def test_changed_paths_on_stdin_are_judged_against_the_working_folder(repo):
    result = repo.affected(stdin="workers/ai-worker/src/index.ts\nREADME.md\n")
    assert names(result) == WORKER
    (repo.root / "Pulumi.api-gateway.production.yaml").unlink()
    result = repo.affected(stdin="D\tPulumi.api-gateway.production.yaml\n")
    assert [r["stack"] for r in result["removed"]] == ["api-gateway.production"]
    assert result["removed"][0]["kind"] == "go-service"


def test_a_first_push_compares_against_nothing_so_every_stack_is_affected(repo):
    assert names(repo.affected("--base", "0" * 40, "--head", "main")) == EVERY_STACK


def test_the_text_output_names_each_stack_and_why(repo):
    repo.branch("change")
    repo.write("apps/api-gateway/main.go", appended(repo, "apps/api-gateway/main.go"))
    (repo.root / "Pulumi.ai-worker.production.yaml").unlink()
    repo.commit()
    code, out, _ = repo.platform("affected", "--base", "main")
    assert code == 0
    assert out.splitlines()[0].split()[:2] == ["api-gateway.staging", "go-service"]
    assert "apps/api-gateway/main.go: the source folder of api-gateway" in out
    removed = next(line for line in out.splitlines() if line.startswith("ai-worker.production "))
    assert removed.split()[1] == "removed:" and "`platform destroy ai-worker.production --yes`" in removed


# -- bad input: one message, exit 1, no traceback ----------------------------------------------


def test_a_bad_base_ref_is_one_clear_message(repo):
    code, out, err = repo.platform("affected", "--base", "no-such-branch")
    assert code == 1 and out == ""
    assert err.startswith("error: --base 'no-such-branch' is not a commit of the repository")
    assert "Traceback" not in err and len(err.splitlines()) == 1


def test_a_bad_head_ref_is_one_clear_message(repo):
    code, _, err = repo.platform("affected", "--base", "main", "--head", "nope~3")
    assert code == 1 and err.startswith("error: --head 'nope~3' is not a commit")


def test_a_folder_that_is_not_a_git_repository_is_one_clear_message(repo, tmp_path):
    plain = tmp_path / "plain"
    shutil.copytree(repo.root, plain, ignore=shutil.ignore_patterns(".git"))
    code, _, err = ProjectRepo(plain).platform("affected", "--base", "main")
    assert code == 1
    assert err == (f"error: {plain} is not in a git repository: comparing --base with --head needs "
                   "the project's git history (or pipe the changed paths on stdin)\n")


def test_a_broken_stack_file_on_the_branch_is_named_with_where_it_breaks(repo):
    repo.branch("broken")
    repo.write("Pulumi.api-gateway.staging.yaml", "config:\n  platform:kind: [go-service\n")
    repo.commit()
    code, _, err = repo.platform("affected", "--base", "main")
    assert code == 1
    assert err.startswith("error: stack 'api-gateway.staging': Pulumi.api-gateway.staging.yaml is not valid YAML")
    assert "Traceback" not in err
