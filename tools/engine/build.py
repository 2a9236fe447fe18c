"""Build the engine toolchain into tools/engine/bin/, reusing what is built.

    python tools/engine/build.py [--force] [component ...]

Each component is one Go module of ours under tools/engine/ (go.mod, go.sum and
a few lines of glue) that requires the upstream module and builds its
commands. A component is rebuilt only when its inputs (go.mod, go.sum, our
sources, the Go version) changed since the binaries in bin/ were made; a warm
run takes a second. Builds run under `nice` so that they do not starve other
work, with Go's shared build cache (`go env GOCACHE`, or $GOCACHE): it is
content-addressed, so a fresh checkout on a machine that built before reuses it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
import versions  # noqa: E402

ENGINE = versions.ENGINE_DIR
BIN = versions.BIN_DIR
STAMPS = BIN / ".stamps"


@dataclass
class Component:
    name: str  # also the folder of its Go module under tools/engine/, unless `module` names one
    packages: list[str]  # what `go build` builds, in that module
    binaries: list[str]  # what lands in bin/
    ldflags: Callable[[versions.Versions], list[str]] = lambda v: []
    output: str | None = None  # a file name when one package is built under another name
    prepare: Callable[["Component", versions.Versions], None] | None = None
    extra_files: Callable[["Component", versions.Versions], list[str]] = lambda c, v: []
    sources: list[str] = field(default_factory=lambda: ["go.mod", "go.sum"])
    module: str = ""  # the folder of its Go module when several components share one

    @property
    def folder(self) -> Path:
        return ENGINE / (self.module or self.name)


def go_env() -> dict[str, str]:
    env = dict(os.environ)
    env["GOFLAGS"] = "-mod=readonly -buildvcs=false"
    env.setdefault("GOTOOLCHAIN", "local")
    return env


# Errors of reaching the Go module proxy, not of the code: worth another try on a cold machine.
NETWORK_ERROR = re.compile(
    r"dial tcp|i/o timeout|connection reset|unexpected EOF|TLS handshake|"
    r"no such host|502 Bad Gateway|503 Service Unavailable|504 Gateway Timeout"
)
ATTEMPTS = 3


def go(args: list[str], cwd: Path, capture: bool = False, nice: bool = False) -> str:
    """Runs the go command, its stderr shown as it comes (and stdout returned if `capture`),
    trying again when a module download failed on the network; any other failure stops the
    build with go's own message."""
    cmd = (["nice", "-n", "15"] if nice else []) + ["go", *args]
    attempt = 1
    while True:
        with tempfile.TemporaryFile("w+") as out:  # a file, not a pipe: no deadlock with stderr
            process = subprocess.Popen(cmd, cwd=cwd, env=go_env(), stdout=out if capture else None,
                                       stderr=subprocess.PIPE, text=True)
            stderr = []
            for line in process.stderr:
                sys.stderr.write(line)
                stderr.append(line)
            process.wait()
            out.seek(0)
            stdout = out.read()
        if process.returncode == 0:
            return stdout
        if attempt == ATTEMPTS or not NETWORK_ERROR.search("".join(stderr)):
            raise SystemExit(f"engine: `{' '.join(args)}` in {cwd.relative_to(versions.REPO_ROOT)} failed "
                             f"(exit {process.returncode})")
        attempt += 1
        print(f"engine: go {args[0]}: network error; trying again ({attempt}/{ATTEMPTS})",
              file=sys.stderr, flush=True)
        time.sleep(10 * (attempt - 1))


def go_mod_dir(module: str, version: str, cwd: Path) -> Path:
    """The module cache directory of module@version (downloading it if needed)."""
    return Path(json.loads(go(["mod", "download", "-json", f"{module}@{version}"], cwd, capture=True))["Dir"])


# -- the components --------------------------------------------------------------------------


def copy_python_scripts(component: Component, v: versions.Versions) -> None:
    """The scripts the CLI distribution ships beside the Python language host, from sdk/v3."""
    sdk = go_mod_dir("github.com/pulumi/pulumi/sdk/v3", "v" + v.pulumi_cli, component.folder)
    for source, name in [
        (sdk / "python" / "cmd" / "pulumi-language-python-exec", "pulumi-language-python-exec"),
        (sdk / "python" / "dist" / "pulumi-resource-pulumi-python", "pulumi-resource-pulumi-python"),
    ]:
        target = BIN / name
        shutil.copyfile(source, target)
        target.chmod(0o755)


