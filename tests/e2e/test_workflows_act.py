"""The GitHub Actions workflows, executed: act (tools/engine/act) runs deploy.yml, preview.yml,
drift.yml and rollback.yml on this machine, every step on the host (`-P
ubuntu-24.04=-self-hosted`, no Docker), against the process's local cluster, an S3 state
backend on loopback and the GitHub stand-in of tests/ops/conftest.py.

The workflows run as they are written. Only the outside actions they pin by commit are
replaced, by the local stand-ins of tests/e2e/actions/ (their README says what each does and
does not do), mapped with act's `--local-repository owner/name@sha=folder` so the pins stay;
the repository's own composite actions (.github/actions/*) run for real, `make venv worker`
included, in a fresh workspace per job. The repository "on GitHub" is a git repository made from
a copy of the project (the harness's Workspace), whose every Kubernetes stack the module
deploys once from `main` before the runs; each test starts from that and puts back what it
changes.

What act cannot do, and how the module does without it:
- Secrets per GitHub environment: act gives every job of a run one set of secrets. Each run is
  given the secrets of the environments its jobs bind (read from the workflow; a drift run is
  one per matrix environment, `--matrix env:<name>`), and a run binding two environments with
  different values is refused here rather than given one of them. The one exception is said
  where it is made: the production push is given production's secrets for its read-only
  preview job too (which identity each job holds: tests/test_workflows.py).
- deploy.yml's first job calls test.yml, which runs `make test` and `make e2e`, this module
  included: in the deploy run's repository, test.yml is replaced by a workflow_call workflow of
  one job that says so (deploy.yml itself is not touched).
- GitHub itself: the API stand-in of tests/ops (comments, issues, branches, files, pull
  requests) answers the project's commands (`platform preview-comment`, `drift-issues`,
  `pull-request`), so rollback.yml's `record` job opens its pull request there.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from infra.stack_files import read_stack_config
from ops.reporting.comments import marked_stack
from ops.reporting.issues import drift_stack
from tests.e2e.conftest import FIGURES, deploy_stacks, rolled_out
from tests.e2e.harness import (
    BIN_DIR,
    ENVIRONMENTS,
    KUBERNETES_STACKS,
    REPO_ROOT,
    Workspace,
    namespace_of,
    stack_config,
)
from tests.e2e.kube_objects import hpa_min
from tests.e2e.object_store import ObjectStore
from tests.ops.conftest import GIT_IDENTITY, GitHubStandIn
from tools.cluster import Cluster
from tools.cluster.kube import Kube, path_for

ACT = BIN_DIR / "act"
STAND_INS = Path(__file__).resolve().parent / "actions"
WORKFLOWS = REPO_ROOT / ".github" / "workflows"
SERVICE = "api-gateway.staging"
NEW_IMAGE = "registry.example.com/platform/api-gateway@sha256:" + "5a" * 32
PASSPHRASE = "platform-example"  # the committed example stacks' passphrase (README, "Secrets")
RUN_TIMEOUT = 1800  # one act run, at most: a job sets up a virtualenv and the Worker bundles


def pinned_actions() -> dict[str, Path]:
    """Every outside action the workflows and the local composite actions use (`owner/name@sha`),
    with the stand-in folder that replaces it."""
    found = {}
    files = [*WORKFLOWS.glob("*.yml"), *(REPO_ROOT / ".github" / "actions").glob("*/action.yml")]
    for path in files:
        for uses in re.findall(r"uses:\s*([\w.-]+/[\w.-]+)@([0-9a-f]{40})", path.read_text()):
            found[f"{uses[0]}@{uses[1]}"] = STAND_INS / uses[0]
    return found


def environments_bound(workflow: str, jobs: list[str] | None = None) -> set[str]:
    """The GitHub environments the workflow's jobs (or the named ones) bind, as written."""
    document = yaml.safe_load((WORKFLOWS / workflow).read_text())
    return {str(job["environment"]) for name, job in document["jobs"].items()
            if "environment" in job and (jobs is None or name in jobs)}


