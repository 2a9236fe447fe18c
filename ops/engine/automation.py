"""The Pulumi engine for one project folder, driven through the Automation API.

Every engine call goes through here, so that each failure becomes one OpsError with the
engine's own reason (a locked stack, a missing passphrase, the program's config error) and
no traceback, and so that progress is shown the same way for every command.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess  # nosec B404 -- runs the Pulumi CLI, as the Automation API does
import sys
import threading
import warnings
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional, TextIO

import grpc
from google.protobuf import empty_pb2
from pulumi import automation as auto
from pulumi.runtime.proto import events_pb2_grpc
from semver import VersionInfo

from ops.errors import OpsError
from ops.project import Project

# The toolchain `make engine` builds, used when no Pulumi CLI is on PATH.
ENGINE_ROOT = Path(__file__).resolve().parents[2] / "tools" / "engine"
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


class Command(auto.PulumiCommand):
    """The Pulumi CLI, its version asked only when an Automation API call needs it (the SDK's
    own class runs `pulumi version` as it is made: one more CLI run every command would pay)."""

    def __init__(self, command: str):  # noqa: D107 -- the base class's would run the CLI
        self.command = command
        self._version: Optional[VersionInfo] = None
        self._asked = False
        self._lock = threading.Lock()  # stacks run side by side ask at once

    @property
    def version(self) -> Optional[VersionInfo]:  # type: ignore[override]
        with self._lock:
            if not self._asked:
                self._ask()
        return self._version

    def _ask(self) -> None:
        self._asked = True
        text = subprocess.run([self.command, "version"], capture_output=True, text=True,
                              env={**os.environ, "PULUMI_SKIP_UPDATE_CHECK": "true"}).stdout
        try:
            self._version = VersionInfo.parse(text.strip().lstrip("v"))
        except ValueError:
            self._version = None  # the SDK then assumes an old CLI, as its own class does


@dataclass
class Engine:
    """Stacks of one project folder, in the backend the operator is logged in to."""

    project: Project
    progress: TextIO = sys.stderr

    def __post_init__(self) -> None:
        env: dict[str, str] = {"PULUMI_SKIP_UPDATE_CHECK": "true"}
        if shutil.which("pulumi"):
            command = Command("pulumi")
        elif (ENGINE_ROOT / "bin" / "pulumi").exists():
            # The language host and the provider are found on PATH beside the CLI.
            env["PATH"] = f"{ENGINE_ROOT / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
            command = Command(str(ENGINE_ROOT / "bin" / "pulumi"))
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

    def run_with_events(self, stack: str, args: list[str], on_event: Optional["OnEvent"]) -> str:
        """A CLI command on `stack` whose engine events go to `on_event` as they happen: for a
        command the Automation API runs otherwise (its `up` always skips the preview).

        The events come over gRPC, as the Automation API takes them from a CLI that offers it:
        an `up` that previews first sends each phase's events in turn, where a file event log
        would be started over (truncated) by the second phase."""
        self._check_passphrase(stack)
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="events"))
        events_pb2_grpc.add_EventsServicer_to_server(EventStream(on_event), server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        try:
            with self.errors(stack):
                result = self.workspace.pulumi_command.run(
                    [*args, "--event-log", f"tcp://127.0.0.1:{port}", "--stack", stack],
                    str(self.project.root),
                    # The CLI offers --event-log only with its debug commands on (as the
                    # Automation API runs it).
                    {**(self.workspace.env_vars or {}), "PULUMI_DEBUG_COMMANDS": "true"})
        finally:
            server.stop(grace=10).wait(15)  # every event sent is handled before this returns
        return result.stdout

    def run_cli(self, stack: str, *args: str) -> str:
        """A CLI command the Automation API has no call for (e.g. `state unprotect`)."""
        with self.errors(stack):
            result = self.workspace.pulumi_command.run(
                [*args, "--stack", stack], str(self.project.root),
                {**(self.workspace.env_vars or {})})
        return result.stdout


OnEvent = Callable[[auto.EngineEvent], None]


class EventStream(events_pb2_grpc.EventsServicer):
    """Receives the engine events a CLI run streams (`--event-log tcp://…`), in order."""

    def __init__(self, on_event: Optional[OnEvent]):
        self.on_event = on_event

    def StreamEvents(self, request_iterator, context):  # noqa: N802 -- the gRPC method's name
        for request in request_iterator:
            try:
                document = json.loads(request.event)
            except json.JSONDecodeError:  # an event cut short: progress only, skip it
                continue
            if self.on_event is not None:
                self.on_event(auto.EngineEvent.from_json(document))
        return empty_pb2.Empty()