def provider_schema(component: Component, v: versions.Versions) -> None:
    """Upstream's main embeds schema-embed.json, which its release build generates from the
    schema.json the module ships by writing the provider version into it; do the same."""
    module = go_mod_dir(
        "github.com/pulumi/pulumi-kubernetes/provider/v4", "v" + v.kubernetes_provider_module, component.folder
    )
    shipped = module / "cmd" / "pulumi-resource-kubernetes"
    schema = json.loads((shipped / "schema.json").read_text())
    schema["version"] = v.kubernetes_provider
    here = component.folder
    (here / "schema-embed.json").write_text(json.dumps(schema, separators=(",", ":")))
    mapping = json.loads((shipped / "terraform-mapping.json").read_text())
    (here / "terraform-mapping-embed.json").write_text(json.dumps(mapping, separators=(",", ":")))


def kwok_stages(component: Component, v: versions.Versions) -> None:
    """kwok plays Stages; kwokctl writes its defaults into kwok's config, so do the same
    with the stage files the kwok module ships: nodes become Ready and keep a heartbeat,
    pods become Running and Ready, complete, and go away when deleted."""
    stages = go_mod_dir("sigs.k8s.io/kwok", "v" + v.kwok, component.folder) / "kustomize" / "stage"
    files = [
        stages / "node" / "fast" / "node-initialize.yaml",
        stages / "node" / "heartbeat" / "node-heartbeat.yaml",
        stages / "pod" / "fast" / "pod-ready.yaml",
        stages / "pod" / "fast" / "pod-complete.yaml",
        stages / "pod" / "fast" / "pod-delete.yaml",
    ]
    (BIN / "kwok-stages.yaml").write_text("\n---\n".join(f.read_text().strip() for f in files) + "\n")


MONITORING_CRDS = ["monitoring.coreos.com_servicemonitors.yaml", "monitoring.coreos.com_prometheusrules.yaml"]


def monitoring_crds(component: Component, v: versions.Versions) -> None:
    """The Prometheus operator's CustomResourceDefinitions of the kinds the Go-service stacks
    create, taken from the operator module the go.mod pins (never copied into the repository):
    the tests validate rendered objects against their schemas, the e2e suite installs them."""
    module = "github.com/prometheus-operator/prometheus-operator"
    source = go_mod_dir(module, versions.module_version(component.name, module), component.folder)
    target = BIN / component.name
    target.mkdir(exist_ok=True)
    for name in MONITORING_CRDS:
        shutil.copyfile(source / "example" / "prometheus-operator-crd" / name, target / name)


def ca_certificates(component: Component, v: versions.Versions) -> None:
    """The root certificates the service images carry, written as one PEM bundle by the
    component's own small program from the NSS roots of Go's x509roots/fallback module (pinned
    by its go.sum): the same bytes on every machine, so the images keep one digest."""
    go(["run", ".", str(BIN / "ca-certificates.crt")], component.folder)


def kubernetes_ldflags(v: versions.Versions) -> list[str]:
    major, minor = v.kubernetes.split(".")[:2]
    return [
        f"-X k8s.io/component-base/version.gitVersion=v{v.kubernetes}",
        f"-X k8s.io/component-base/version.gitMajor={major}",
        f"-X k8s.io/component-base/version.gitMinor={minor}",
        "-X k8s.io/component-base/version.gitTreeState=clean",
        f"-X k8s.io/client-go/pkg/version.gitVersion=v{v.kubernetes}",
    ]