@dataclass
class Run:
    """One act run: its exit status, each job's result, the log, the wall time."""

    workflow: str
    returncode: int
    results: dict[str, list[str]]  # job id -> the result of each of its runs (matrix legs)
    # (a job of a called workflow: "<calling job>/<its id>")
    names: dict[str, list[str]]  # job id -> the name of each run, as GitHub shows it
    log: list[dict]
    seconds: float

    def output(self, job: str | None = None) -> str:
        return "\n".join(str(e.get("msg", "")) for e in self.log if job is None or e.get("jobID") == job)

    def explain(self) -> str:
        tail = "\n".join(f"[{e.get('jobID', '')}] {e.get('msg', '')}" for e in self.log[-150:])
        return f"act {self.workflow} exited {self.returncode}; jobs {self.results}\n{tail}"


@dataclass
class Environments:
    """The secrets of each GitHub environment the workflows bind, pointing at the local backend
    and cluster. Only the Cloudflare token tells environments apart here (one local backend and
    cluster stand for every environment's); it is what shows a job held another's secrets."""

    common: dict[str, str]
    cloudflare: dict[str, str] = field(default_factory=dict)

    def secrets_of(self, environment: str) -> dict[str, str]:
        token = self.cloudflare.setdefault(environment, f"{environment}-cloudflare-{secrets.token_hex(8)}")
        return {**self.common, "CLOUDFLARE_API_TOKEN": token}

    def production_values(self) -> set[str]:
        return {v for e, v in self.cloudflare.items() if e.startswith("production")} | {
            self.secrets_of(e)["CLOUDFLARE_API_TOKEN"] for e in ("production", "production-read")}


