"""Builds each Go service into an OCI image layout with ko: no Docker daemon, nothing pulled.

The binary is built the way the service's Dockerfile builds it (GO_ENV, GO_FLAGS, GO_LDFLAGS;
tests/test_images.py holds the two together): static, trimmed paths, no VCS stamp. Every time
in the image is the commit's (SOURCE_DATE_EPOCH, KO_DATA_DATE_EPOCH), so a commit builds to one
digest. ko reads the base (base.py) from its own cache folder (KOCACHE), where it finds an
image named by digest without asking a registry: the build works offline, and the base's name
in the image does not depend on a port.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from . import sbom, toolchain
from .base import BASE_REPOSITORY, write_base
from .layout import Layout
from .services import Service, discover_services, select
from .source import Source, source_of, uncommitted

GO_ENV = {"CGO_ENABLED": "0"}
GO_FLAGS = ["-trimpath", "-buildvcs=false"]  # -buildvcs=false: an unrelated uncommitted file must not change the binary
GO_LDFLAGS = ["-s", "-w"]
PLATFORM = "linux/amd64"
DEFAULT_OUT = toolchain.REPO_ROOT / "build" / "images"
SBOM_FILE = "sbom.spdx.json"
IMAGE_FILE = "image.json"  # what was built, beside the layout: read by push, sign and attest


def oci_labels(source: Source, dirty: bool) -> dict[str, str]:
    return {
        "org.opencontainers.image.source": source.repository,
        "org.opencontainers.image.revision": source.revision + ("-dirty" if dirty else ""),
        "org.opencontainers.image.created": source.created,
    }


@dataclass(frozen=True)
class BuiltImage:
    service: str
    digest: str  # sha256:...
    layout: Path  # build/images/<service>: an OCI image layout
    sbom: Path  # SPDX 2.3 JSON: ko's, from the binary's module list (sbom.py)
    source: Source
    dirty: bool  # built from uncommitted changes: not the commit's image

    def write(self) -> None:
        data = {"service": self.service, "digest": self.digest, "source": asdict(self.source), "dirty": self.dirty}
        (self.layout / IMAGE_FILE).write_text(json.dumps(data, indent=2) + "\n")


def built_image(service: str, out: Path = DEFAULT_OUT) -> BuiltImage:
    """What `build` last wrote for service into out/<service>."""
    path = out / service / IMAGE_FILE
    if not path.exists():
        raise LookupError(f"no image of {service} in {out}: run `python -m tools.images build {service}`")
    data = json.loads(path.read_text())
    return BuiltImage(service=data["service"], digest=data["digest"], layout=out / service,
                      sbom=out / service / SBOM_FILE, source=Source(**data["source"]), dirty=data["dirty"])


def ko_config(base_digest: str) -> dict:
    return {
        "defaultBaseImage": f"{BASE_REPOSITORY}@{base_digest}",
        "defaultPlatforms": [PLATFORM],
        "defaultEnv": [f"{k}={v}" for k, v in GO_ENV.items()],
        "defaultFlags": GO_FLAGS,
        "defaultLdflags": GO_LDFLAGS,
    }


def build_image(service: Service, source: Source, out: Path = DEFAULT_OUT, root: Path | None = None) -> BuiltImage:
    """Builds one service into out/<service> (replaced whole) and returns what was built."""
    root = root or service.path.parent.parent
    dirty = uncommitted(root, service.path)
    with tempfile.TemporaryDirectory(prefix=f"image-{service.name}-") as scratch:
        work = Path(scratch)
        cache = Layout(work / "kocache" / "img")  # ko's base-image cache: the base is found here
        base = write_base(cache, toolchain.tool("ca-certificates"))
        (work / ".ko.yaml").write_text(json.dumps(ko_config(base["digest"]), indent=2))
        env = {
            **os.environ,
            "KO_CONFIG_PATH": str(work / ".ko.yaml"),
            "KOCACHE": str(work / "kocache"),
            "KO_DOCKER_REPO": f"images.invalid/{service.name}",  # required by ko, unused: nothing is pushed
            "SOURCE_DATE_EPOCH": str(source.epoch),
            "KO_DATA_DATE_EPOCH": str(source.epoch),
            "GOFLAGS": "-mod=readonly",  # exactly the modules go.sum pins
            "GOTOOLCHAIN": os.environ.get("GOTOOLCHAIN", "local"),
        }
        if os.environ.get("GO"):  # the Makefile's Go (the machine's or the bootstrapped one)
            env["KO_GO_PATH"] = os.environ["GO"]
        args = ["build", ".", "--bare", "--push=false", f"--platform={PLATFORM}",
                f"--oci-layout-path={work / 'layout'}", "--sbom=spdx", f"--sbom-dir={work / 'sbom'}"]
        for key, value in oci_labels(source, dirty).items():
            args += [f"--image-label={key}={value}", f"--image-annotation={key}={value}"]
        toolchain.run("ko", args, env=env, cwd=service.path, what=f"ko build of apps/{service.name}")
        sboms = sorted((work / "sbom").glob("*.spdx.json"))
        if len(sboms) != 1:
            raise toolchain.ToolError(f"ko wrote {len(sboms)} SBOMs for {service.name}, expected one")
        target = out / service.name
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(work / "layout"), target)
        document = sbom.fix(json.loads(sboms[0].read_text()))
        (target / SBOM_FILE).write_text(json.dumps(document, indent=2) + "\n")
    image = BuiltImage(service=service.name, digest=Layout(target).digest, layout=target,
                       sbom=target / SBOM_FILE, source=source, dirty=dirty)
    image.write()
    return image


def build_images(names: list[str] | None = None, root: Path = toolchain.REPO_ROOT, out: Path = DEFAULT_OUT,
                 source: Source | None = None, report: Callable[[str], None] = print) -> list[BuiltImage]:
    """Builds every Go service under root/apps (or the named ones), reporting
    `<service> sha256:<digest>` for each."""
    services = select(discover_services(root), names or [])
    toolchain.ensure("ko", "ca-certificates")
    source = source or source_of(root)
    images = []
    for service in services:
        image = build_image(service, source, out, root)
        if image.dirty:
            print(f"images: apps/{service.name} has uncommitted changes: its image is not "
                  f"{source.revision}'s (revision label says -dirty)", file=sys.stderr)
        report(f"{image.service} {image.digest}")
        images.append(image)
    return images
