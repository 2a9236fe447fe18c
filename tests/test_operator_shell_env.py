"""The environment the end-to-end suite runs documented commands in (README, runbooks,
CONTRIBUTING.md): a new operator's shell, with a home of its own, Pulumi's folder included.

The Pulumi CLI takes `~/.pulumi` (credentials.json: the backend `pulumi login` chose) from the
user's entry in /etc/passwd, not from $HOME, unless PULUMI_HOME says where: two such shells run
side by side by the suite's processes, each with "its own" $HOME, shared one login, and the
second `pulumi login` sent the first shell's `platform scale` to a backend without its
environment stack ("its environment stack 'staging' has never been deployed").
"""
from __future__ import annotations

from pathlib import Path

from tests.e2e.harness import operator_shell_env


def test_the_cli_keeps_its_folder_in_the_shells_home(tmp_path: Path):
    env = operator_shell_env(tmp_path / "home")
    assert env["HOME"] == str(tmp_path / "home")
    # What `pulumi login` writes lands in this home, not in the machine user's.
    assert env["PULUMI_HOME"] == str(tmp_path / "home" / ".pulumi")


def test_two_shells_never_share_a_pulumi_folder(tmp_path: Path):
    first, second = operator_shell_env(tmp_path / "a"), operator_shell_env(tmp_path / "b")
    assert first["PULUMI_HOME"] != second["PULUMI_HOME"]


def test_the_suites_own_settings_stay_out(tmp_path: Path, monkeypatch):
    for name, value in {"PULUMI_BACKEND_URL": "file:///suite-state", "PULUMI_HOME": "/suite-home",
                        "PULUMI_ACCESS_TOKEN": "pul-x", "PULUMI_CONFIG_PASSPHRASE": "suite",
                        "KUBECONFIG": "/suite/kubeconfig", "AWS_ACCESS_KEY_ID": "key",
                        "VIRTUAL_ENV": "/suite/.venv", "PYTHONPATH": "/suite"}.items():
        monkeypatch.setenv(name, value)
    env = operator_shell_env(tmp_path / "home")
    assert env["PULUMI_HOME"] == str(tmp_path / "home" / ".pulumi")
    leaked = {k for k in env if k.startswith(("PULUMI_", "KUBECONFIG", "AWS_", "VIRTUAL_ENV", "PYTHONPATH"))}
    assert leaked == {"PULUMI_HOME", "PULUMI_SKIP_UPDATE_CHECK"}