COMPONENTS = [
    Component(
        name="pulumi",
        packages=["github.com/pulumi/pulumi/pkg/v3/cmd/pulumi", "./cmd/pulumi-language-python"],
        binaries=["pulumi", "pulumi-language-python", "pulumi-language-python-exec",
                  "pulumi-resource-pulumi-python"],
        ldflags=lambda v: [f"-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v{v.pulumi_cli}"],
        prepare=copy_python_scripts,
        sources=["go.mod", "go.sum", "cmd/pulumi-language-python/main.go"],
    ),
    Component(
        name="kubernetes-provider",
        packages=["."],
        binaries=["pulumi-resource-kubernetes"],
        output="pulumi-resource-kubernetes",
        ldflags=lambda v: [
            f"-X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version={v.kubernetes_provider}"
        ],
        prepare=provider_schema,
        sources=["go.mod", "go.sum", "main.go"],
    ),
    Component(
        name="controlplane",
        packages=[
            "./cmd/etcd",
            "k8s.io/kubernetes/cmd/kube-apiserver",
            "k8s.io/kubernetes/cmd/kube-controller-manager",
            "k8s.io/kubernetes/cmd/kube-scheduler",
        ],
        binaries=["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"],
        ldflags=kubernetes_ldflags,
        sources=["go.mod", "go.sum", "cmd/etcd/main.go"],
    ),
    Component(
        name="s3",
        packages=["github.com/versity/versitygw/cmd/versitygw"],
        binaries=["versitygw"],
    ),
    Component(
        name="actionlint",
        packages=["github.com/rhysd/actionlint/cmd/actionlint"],
        binaries=["actionlint"],
    ),
    # Runs the workflows in .github/ on this machine, steps on the host and no Docker
    # (tests/e2e/test_workflows_act.py, in make e2e).
    Component(
        name="act",
        packages=["github.com/nektos/act"],
        binaries=["act"],
    ),
    Component(
        name="gosec",
        packages=["github.com/securego/gosec/v2/cmd/gosec"],
        binaries=["gosec"],
    ),
    Component(
        name="kwok",
        packages=["sigs.k8s.io/kwok/cmd/kwok"],
        binaries=["kwok", "kwok-stages.yaml"],
        prepare=kwok_stages,
    ),
    # The two below are what `make test` needs (see the `monitoring-tools` target), not the
    # engine: `promtool test rules` / `check rules` on the alert rules, and the CRD schemas.
    Component(
        name="promtool",
        packages=["github.com/prometheus/prometheus/cmd/promtool"],
        binaries=["promtool"],
    ),
    # The Prometheus server, from promtool's module (same version, same go.sum): the rollout
    # analysis tests run it on loopback with the rendered rules over real gateway processes.
    Component(
        name="prometheus",
        module="promtool",
        packages=["github.com/prometheus/prometheus/cmd/prometheus"],
        binaries=["prometheus"],
    ),
    Component(
        name="monitoring-crds",
        packages=[],  # nothing to compile: the files come from the module
        binaries=[f"monitoring-crds/{name}" for name in MONITORING_CRDS],
        prepare=monitoring_crds,
    ),
    # The image tools, one module (oci/) because their dependencies agree: ko builds each Go
    # service into an OCI image without a Docker daemon (`make image` needs ko, crane and the
    # CA bundle); registry serves images on loopback and cosign signs, attests and verifies
    # them (the e2e suite and CI's image jobs).
    Component(
        name="ko",
        module="oci",
        packages=["github.com/google/ko"],
        binaries=["ko"],
        ldflags=lambda v: [f"-X github.com/google/ko/pkg/commands.Version=v{v.ko}"],
    ),
    Component(
        name="crane",
        module="oci",
        packages=["github.com/google/go-containerregistry/cmd/crane"],
        binaries=["crane"],
        ldflags=lambda v: [f"-X github.com/google/go-containerregistry/cmd/crane/cmd.Version=v{v.go_containerregistry}"],
    ),
    Component(
        name="registry",
        module="oci",
        packages=["github.com/google/go-containerregistry/cmd/registry"],
        binaries=["registry"],
    ),
    Component(
        name="cosign",
        module="oci",
        packages=["github.com/sigstore/cosign/v3/cmd/cosign"],
        binaries=["cosign"],
        ldflags=lambda v: [f"-X sigs.k8s.io/release-utils/version.gitVersion=v{v.cosign}",
                           "-X sigs.k8s.io/release-utils/version.gitTreeState=clean"],
    ),
    Component(
        name="ca-certificates",
        packages=[],  # run, not installed: it writes the bundle
        binaries=["ca-certificates.crt"],
        prepare=ca_certificates,
        sources=["go.mod", "go.sum", "main.go"],
    ),
]


