"""Drive the real Pulumi CLI against the local cluster, the way an operator does.

A `Workspace` is a copy of the project's tracked files in a temporary folder (the
suite changes stack config; the repository's files stay as they are), with the
repository's virtualenv, a local file backend, a passphrase secrets provider, the
built toolchain first on PATH and the local cluster's kubeconfig.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN_DIR = REPO_ROOT / "tools" / "engine" / "bin"
# Where a run keeps its clusters and its report; E2E_BUILD_DIR lets two runs share a machine.
E2E_RUN = Path(os.environ.get("E2E_BUILD_DIR") or REPO_ROOT / "build" / "e2e").resolve()
# Each process of the run (pytest-xdist's workers gw0, gw1, ...) has a build folder of its own.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
E2E_BUILD = E2E_RUN / WORKER if WORKER else E2E_RUN


class PulumiFailed(AssertionError):
    def __init__(self, args: list[str], result: subprocess.CompletedProcess):
        self.result = result
        self.output = (result.stdout or "") + (result.stderr or "")
        super().__init__(f"`pulumi {' '.join(args)}` exited {result.returncode}:\n{self.output[-6000:]}")


class PlatformFailed(AssertionError):
    def __init__(self, args: list[str], result: subprocess.CompletedProcess):
        self.result = result
        super().__init__(f"`platform {' '.join(args)}` exited {result.returncode}:\n"
                         f"{(result.stdout + result.stderr)[-6000:]}")


def stack_config(stack: str, root: Path = REPO_ROOT) -> dict:
    """The `config:` block of a stack file, as written (secrets still encrypted)."""
    return (yaml.safe_load((root / f"Pulumi.{stack}.yaml").read_text()) or {}).get("config") or {}


def namespace_of(stack: str, root: Path = REPO_ROOT) -> str:
    """The namespace a stack deploys into: its environment stack's."""
    return stack_config(stack.split(".")[-1], root)["platform:namespace"]


def _stacks_of(kind: str) -> list[str]:
    from infra.stack_files import discover_stacks
    return [s for s in discover_stacks(REPO_ROOT) if (
        "." not in s if kind == "environment" else stack_config(s).get("platform:kind") == kind)]


# The repository's Kubernetes stacks, environments first: what the suite deploys.
ENVIRONMENTS = sorted(_stacks_of("environment"), key=lambda s: s != "staging")
SERVICES = _stacks_of("go-service")
KUBERNETES_STACKS = ENVIRONMENTS + SERVICES


# What a fresh operator's shell does not have: the suite's own Pulumi settings and credentials,
# a kubeconfig, the suite's virtualenv and import path.
MACHINE_ONLY = ("PULUMI_", "KUBECONFIG", "AWS_", "VIRTUAL_ENV", "PYTHONPATH")


def operator_shell_env(home: Path) -> dict[str, str]:
    """The environment of a shell that runs documented commands as a new operator does: the
    machine's tools, none of the suite's settings, and `home` as the home folder.

    The Pulumi CLI does not take its own folder (`~/.pulumi`: the login `pulumi login` saves
    in credentials.json, the selected stacks) from $HOME but from the user's entry in
    /etc/passwd, unless PULUMI_HOME names one: a $HOME of its own alone leaves every such shell
    of the run, in any process, sharing the machine user's login (the last `pulumi login` wins
    for all of them, and the user's own is replaced). So PULUMI_HOME is the folder the CLI uses
    in an operator's own home, `$HOME/.pulumi`, here under `home`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(MACHINE_ONLY)}
    env.update({"HOME": str(home), "PULUMI_HOME": str(home / ".pulumi"),
                "PULUMI_SKIP_UPDATE_CHECK": "true", "NO_COLOR": "1"})
    return env


def tracked_files(root: Path) -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root, check=True, capture_output=True,
    ).stdout.decode().split("\0")
    return [f for f in listed if f and (root / f).is_file()]


def secure_paths(config: dict, prefix: str = "") -> list[str]:
    """`--path` keys of every `secure:` value in a stack file's config block."""
    found = []
    for key, value in config.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            if set(value) == {"secure"}:
                found.append(path)
            else:
                found.extend(secure_paths(value, path))
    return found


