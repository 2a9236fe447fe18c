"""CONTRIBUTING.md's "Adding a Go service or a Worker", run as written: every block marked
`<!-- contributing -->`, in order, in one shell, in a git clone-like copy of the project, for the
service `billing-api` and the Worker `search-worker`: the templates copied and renamed, the
bundle built, the Worker's secret set with the real CLI, the snapshots recorded and shown by the
review step, the architecture regenerated. Then what `make test` holds them to: the Makefile
finds both, their own checks pass, and so does every glob-based test over their stacks.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.e2e.harness import BIN_DIR, REPO_ROOT, Workspace, operator_shell_env
from tests.ops.conftest import GIT_IDENTITY
from tests.test_docs_contributing import marked_blocks

SERVICE, WORKER = "billing-api", "search-worker"
ENVIRONMENTS = ("staging", "production")
NEW_STACKS = [f"{component}.{env}" for component in (SERVICE, WORKER) for env in ENVIRONMENTS]
TOKEN = "search-worker-token-for-the-recipe"
PASSPHRASE = "platform-example"  # what the recipe exports (the example stacks' passphrase)
# The glob-based tests a new stack must pass (CONTRIBUTING.md lists them).
GLOB_TESTS = ["tests/test_stack_graphs.py", "tests/test_go_service.py", "tests/test_cloudflare_worker.py",
              "tests/test_workload_wiring.py", "tests/test_metric_names.py", "tests/test_render.py",
              "tests/test_independence.py", "tests/test_network_connectivity.py",
              "tests/test_service_monitoring.py", "tests/test_alert_rules.py",
              "tests/policy/test_pack_on_every_stack.py", "tests/test_secrets_hygiene.py",
              "tests/test_environment_ref.py", "tests/test_docs_architecture.py"]


@dataclass
class Recipe:
    root: Path
    env: dict[str, str]
    output: str  # what the blocks printed (stdout)

    def run(self, *command: str, cwd: Path | None = None, timeout: float = 1200,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(list(command), cwd=cwd or self.root, env={**self.env, **(env or {})},
                              capture_output=True, text=True, timeout=timeout)


def script() -> str:
    parts = ["set -euo pipefail"]
    for number, block in enumerate(marked_blocks(), 1):
        parts.append(f"echo '::: CONTRIBUTING.md block {number}' >&2\n{block}")
    return "\n".join(parts) + "\n"


@pytest.fixture(scope="module")
def recipe(toolchain, tmp_path_factory) -> Recipe:
    base = tmp_path_factory.mktemp("contributing")
    ws = Workspace.create(base, kubeconfig=Path("/nonexistent"))
    # A working copy where the loop has run once (`make test`): the engine built, each existing
    # Worker's npm packages installed (hard links, nothing copied; only the new Worker installs).
    (ws.root / "tools" / "engine" / "bin").symlink_to(BIN_DIR)
    for installed in [*REPO_ROOT.glob("workers/*/node_modules"),
                      *REPO_ROOT.glob("tests/fixtures/*/workers/*/node_modules")]:
        target = ws.root / installed.relative_to(REPO_ROOT)
        subprocess.run(["cp", "-al", str(installed), str(target)], check=True)
    if (REPO_ROOT / ".scanners").is_dir():  # installed by `make test` (make scanners)
        (ws.root / ".scanners").symlink_to(REPO_ROOT / ".scanners")
    home = base / "home"
    home.mkdir()
    env = operator_shell_env(home)
    go = shutil.which("go") or "/usr/local/go/bin/go"
    # A home of its own (its Pulumi login), with the machine's package caches, as a team
    # member's has: npm's and Go's, so nothing already downloaded is fetched again.
    caches = {name: subprocess.run([go, "env", name], capture_output=True, text=True,
                                   check=True).stdout.strip() for name in ("GOMODCACHE", "GOCACHE")}
    env.update({"SEARCH_WORKER_API_TOKEN": TOKEN, **GIT_IDENTITY, **caches,
                "npm_config_cache": os.environ.get("npm_config_cache") or str(Path.home() / ".npm"),
                "PATH": f"{Path(go).parent}{os.pathsep}{env.get('PATH', '')}"})
    recipe = Recipe(ws.root, env, "")
    assert recipe.run("git", "init", "-q", "-b", "main").returncode == 0
    (ws.root / ".git" / "info").mkdir(exist_ok=True)
    (ws.root / ".git" / "info" / "exclude").write_text(".venv\n.scanners\ntools/engine/bin\nnode_modules/\n")
    for command in (["git", "add", "-A"], ["git", "commit", "-q", "-m", "the project, as cloned"]):
        assert recipe.run(*command).returncode == 0, command
    result = recipe.run("bash", "-c", script(), timeout=2400)
    if result.returncode != 0:
        failed = [line for line in result.stderr.splitlines() if line.startswith("::: ")]
        raise AssertionError(f"CONTRIBUTING.md failed in {failed[-1][4:] if failed else '?'} "
                             f"(exit {result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-6000:]}")
    recipe.output = result.stdout
    return recipe


def test_the_recipe_makes_the_service_the_worker_and_their_stack_files(recipe: Recipe):
    assert (recipe.root / "apps" / SERVICE / "go.mod").read_text().startswith(f"module {SERVICE}\n")
    assert (recipe.root / "apps" / SERVICE / "bin" / SERVICE).is_file()  # make services built it
    assert (recipe.root / "workers" / WORKER / "dist" / "worker.js").is_file()  # make worker built it
    for stack in NEW_STACKS:
        assert (recipe.root / f"Pulumi.{stack}.yaml").is_file(), stack


def test_the_workers_secret_is_set_encrypted_in_its_stack_files(recipe: Recipe):
    for env in ENVIRONMENTS:
        stack_file = recipe.root / f"Pulumi.{WORKER}.{env}.yaml"
        document = yaml.safe_load(stack_file.read_text())
        assert document["encryptionsalt"]
        assert set(document["config"]["platform:secrets"]["API_TOKEN"]) == {"secure"}
        assert TOKEN not in stack_file.read_text()
        # Read back as the recipe's shell could: logged in (its home), with the passphrase it exported.
        shown = recipe.run(str(BIN_DIR / "pulumi"), "config", "get", "--path", "platform:secrets.API_TOKEN",
                           "-s", f"{WORKER}.{env}", env={"PULUMI_CONFIG_PASSPHRASE": PASSPHRASE})
        assert shown.stdout.strip() == TOKEN, shown.stderr


def test_the_review_step_shows_the_new_snapshots(recipe: Recipe):
    for stack in NEW_STACKS:
        assert f"+++ b/tests/__snapshots__/test_stack_graphs/test_stack_graph_matches_its_reviewed_snapshot[{stack}].json" \
            in recipe.output, stack
    assert SERVICE in (recipe.root / "ARCHITECTURE.md").read_text()  # regenerated with its box


def test_make_test_finds_and_checks_the_new_service_and_worker(recipe: Recipe):
    planned = recipe.run("make", "-n", "test-services", "test-workers")
    assert planned.returncode == 0, planned.stderr
    assert f"apps/{SERVICE}" in planned.stdout and f"workers/{WORKER}" in planned.stdout
    # What `make test` runs for each: the service's vet, race tests and build; the Worker's
    # typecheck, tests in workerd and bundle budget.
    service = recipe.run("make", "-C", f"apps/{SERVICE}", "vet", "test", "build", f"GO={shutil.which('go', path=recipe.env['PATH'])}")
    assert service.returncode == 0, service.stdout + service.stderr
    worker = recipe.run("bash", "-c", "npm run --silent typecheck && npm test && npm run --silent budget",
                        cwd=recipe.root / "workers" / WORKER)
    assert worker.returncode == 0, worker.stdout + worker.stderr
    assert f"bundle budget: {WORKER}'s dist/worker.js" in worker.stdout


def test_every_glob_test_passes_for_the_new_stacks(recipe: Recipe):
    selected = f"{SERVICE} or {WORKER} or connectivity or architecture"
    result = recipe.run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", selected,
                        *GLOB_TESTS, timeout=2400)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and " failed" not in result.stdout
