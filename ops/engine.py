"""The Pulumi engine for one project folder, driven through the Automation API.

Every engine call goes through here, so that each failure becomes one OpsError with the
engine's own reason (a locked stack, a missing passphrase, the program's config error) and
no traceback, and so that progress is shown the same way for every command.
"""
from __future__ import annotations

import os
import re
import shutil
import sys
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, TextIO

from pulumi import automation as auto

from ops.errors import OpsError
from ops.project import Project

# The toolchain `make engine` builds, used when no Pulumi CLI is on PATH.
ENGINE_ROOT = Path(__file__).resolve().parent.parent / "tools" / "engine"
PASSPHRASE_VARS = ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# The SDK warns when the CLI dies mid-stream; the command's own error says it better.
warnings.filterwarnings("ignore", message="Error in event stream", category=UserWarning)


class StackLocked(OpsError):
    """Another update holds the stack's lock."""


def command_output(error: auto.CommandError) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of a failed CLI command (the SDK keeps only their printed form)."""
    text = str(error)
    match = re.search(r"\n code: (?P<code>-?\d+)\n stdout: (?P<out>.*)\n stderr: (?P<err>.*)\Z", text, re.S)
    if not match:
        return 1, "", text
    return int(match["code"]), _ANSI.sub("", match["out"]), _ANSI.sub("", match["err"])


def engine_reason(error: auto.CommandError) -> str:
    """The lines of a failed command's output that say why it failed."""
    code, stdout, stderr = command_output(error)
    lines = []
    for line in (stderr + "\n" + stdout).splitlines():
        text = line.strip()
        if not text or text.startswith(("Resources:", "Duration:", "View ", "Previewing ",
                                        "Updating ", "Destroying ", "Refreshing ")):
            continue
        if text.startswith("error:") or lines and lines[-1].startswith("error:") and line[:1] == " ":
            lines.append(text if text.startswith("error:") else "  " + text)
    if not lines:
        lines = [l.strip() for l in stderr.splitlines() if l.strip()][-5:]
    if not lines:
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        lines = [f"the Pulumi CLI {how} before saying why"]
    seen: list[str] = []
    for line in lines:  # the CLI repeats the program's error in its summary
        if line not in seen:
            seen.append(line)
    return "\n".join(seen)


@dataclass
class Engine:
    """Stacks of one project folder, in the backend the operator is logged in to."""

    project: Project
    progress: TextIO = sys.stderr

    def __post_init__(self) -> None:
        env: dict[str, str] = {"PULUMI_SKIP_UPDATE_CHECK": "true"}
        if shutil.which("pulumi"):
            command = auto.PulumiCommand(skip_version_check=True)
        elif (ENGINE_ROOT / "bin" / "pulumi").exists():
            # The language host and the provider are found on PATH beside the CLI.
            env["PATH"] = f"{ENGINE_ROOT / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
            command = auto.PulumiCommand(root=str(ENGINE_ROOT), skip_version_check=True)
        else:
            raise OpsError("no Pulumi CLI: put `pulumi` on PATH, or build it with `make engine`")
        self.workspace = auto.LocalWorkspace(work_dir=str(self.project.root),
                                             pulumi_command=command, env_vars=env)

    # -- the backend -------------------------------------------------------------------------

    def backend_url(self) -> Optional[str]:
        """The backend the CLI is logged in to, or None."""
        if not hasattr(self, "_backend_url"):
            # The CLI takes $PULUMI_BACKEND_URL over the one `pulumi login` saved: so do we,
            # without asking it.
            self._backend_url = os.environ.get("PULUMI_BACKEND_URL") or None
            if self._backend_url is None:
                try:
                    self._backend_url = self.workspace.who_am_i().url
                except auto.CommandError:
                    self._backend_url = None
        return self._backend_url

    def require_backend(self) -> str:
        url = self.backend_url()
        if not url:
            raise OpsError("not logged in to a backend: `pulumi login file://<folder>` (one "
                           "operator) or `pulumi login s3://<bucket>...` (a team), or set "
                           "PULUMI_BACKEND_URL")
        return url

    def summaries(self) -> dict[str, auto.StackSummary]:
        """The stacks the backend holds for this project, by short name."""
        with self.errors("listing the stacks"):
            listed = self.workspace.list_stacks()
        return {s.name.split("/")[-1]: s for s in listed}

    # -- one stack ---------------------------------------------------------------------------

    def select(self, stack: str, create: bool = False) -> auto.Stack:
        """The stack in the backend; `create` makes it from its stack file if it is not there."""
        self._check_passphrase(stack)
        with self.errors(stack):
            try:
                return auto.Stack.select(stack, self.workspace)
            except auto.StackNotFoundError:
                if not create:
                    raise OpsError(f"stack '{stack}' has never been deployed: it is not in the "
                                   f"backend ({self.backend_url()})") from None
                return auto.Stack.create(stack, self.workspace)

    def _check_passphrase(self, stack: str) -> None:
        """A passphrase-encrypted stack cannot run without the passphrase: say so up front."""
        path = self.project.stack_file(stack)
        text = path.read_text() if path.exists() else ""
        if "encryptionsalt:" in text and not any(os.environ.get(v) for v in PASSPHRASE_VARS):
            raise OpsError(f"stack '{stack}' encrypts its secrets with a passphrase: set "
                           "PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE)")

    @contextmanager
    def errors(self, what: str) -> Iterator[None]:
        """Turns a failed CLI command into one OpsError naming `what` and the engine's reason."""
        try:
            yield
        except auto.ConcurrentUpdateError as error:
            raise StackLocked(f"stack '{what}' is locked: another update is running, or one was "
                              f"interrupted (`platform recover {what}`).\n{engine_reason(error)}") from None
        except auto.CommandError as error:
            raise OpsError(f"{what}: {engine_reason(error)}") from None

    def run_cli(self, stack: str, *args: str) -> str:
        """A CLI command the Automation API has no call for (e.g. `state unprotect`)."""
        with self.errors(stack):
            result = self.workspace.pulumi_command.run(
                [*args, "--stack", stack], str(self.project.root),
                {**(self.workspace.env_vars or {})})
        return result.stdout


def outputs_plain(outputs: dict[str, Any]) -> dict[str, Any]:
    """Stack outputs with secret values masked: nothing secret is ever printed."""
    return {k: ("[secret]" if v.secret else v.value) for k, v in sorted(outputs.items())}


OnEvent = Callable[[auto.EngineEvent], None]