@dataclass
class Workspace:
    root: Path  # the project copy
    home: Path  # PULUMI_HOME
    backend: Path  # file backend folder
    kubeconfig: Path
    # The passphrase of the committed example stacks (README, "Secrets").
    passphrase: str = field(default_factory=lambda: os.environ.get("E2E_PULUMI_CONFIG_PASSPHRASE", "platform-example"))
    # Secret config values of each stack, decrypted: they must never show up in plain text in state.
    secret_values: dict[str, list[str]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    # Another backend than the file backend in `backend` (e.g. an s3:// URL), and what it needs
    # (a variable set to None is left out, KUBECONFIG included).
    backend_url: str | None = None
    extra_env: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def create(cls, base: Path, kubeconfig: Path) -> "Workspace":
        root = base / "project"
        for name in tracked_files(REPO_ROOT):
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / name, target)
        (root / ".venv").symlink_to(REPO_ROOT / ".venv")
        ws = cls(root=root, home=base / "pulumi-home", backend=base / "state", kubeconfig=kubeconfig)
        ws.trust_signer(None)
        ws.home.mkdir()
        ws.backend.mkdir()
        return ws

    def trust_signer(self, signer: dict | None, environments: tuple[str, ...] = ("staging", "production"),
                     registries: list[str] | None = None) -> None:
        """Who the copy's environments trust to sign images (`platform:images.signer`), and
        optionally from where they admit them. A workspace starts with no signer: the example
        stacks' images (registry.example.com) were never pushed anywhere the local cluster can
        reach, so no signature of them can be checked here; tests/e2e/test_admission.py holds
        production to a key of its own and a loopback registry."""
        from infra.stack_files import StackFileEditor
        for env in environments:
            editor = StackFileEditor(self.root / f"Pulumi.{env}.yaml")
            images = dict(editor.plain().get("platform:images") or {})
            images.pop("signer", None)
            if signer is not None:
                images["signer"] = signer
            if registries is not None:
                images["registries"] = registries
            if images:
                editor.set("platform:images", [], images)
                editor.write()

    def use_namespace(self, environment: str, namespace: str) -> None:
        """The environment stack of this copy deploys into `namespace` instead: a module that
        shares its process's cluster with others keeps to namespaces of its own."""
        stack_file = self.root / f"Pulumi.{environment}.yaml"
        current = stack_config(environment, self.root)["platform:namespace"]
        stack_file.write_text(stack_file.read_text().replace(
            f"platform:namespace: {current}\n", f"platform:namespace: {namespace}\n"))
        assert stack_config(environment, self.root)["platform:namespace"] == namespace

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "PATH": f"{BIN_DIR}{os.pathsep}{env.get('PATH', '')}",
            "PULUMI_HOME": str(self.home),
            "PULUMI_BACKEND_URL": self.backend_url or f"file://{self.backend}",
            "PULUMI_CONFIG_PASSPHRASE": self.passphrase,
            "KUBECONFIG": str(self.kubeconfig),
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "PULUMI_SELF_MANAGED_STATE_NO_LEGACY_WARNING": "true",
            "PULUMI_SKIP_CONFIRMATIONS": "true",
            "NO_COLOR": "1",
        })
        # PYTHONPATH too: pytest-xdist puts the repository on it, and the workspace runs its own copy.
        for var in ("PULUMI_ACCESS_TOKEN", "PULUMI_CONFIG_PASSPHRASE_FILE", "VIRTUAL_ENV", "PYTHONPATH"):
            env.pop(var, None)
        for name, value in self.extra_env.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env

    def platform(self, *args: str, check: bool = True, timeout: float = 900,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """The operator's command `platform`, run in this workspace's copy of the project (its
        own `ops` and `infra` first on the path)."""
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "ops", *args], cwd=self.root,
                                env={**self.env(), "PYTHONPATH": str(self.root), **(env or {})},
                                capture_output=True, text=True, timeout=timeout)
        self.timings.setdefault("platform " + " ".join(args[:2]), round(time.monotonic() - started, 1))
        if check and result.returncode != 0:
            raise PlatformFailed(list(args), result)
        return result

    def pulumi(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        cmd = [str(BIN_DIR / "pulumi"), *args, "--non-interactive", "--color=never"]
        started = time.monotonic()
        result = subprocess.run(cmd, cwd=self.root, env=self.env(), capture_output=True, text=True,
                                timeout=timeout)
        self.timings.setdefault(" ".join(args[:3]), round(time.monotonic() - started, 1))
        if check and result.returncode != 0:
            raise PulumiFailed(list(args), result)
        return result

    def init_stack(self, stack: str) -> None:
        """`pulumi stack init` on the repository's stack file, as the README does it; the
        stack's secrets, decrypted with the passphrase, are noted to look for in the state."""
        self.pulumi("stack", "init", stack)
        document = yaml.safe_load((self.root / f"Pulumi.{stack}.yaml").read_text()) or {}
        for path in secure_paths(document.get("config") or {}):
            value = self.pulumi("config", "get", "--path", "-s", stack, path).stdout.strip()
            assert value, f"{stack}: secret {path} decrypts to nothing"
            self.secret_values.setdefault(stack, []).append(value)

    def outputs(self, stack: str) -> dict:
        return json.loads(self.pulumi("stack", "output", "-s", stack, "--json").stdout)

    def export(self, stack: str, version: int | None = None) -> dict:
        args = ["stack", "export", "-s", stack]
        if version is not None:
            args += ["--version", str(version)]
        return json.loads(self.pulumi(*args).stdout)

    def history(self, stack: str) -> list[dict]:
        return json.loads(self.pulumi("stack", "history", "-s", stack, "--json", "--show-secrets").stdout)

    def checkpoints(self, stack: str, project: str = "platform") -> list[tuple[dict, Path]]:
        """(update record, state file) of every update of `stack`, oldest first.

        A file backend cannot `stack export --version N` ("the current backend does not
        provide the ability to export previous deployments") and numbers its history 0;
        it does keep the state written by each update beside that update's record, in
        .pulumi/history/<project>/<stack>/<stack>-<time>.{history,checkpoint}.json.
        """
        folder = self.backend / ".pulumi" / "history" / project / stack
        found = []
        for record in folder.glob(f"{stack}-*.history.json"):
            checkpoint = record.with_name(record.name.replace(".history.json", ".checkpoint.json"))
            if checkpoint.exists():
                found.append((json.loads(record.read_text()), checkpoint))
        return sorted(found, key=lambda pair: int(pair[1].name.split("-")[-1].split(".")[0]))

    def import_checkpoint(self, stack: str, checkpoint: Path) -> None:
        """`pulumi stack import` of the state an earlier update wrote (see `checkpoints`)."""
        saved = json.loads(checkpoint.read_text())
        deployment = checkpoint.parent / (checkpoint.name + ".import.json")
        deployment.write_text(json.dumps({"version": saved["version"], "deployment": saved["checkpoint"]["latest"]}))
        self.pulumi("stack", "import", "-s", stack, "--file", str(deployment))
        deployment.unlink()

    def render(self, stack: str, out: Path) -> Path:
        """The offline render of `stack` (python -m offline.render) in this workspace."""
        result = subprocess.run(
            [sys.executable, "-m", "offline.render", stack, "--out", str(out)],
            cwd=self.root, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(self.root)},
        )
        assert result.returncode == 0, f"offline.render {stack} failed:\n{result.stdout}{result.stderr}"
        return out / stack


def rendered_objects(directory: Path) -> list[dict]:
    """The Kubernetes objects of a rendered stack (one YAML document per file)."""
    return [yaml.safe_load(p.read_text()) for p in sorted(directory.glob("*.yaml"))]
