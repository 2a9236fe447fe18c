"""Registries: a loopback one for tests and `make e2e` (go-containerregistry's in-memory
`registry`), and pushing a built layout to any registry with crane."""

from __future__ import annotations

import http.client
import re
import subprocess
import tempfile
import time

from . import toolchain
from .build import BuiltImage

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def is_loopback(registry: str) -> bool:
    return registry.rsplit(":", 1)[0] in LOOPBACK_HOSTS if ":" in registry else registry in LOOPBACK_HOSTS


def registry_of(ref: str) -> str:
    return ref.split("/", 1)[0]


class LoopbackRegistry:
    """go-containerregistry's in-memory registry on a free loopback port for the length of a
    `with` block (or start/stop): plain HTTP, no auth, gone when it stops."""

    def __init__(self, timeout: float = 30.0):
        self.timeout = timeout
        self.process: subprocess.Popen | None = None
        self.host = ""  # 127.0.0.1:PORT once started

    def start(self) -> "LoopbackRegistry":
        toolchain.ensure("registry")
        self._log = tempfile.TemporaryFile("w+")
        # -port 0: the kernel picks a free port and the registry logs it, so no port is raced for.
        self.process = subprocess.Popen([str(toolchain.tool("registry")), "-port", "0"],
                                        stdout=self._log, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + self.timeout
        port = None
        while port is None:
            self._log.seek(0)
            found = re.search(r"serving on port (\d+)", self._log.read())
            if found:
                port = int(found.group(1))
            elif self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise toolchain.ToolError(f"registry did not start within {self.timeout}s:\n{self.log()}")
            else:
                time.sleep(0.05)
        self.host = f"127.0.0.1:{port}"
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise toolchain.ToolError(f"registry on {self.host} did not answer within {self.timeout}s:\n{self.log()}")
            time.sleep(0.05)
        return self

    def answers(self) -> bool:
        """Whether the registry answers the distribution API's base endpoint."""
        host, port = self.host.rsplit(":", 1)
        connection = http.client.HTTPConnection(host, int(port), timeout=2)
        try:
            connection.request("GET", "/v2/")
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()

    def log(self) -> str:
        self._log.seek(0)
        return self._log.read()[-4000:]

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> "LoopbackRegistry":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def push_image(image: BuiltImage, registry: str, repository: str | None = None) -> str:
    """Pushes a built layout to registry/<repository or service>, tagged with its revision,
    and returns the pushed reference by digest (registry/service@sha256:...), the only form
    the platform deploys."""
    toolchain.ensure("crane")
    repository = repository or image.service
    tag = image.source.revision + ("-dirty" if image.dirty else "")
    args = ["push", str(image.layout), f"{registry}/{repository}:{tag}"]
    if is_loopback(registry):
        args.append("--insecure")  # plain HTTP: only ever on loopback
    pushed = toolchain.run("crane", args, what=f"push of {image.service} to {registry}").stdout.strip()
    digest = pushed.rsplit("@", 1)[-1]
    if digest != image.digest:
        raise toolchain.ToolError(f"{registry}/{repository} holds {digest}, not the built {image.digest}")
    return f"{registry}/{repository}@{digest}"