@dataclass
class Actions:
    """The repository that plays GitHub's, the backend and cluster it deploys to, the GitHub API
    stand-in, and a way to run a workflow with act."""

    ws: Workspace
    kube: Kube
    store: ObjectStore
    github: GitHubStandIn
    base: Path
    environments: Environments
    runs: int = 0

    def git(self, *args: str) -> str:
        result = subprocess.run(["git", *args], check=False, cwd=self.ws.root, capture_output=True, text=True,
                                env={**os.environ, **GIT_IDENTITY})
        assert result.returncode == 0, f"git {' '.join(args)}: {result.stderr}"
        return result.stdout.strip()

    def image(self, stack: str) -> str:
        deployment = self.kube.get(path_for("apps/v1", "Deployment", stack.split(".")[0],
                                            namespace_of(stack, self.ws.root)))
        return deployment["spec"]["template"]["spec"]["containers"][0]["image"]

    def history(self, stack: str) -> list[dict]:
        return json.loads(self.ws.platform("history", stack, "--json").stdout)

    def set_image(self, stack: str, image: str) -> None:
        stack_file = self.ws.root / f"Pulumi.{stack}.yaml"
        old = stack_config(stack, self.ws.root)["platform:image"]["ref"]
        stack_file.write_text(stack_file.read_text().replace(old, image))

    def engine_config(self, stack: str, stack_file: str) -> dict:
        """The config the engine would read from this text of the stack's file (secrets still
        encrypted; numbers as the engine sees them, however the file spells them)."""
        folder = self.base / f"config-{secrets.token_hex(4)}"
        folder.mkdir()
        shutil.copy2(self.ws.root / "Pulumi.yaml", folder / "Pulumi.yaml")
        (folder / f"Pulumi.{stack}.yaml").write_text(stack_file)
        return read_stack_config(stack, folder).config

    def artifact(self, run_id: str, name: str) -> Path:
        return self.base / "store" / "artifacts" / run_id / name

    def act(self, event_name: str, workflow: str, event: dict, environments: set[str],
            args: list[str] = (), env: dict[str, str] | None = None) -> tuple[Run, str]:
        """`act EVENT -W .github/workflows/WORKFLOW` in the repository, with the secrets of
        `environments`; (the run, its run id)."""
        missing = [uses for uses, stand_in in pinned_actions().items() if not (stand_in / "action.yml").is_file()]
        assert not missing, f"no stand-in in {STAND_INS} for {missing}: act would try to fetch them"
        self.runs += 1
        run_id = f"{self.runs}{secrets.randbelow(10**6):06d}"
        folder = self.base / f"run-{run_id}"
        home = folder / "home"  # the runner's home: ~/.kube/config and ~/.pulumi go there
        home.mkdir(parents=True)
        event_file = folder / "event.json"
        event_file.write_text(json.dumps({"repository": {"full_name": GitHubStandIn.repository,
                                                         "default_branch": "main"}, **event}))
        values: dict[str, str] = {"GITHUB_TOKEN": self.github.token}
        for environment in sorted(environments):
            for name, value in self.environments.secrets_of(environment).items():
                if values.get(name, value) != value:
                    raise AssertionError(f"{workflow}: its jobs bind {sorted(environments)}, whose {name} differ; "
                                         "act gives a run one set of secrets: run them apart")
                values[name] = value
        secret_file = folder / "secrets"
        secret_file.write_text("".join(f"{k}='{v}'\n" for k, v in values.items()))
        var_file = folder / "vars"
        var_file.write_text(f"PULUMI_BACKEND_URL='{self.ws.backend_url}'\n")
        mapped = [a for uses, stand_in in pinned_actions().items() for a in ("--local-repository", f"{uses}={stand_in}")]
        go_env = subprocess.run(["go", "env", "GOCACHE", "GOMODCACHE"], capture_output=True, text=True,
                                check=True).stdout.split()
        real_home = Path.home()
        process_env = {
            # What a runner has: the machine's tools, a home of its own, the package caches that
            # the setup action restores (uv's, with actions/cache; npm's and Go's with
            # setup-node and setup-go): the machine's own; no credentials.
            "PATH": os.pathsep.join([str(Path(shutil.which("go")).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
            "HOME": str(home), "LANG": "C.UTF-8", "TMPDIR": str(folder),
            "PIP_CACHE_DIR": str(real_home / ".cache" / "pip"), "npm_config_cache": str(real_home / ".npm"),
            "UV_CACHE_DIR": os.environ.get("UV_CACHE_DIR", str(real_home / ".cache" / "uv")),
            "GOCACHE": go_env[0], "GOMODCACHE": go_env[1],
            "PULUMI_SKIP_UPDATE_CHECK": "true", "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "NO_COLOR": "1",
            # Where the stand-ins find the repository, the engine, the caches and artifacts.
            "ACT_STANDIN_REPOSITORY": str(self.ws.root), "ACT_STANDIN_ENGINE_BIN": str(BIN_DIR),
            "ACT_STANDIN_STORE": str(self.base / "store"),
            **(env or {}),
        }
        cmd = [str(ACT), event_name, "-W", f".github/workflows/{workflow}", "--json",
               "-P", "ubuntu-24.04=-self-hosted", "--action-offline-mode", "--no-skip-checkout",
               "--no-cache-server", "--defaultbranch", "main", "--eventpath", str(event_file),
               "--secret-file", str(secret_file), "--var-file", str(var_file),
               "--env-file", str(folder / "none.env"), "--input-file", str(folder / "none.input"),
               "--action-cache-path", str(folder / "act-cache"),
               "--env", f"GITHUB_REPOSITORY={GitHubStandIn.repository}",
               "--env", f"GITHUB_API_URL={self.github.url}", "--env", f"GITHUB_RUN_ID={run_id}",
               "--env", "GITHUB_SERVER_URL=https://github.test",
               *mapped, *args]
        started = time.monotonic()
        with open(folder / "act.log", "w+") as log:
            result = subprocess.run(cmd, check=False, cwd=self.ws.root, env=process_env, stdout=log, stderr=subprocess.STDOUT,
                                    timeout=RUN_TIMEOUT)
            log.seek(0)
            lines = log.read().splitlines()
        seconds = round(time.monotonic() - started, 1)
        entries = []
        for line in lines:
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                entries.append({"msg": line})
        results: dict[str, list[str]] = {}
        names: dict[str, list[str]] = {}
        for entry in entries:
            if "jobResult" in entry:
                # "job" is "<workflow>/<name>", or "<calling job>/<workflow>/<name>" for a job of a
                # called workflow, whose id is then "<calling job>/<id>".
                path, _, name = entry.get("job", "").rpartition("/")
                job = entry["jobID"] if "/" not in path else f"{path.split('/')[0]}/{entry['jobID']}"
                results.setdefault(job, []).append(entry["jobResult"])
                names.setdefault(job, []).append(name.strip())
        return Run(workflow, result.returncode, results, names, entries, seconds), run_id


@pytest.fixture(scope="module")
def actions(cluster: Cluster, tmp_path_factory) -> Actions:
    """The repository on `main` with every Kubernetes stack deployed from it (namespaces of its
    own on the process's cluster, state in a bucket of an S3 store on loopback), the GitHub
    stand-in serving, and the engine's Kubernetes plugin in the runner's plugin cache."""
    assert ACT.is_file(), f"{ACT} is missing: `python tools/engine/build.py act` builds it"
    base = tmp_path_factory.mktemp("act")
    store = ObjectStore(base / "object-store").start()
    github = GitHubStandIn()
    threading.Thread(target=github.serve_forever, daemon=True).start()
    try:
        ws = Workspace.create(base / "github", cluster.kubeconfig)
        ws.backend_url = store.backend_url
        # Deployed as the jobs deploy: the kubeconfig in the home folder (.github/actions/credentials),
        # no KUBECONFIG variable (the provider records neither: infra/providers.py).
        deployer = base / "deployer-home"
        (deployer / ".kube").mkdir(parents=True)
        (deployer / ".kube" / "config").write_text(cluster.kubeconfig.read_text())
        ws.extra_env = {**store.credentials(), "HOME": str(deployer), "KUBECONFIG": None}
        for env in ENVIRONMENTS:
            ws.use_namespace(env, f"act-{env}")
        kubeconfig = json.dumps(yaml.safe_load(cluster.kubeconfig.read_text()))  # one line: JSON is YAML
        environments = Environments(common={
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
            "STATE_ACCESS_KEY_ID": store.access_key, "STATE_SECRET_ACCESS_KEY": store.secret_key,
            "KUBECONFIG": kubeconfig})
        state = Actions(ws, cluster.client(), store, github, base, environments)
        state.git("init", "-q", "-b", "main")
        state.git("remote", "add", "origin", f"https://github.test/{GitHubStandIn.repository}.git")
        (ws.root / ".git" / "info" / "exclude").write_text(".venv\n")
        seed_plugin_cache(base / "store")
        deploy_stacks(ws, state.kube, KUBERNETES_STACKS,
                      lambda stack: ws.platform("up", stack, "--yes", "--message", "deploy main").stderr)
        state.git("add", "-A")
        state.git("commit", "-q", "-m", "main, as deployed (the stacks' encryption salts included)")
        yield state
    finally:
        github.shutdown()
        github.server_close()
        store.stop()


def seed_plugin_cache(store: Path) -> None:
    """The entry `.github/actions/pulumi` restores its provider plugins from (actions/cache, key
    by the pinned versions), holding the Kubernetes provider `make engine` built, laid out as
    `pulumi plugin install` lays it out. Its install step downloads from Pulumi's servers, which
    cannot be reached here; the Cloudflare and Docker providers cannot be built here (their
    modules are not served), and the Kubernetes stacks do not load them."""
    pins = json.loads(subprocess.run(["python3", str(REPO_ROOT / "tools" / "engine" / "versions.py"), "--released"],
                                     capture_output=True, text=True, check=True).stdout)
    key = (f"pulumi-plugins-Linux-kubernetes-{pins['plugin-kubernetes']}-cloudflare-{pins['plugin-cloudflare']}"
           f"-docker-{pins['plugin-docker']}")
    plugin = store / "cache" / key / "0" / f"resource-kubernetes-v{pins['plugin-kubernetes']}"
    plugin.mkdir(parents=True)
    (plugin / "pulumi-resource-kubernetes").symlink_to(BIN_DIR / "pulumi-resource-kubernetes")


def record(run: Run, name: str) -> None:
    FIGURES[f"act: {name}"] = f"{run.seconds}s wall, jobs {dict(sorted(run.results.items()))}"


# -- deploy.yml: a push to main ---------------------------------------------------------------

CALLED_TESTS = """\
# The deploy run's stand-in for test.yml (tests/e2e/test_workflows_act.py): the real one runs
# `make test` and `make e2e`, and make e2e runs the module that runs this.
name: test
on:
  workflow_call:
permissions:
  contents: read
jobs:
  roll-up:
    name: test passed
    runs-on: ubuntu-24.04
    steps:
      - run: echo "make test and make e2e run apart from this run"
"""


def test_a_push_to_main_deploys_the_changed_stack(actions: Actions):
    before = actions.git("rev-parse", "HEAD")
    actions.set_image(SERVICE, NEW_IMAGE)
    actions.git("commit", "-q", "-am", "api-gateway: new image in staging")
    after = actions.git("rev-parse", "HEAD")
    called = actions.ws.root / ".github" / "workflows" / "test.yml"
    real_tests = called.read_text()
    called.write_text(CALLED_TESTS)
    try:
        run, run_id = actions.act("push", "deploy.yml", {
            "ref": "refs/heads/main", "before": before, "after": after, "deleted": False},
            environments_bound("deploy.yml", ["staging-components"]))
    finally:
        called.write_text(real_tests)
    try:
        record(run, "deploy.yml (push to main, one staging stack)")
        assert run.returncode == 0, run.explain()
        assert run.results["affected"] == ["success"], run.explain()
        assert run.results["staging-components"] == ["success"], run.explain()
        assert run.names["staging-components"] == [f"up {SERVICE}"]
        assert run.results["roll-up"] == ["success"], run.explain()
        assert run.results["tests/roll-up"] == ["success"]  # the called test workflow's stand-in
        # only the changed stack: nothing for the environment stacks or production
        for job in ("staging-environment", "production-preview", "production-environment",
                    "production-components", "teardown"):
            assert job not in run.results, run.explain()
        rolled_out(actions.kube, SERVICE, actions.ws.root)
        assert actions.image(SERVICE) == NEW_IMAGE
        assert actions.history(SERVICE)[-1]["message"] == f"deploy {after}"
        deployed = actions.artifact(run_id, f"deployed-{SERVICE}") / SERVICE
        assert deployed.read_text().strip() == after  # what the production promotion waits for
    finally:  # main as it was, deployed again
        actions.git("revert", "--no-edit", "HEAD")
        actions.ws.platform("up", SERVICE, "--yes", "--message", "deploy main")
        rolled_out(actions.kube, SERVICE, actions.ws.root)


PRODUCTION_SERVICE = "api-gateway.production"


def test_a_push_changing_production_applies_the_plan_its_reviewers_approved(actions: Actions):
    """production-preview saves each stack's update plan beside the summary the reviewers read;
    the production job applies that plan (`platform up --plan`)."""
    before = actions.git("rev-parse", "HEAD")
    stack_file = actions.ws.root / f"Pulumi.{PRODUCTION_SERVICE}.yaml"
    wanted = stack_config(PRODUCTION_SERVICE, actions.ws.root)["platform:scaling"]["min_replicas"] + 1
    stack_file.write_text(stack_file.read_text().replace(
        f"min_replicas: {wanted - 1}\n", f"min_replicas: {wanted}\n", 1))
    actions.git("commit", "-q", "-am", "api-gateway: one more replica in production")
    after = actions.git("rev-parse", "HEAD")
    called = actions.ws.root / ".github" / "workflows" / "test.yml"
    real_tests = called.read_text()
    called.write_text(CALLED_TESTS)
    bound = environments_bound("deploy.yml", ["production-preview", "production-components"])
    assert bound == {"production-read", "production"}
    try:
        # act gives a run one set of secrets: here production's, the preview job's included (which
        # identity each job holds is the structure tests' and the pull-request run's to show).
        run, run_id = actions.act("push", "deploy.yml", {
            "ref": "refs/heads/main", "before": before, "after": after, "deleted": False}, {"production"})
    finally:
        called.write_text(real_tests)
    try:
        record(run, "deploy.yml (push to main, one production stack, by its approved plan)")
        assert run.returncode == 0, run.explain()
        for job in ("affected", "production-preview", "production-components", "roll-up"):
            assert run.results[job] == ["success"], run.explain()
        for job in ("staging-environment", "staging-components", "production-environment", "teardown"):
            assert job not in run.results, run.explain()
        plan = actions.artifact(run_id, f"plan-{PRODUCTION_SERVICE}")
        assert json.loads((plan / "plan.json").read_text())["resourcePlans"]
        assert not json.loads((plan / "preview.json").read_text()).get("new_stack")
        assert f"{PRODUCTION_SERVICE}: applying only what the plan build/plan/plan.json holds" \
            in run.output("production-components"), run.explain()
        assert hpa_min(actions.kube, namespace_of(PRODUCTION_SERVICE, actions.ws.root), "api-gateway") == wanted
        assert actions.history(PRODUCTION_SERVICE)[-1]["message"] == f"deploy {after}"
    finally:  # main as it was, deployed again
        actions.git("revert", "--no-edit", "HEAD")
        actions.ws.platform("up", PRODUCTION_SERVICE, "--yes", "--message", "deploy main")
        rolled_out(actions.kube, PRODUCTION_SERVICE, actions.ws.root)


# -- preview.yml: a pull request --------------------------------------------------------------

# Sourced by every bash step of the preview run (act passes BASH_ENV through): each step's
# environment, one file per shell, to look for credentials in.
RECORDER = 'env -0 > "$ACT_ENV_RECORD/$$-$RANDOM.env" 2>/dev/null || true\n'


def test_a_pull_request_is_previewed_and_commented_without_production_credentials(actions: Actions):
    number = 7
    main = actions.git("rev-parse", "main")
    actions.git("checkout", "-q", "-b", "new-image", "main")
    actions.set_image(SERVICE, NEW_IMAGE)
    actions.git("commit", "-q", "-am", "api-gateway: new image in staging")
    head = actions.git("rev-parse", "HEAD")
    # GitHub's merge commit for the pull request, refs/pull/N/merge: what the run checks out.
    actions.git("checkout", "-q", "--detach", "main")
    actions.git("merge", "-q", "--no-ff", "-m", f"Merge {head} into {main}", "new-image")
    merge = actions.git("rev-parse", "HEAD")
    actions.git("update-ref", f"refs/pull/{number}/merge", merge)
    records = actions.base / f"env-records-{number}"
    records.mkdir()
    recorder = actions.base / "record-env.sh"
    recorder.write_text(RECORDER)
    repo = {"full_name": GitHubStandIn.repository}
    bound = environments_bound("preview.yml")
    try:
        run, _ = actions.act("pull_request", "preview.yml", {
            "action": "synchronize", "number": number,
            "pull_request": {"number": number, "head": {"sha": head, "ref": "new-image", "repo": repo},
                             "base": {"sha": main, "ref": "main", "repo": repo}}},
            bound, env={"BASH_ENV": str(recorder), "ACT_ENV_RECORD": str(records)})
    finally:
        actions.git("checkout", "-q", "main")
    record(run, "preview.yml (pull request, one staging stack)")
    assert bound == {"staging-read"}  # the promotion order's first environment, read-only
    assert run.returncode == 0, run.explain()
    assert run.results["affected"] == ["success"]
    assert run.results["staging-components"] == ["success"], run.explain()
    assert run.results["roll-up"] == ["success"], run.explain()
    assert "render-diff" not in run.results  # nothing of production changed

    comments = {marked_stack(c["body"]): c["body"] for c in actions.github.comments.get(number, [])}
    assert sorted(comments) == [SERVICE], comments
    body = comments[SERVICE]
    assert f"→ `{NEW_IMAGE}`" in body and "~ update" in body, body
    assert f" at {merge[:12]}" in body and head[:12] in body and main[:12] in body, body  # merge, head, base
    assert actions.image(SERVICE) != NEW_IMAGE  # a preview changes nothing

    # No production credential in any step's environment; the staging-read ones were there.
    environments = [p.read_bytes().decode(errors="replace").split("\0") for p in records.glob("*.env")]
    assert environments, "no step environment was recorded"
    production = actions.environments.production_values()
    for values in environments:
        for value in production:
            assert not any(value in entry for entry in values), f"a production secret in a pull request step: {values}"
    staging_token = actions.environments.secrets_of("staging-read")["CLOUDFLARE_API_TOKEN"]
    assert any(f"CLOUDFLARE_API_TOKEN={staging_token}" in values for values in environments)


# -- drift.yml: the scheduled check -----------------------------------------------------------


def test_drift_opens_an_issue_for_the_drifted_stack_only(actions: Actions):
    ns = namespace_of("staging", actions.ws.root)
    quota = path_for("v1", "ResourceQuota", "quota", ns)
    wanted = actions.kube.get(quota)["spec"]["hard"]["pods"]
    actions.kube.merge_patch(quota, {"spec": {"hard": {"pods": "999"}}})
    try:
        runs = {}
        for env in ("staging", "production"):
            bound = {e.replace("${{ matrix.env }}", env) for e in environments_bound("drift.yml")}
            runs[env], _ = actions.act("schedule", "drift.yml", {"schedule": "17 */6 * * *"}, bound,
                                       ["--matrix", f"env:{env}"])
            record(runs[env], f"drift.yml ({env})")

        assert runs["staging"].returncode != 0, runs["staging"].explain()
        assert runs["staging"].results["drift"] == ["failure"], runs["staging"].explain()
        assert runs["staging"].results["roll-up"] == ["failure"]
        assert runs["production"].returncode == 0, runs["production"].explain()
        assert runs["production"].results["drift"] == ["success"], runs["production"].explain()

        opened = {drift_stack(i["body"]): i for i in actions.github.issues if i["state"] == "open"}
        assert sorted(opened) == ["staging"], opened
        assert opened["staging"]["labels"] == ["drift"]
        body = opened["staging"]["body"]
        assert "`staging-quota`" in body and "`kubernetes:core/v1:ResourceQuota`" in body, body
        assert "`spec.hard.pods`" in body and "999" in body, body
    finally:
        actions.ws.platform("up", "staging", "--refresh", "--yes")
        for issue in actions.github.issues:  # what the next clean check does (tests/ops)
            issue["state"] = "closed"
    assert actions.kube.get(quota)["spec"]["hard"]["pods"] == wanted


# -- rollback.yml: by hand, with inputs -------------------------------------------------------


def test_a_rollback_by_hand_restores_the_configuration_and_hands_on_the_stack_file(actions: Actions):
    original = stack_config(SERVICE, actions.ws.root)
    good = actions.history(SERVICE)[-1]["version"]
    # A bad image reaches main and is deployed; the rollback goes back to the update before it.
    actions.set_image(SERVICE, NEW_IMAGE)
    actions.git("commit", "-q", "-am", "api-gateway: a bad image in staging")
    actions.ws.platform("up", SERVICE, "--yes", "--message", "deploy the bad image")
    rolled_out(actions.kube, SERVICE, actions.ws.root)
    assert actions.image(SERVICE) == NEW_IMAGE
    inputs = {"environment": "staging", "component": "api-gateway", "to": str(good), "mode": "config",
              "dry-run": "false"}
    bound = {e.replace("${{ inputs.environment }}", inputs["environment"])
             for e in environments_bound("rollback.yml", ["rollback"])}
    # GitHub's main, as the record job's pull request starts from: main with the bad image.
    actions.github.branches["main"] = {p.name: p.read_bytes() for p in actions.ws.root.glob("Pulumi.*.yaml")}
    try:
        run, run_id = actions.act("workflow_dispatch", "rollback.yml", {"inputs": inputs}, bound,
                                  [a for k, v in inputs.items() for a in ("--input", f"{k}={v}")])
        record(run, "rollback.yml (config, a staging component, and its pull request)")
        assert bound == {"staging"}
        assert run.returncode == 0, run.explain()
        assert run.results == {"rollback": ["success"], "record": ["success"], "roll-up": ["success"]}, \
            run.explain()
        assert run.names["rollback"] == [f"rollback {SERVICE} to {good} (config)"]
        rolled_out(actions.kube, SERVICE, actions.ws.root)
        assert actions.image(SERVICE) == original["platform:image"]["ref"]
        assert actions.history(SERVICE)[-1]["message"] == f"rollback to update {good}"
        # What the record job puts in its pull request: the stack file as the rollback left it,
        # the configuration of update `good` (main's file before the bad image, comments kept).
        uploaded = (actions.artifact(run_id, "rolled-back-stack-file") / f"Pulumi.{SERVICE}.yaml").read_text()
        assert actions.engine_config(SERVICE, uploaded) == actions.engine_config(
            SERVICE, actions.git("show", f"HEAD~1:Pulumi.{SERVICE}.yaml"))
        assert NEW_IMAGE not in uploaded
        # The record job's pull request puts that file on a branch of main: the rollback sticks
        # once it is merged (drift and the next deploy then agree with what runs).
        branch = f"rollback/{SERVICE}-{run_id}"
        (pull,) = [p for p in actions.github.pulls.values() if p["head"]["ref"] == branch]
        assert pull["base"]["ref"] == "main" and pull["title"] == f"{SERVICE}: keep the rollback to {good}"
        assert f"`{SERVICE}` to `{good}` (config" in pull["body"]
        proposed = actions.github.branches[branch]
        assert proposed[f"Pulumi.{SERVICE}.yaml"].decode() == uploaded
        assert {p for p in proposed if proposed[p] != actions.github.branches["main"][p]} == {f"Pulumi.{SERVICE}.yaml"}
    finally:  # main as it was, deployed again
        actions.git("revert", "--no-edit", "HEAD")
        actions.ws.platform("up", SERVICE, "--yes", "--message", "deploy main")
        rolled_out(actions.kube, SERVICE, actions.ws.root)