# -- building ----------------------------------------------------------------------------------


def fingerprint(component: Component, v: versions.Versions) -> str:
    digest = hashlib.sha256()
    digest.update(subprocess.run(["go", "version"], capture_output=True, text=True, check=True).stdout.encode())
    digest.update(json.dumps(component.ldflags(v)).encode())
    for source in component.sources:
        digest.update(source.encode())
        digest.update((component.folder / source).read_bytes())
    return digest.hexdigest()


def is_current(component: Component, stamp: str) -> bool:
    stamp_file = STAMPS / f"{component.name}.json"
    if not stamp_file.exists() or not all((BIN / b).exists() for b in component.binaries):
        return False
    return json.loads(stamp_file.read_text()).get("fingerprint") == stamp


def build(component: Component, v: versions.Versions, force: bool) -> dict:
    stamp = fingerprint(component, v)
    if not force and is_current(component, stamp):
        return {"component": component.name, "built": False}
    started = time.monotonic()
    if component.prepare:
        component.prepare(component, v)
    output = BIN / component.output if component.output else BIN
    print(f"engine: building {component.name} ({', '.join(component.binaries)})", flush=True)
    if component.packages:
        go([
            "build", "-trimpath",
            "-ldflags", " ".join(["-s", "-w", *component.ldflags(v)]),
            "-o", str(output) + ("" if component.output else os.sep),
            *component.packages,
        ], component.folder, nice=True)
    seconds = round(time.monotonic() - started, 1)
    (STAMPS / f"{component.name}.json").write_text(json.dumps({"fingerprint": stamp, "seconds": seconds}))
    return {"component": component.name, "built": True, "seconds": seconds}


def report(results: list[dict], v: versions.Versions) -> dict:
    sizes = {p.name: p.stat().st_size for p in sorted(BIN.iterdir()) if p.is_file()}
    info = {
        "versions": v.__dict__,
        "pins": versions.requirement_pins(),
        "kubernetes_minor": versions.kubernetes_minor(),
        "build_seconds": {
            c.name: json.loads((STAMPS / f"{c.name}.json").read_text()).get("seconds")
            for c in COMPONENTS
            if (STAMPS / f"{c.name}.json").exists()
        },
        "sizes_bytes": sizes,
    }
    (BIN / "BUILD-INFO.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def check_kubernetes_minor(v: versions.Versions) -> None:
    if not v.kubernetes.startswith(versions.kubernetes_minor() + "."):
        raise SystemExit(
            f"engine: tools/kubernetes-version says {versions.kubernetes_minor()} "
            f"but tools/engine/controlplane builds Kubernetes {v.kubernetes}"
        )


def stale(names: list[str]) -> list[str]:
    """Which of the named components a build would compile now (missing or out of date)."""
    v = versions.built_versions()
    return [c.name for c in COMPONENTS if c.name in names and not is_current(c, fingerprint(c, v))]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("components", nargs="*", help="only these (default: all)")
    parser.add_argument("--force", action="store_true", help="rebuild even when up to date")
    args = parser.parse_args(argv)
    chosen = [c for c in COMPONENTS if not args.components or c.name in args.components]
    if args.components and len(chosen) != len(args.components):
        parser.error(f"components are: {', '.join(c.name for c in COMPONENTS)}")

    BIN.mkdir(parents=True, exist_ok=True)
    STAMPS.mkdir(exist_ok=True)
    try:
        v = versions.built_versions()
    except versions.VersionMismatch as mismatch:
        raise SystemExit(f"engine: {mismatch}") from None
    check_kubernetes_minor(v)
    started = time.monotonic()
    results = [build(c, v, args.force) for c in chosen]
    info = report(results, v)
    built = [r for r in results if r["built"]]
    total = round(time.monotonic() - started, 1)
    print(f"engine: {len(built)} of {len(results)} components built in {total}s; bin/: "
          + ", ".join(f"{n} {s / 2**20:.0f} MiB" for n, s in info["sizes_bytes"].items() if s > 2**20))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
