"""The Go services' images, built without a Docker daemon (python -m tools.images build, `make
image`): one commit gives one digest; the image runs the static binary as a numeric non-root
user with nothing else in it but the CA bundle; it names its source and revision; its SBOM is
SPDX and lists the modules go.sum pins; and the Dockerfile builds the very same binary.

Builds need ko and the CA bundle, built from tools/engine/oci and tools/engine/ca-certificates
on first use (`make image-tools`; about 3 minutes cold, the line says so) and reused after.
Pushing, signing and verifying need a registry and cosign: tests/e2e/test_images.py.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from cryptography import x509

from components.go_service import NONROOT_UID
from infra.build_context import context_files
from infra.project import PROJECT_ROOT
from tools.images import (
    Layout,
    Source,
    Workflow,
    build_images,
    built_image,
    discover_services,
    provenance,
    sbom,
    source_of,
    toolchain,
)
from tools.images.build import GO_ENV, GO_FLAGS, GO_LDFLAGS
from tools.images.signing import GITHUB_BUILD_TYPE

from tests.conftest import GO, engine_tools, single, stacks_of_kind

SERVICES = [s.name for s in discover_services()]
REPOSITORY = "https://example.invalid/platform"  # what the images name as their source in these tests


@pytest.fixture(scope="session")
def image_tools(pytestconfig) -> None:
    """ko and the CA bundle, built by the engine's script when missing, with a line saying so."""
    engine_tools(pytestconfig, ["ko", "ca-certificates"], "image-tools")


@pytest.fixture(scope="session")
def source() -> Source:
    return source_of(PROJECT_ROOT, repository=REPOSITORY)


@pytest.fixture(scope="session")
def images(image_tools, source, tmp_path_factory) -> dict[str, Layout]:
    built = build_images(out=tmp_path_factory.mktemp("images"), source=source, report=lambda line: None)
    return {image.service: Layout(image.layout) for image in built}


@pytest.fixture(scope="session")
def rebuilt(image_tools, source, tmp_path_factory) -> dict[str, Layout]:
    built = build_images(out=tmp_path_factory.mktemp("images-again"), source=source, report=lambda line: None)
    return {image.service: Layout(image.layout) for image in built}


services = pytest.mark.parametrize("service", SERVICES)


# -- what is built ------------------------------------------------------------------------------


def go_module(folder: Path, module: str, main: str | None) -> None:
    folder.mkdir(parents=True)
    (folder / "go.mod").write_text(f"module {module}\n\ngo 1.26.0\n")
    if main is not None:
        (folder / "main.go").write_text(main)


HELLO = 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("hello") }\n'


def git(root: Path, *args: str, date: str = "2026-01-02T03:04:05Z") -> str:
    env = {**os.environ, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    return subprocess.run(["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid", *args],
                          cwd=root, env=env, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def project(tmp_path) -> Path:
    """A project whose apps/ holds one Go service, a library module and a folder of notes."""
    go_module(tmp_path / "apps" / "hello", "example.invalid/hello", HELLO)
    go_module(tmp_path / "apps" / "greeting", "example.invalid/greeting", "package greeting\n")
    (tmp_path / "apps" / "notes").mkdir()
    (tmp_path / "apps" / "notes" / "main.go").write_text(HELLO)  # Go, but no module: not a service
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "hello")
    return tmp_path


def test_every_go_module_with_a_main_package_under_apps_is_a_service(project):
    assert [s.name for s in discover_services(project)] == ["hello"]
    assert SERVICES == sorted(p.parent.name for p in (PROJECT_ROOT / "apps").glob("*/go.mod"))


def test_a_new_service_folder_is_built_with_no_list_edited_and_names_its_commit(image_tools, project):
    image, = build_images(root=project, out=project / "out", report=lambda line: None,
                          source=source_of(project, repository=REPOSITORY))
    config = Layout(image.layout).config()
    assert image.service == "hello" and not image.dirty
    assert config["config"]["Labels"]["org.opencontainers.image.revision"] == git(project, "rev-parse", "HEAD")
    assert config["created"] == "2026-01-02T03:04:05Z" == config["config"]["Labels"]["org.opencontainers.image.created"]


def test_an_uncommitted_change_is_built_but_not_passed_off_as_the_commit(image_tools, project):
    clean, = build_images(root=project, out=project / "clean", report=lambda line: None,
                          source=source_of(project, repository=REPOSITORY))
    (project / "apps" / "hello" / "main.go").write_text(HELLO.replace("hello", "changed"))
    changed, = build_images(root=project, out=project / "changed", report=lambda line: None,
                            source=source_of(project, repository=REPOSITORY))
    assert changed.dirty and changed.digest != clean.digest
    revision = Layout(changed.layout).config()["config"]["Labels"]["org.opencontainers.image.revision"]
    assert revision == git(project, "rev-parse", "HEAD") + "-dirty"


@services
def test_two_builds_of_one_commit_give_one_digest(images, rebuilt, service):
    assert images[service].digest == rebuilt[service].digest
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", images[service].digest)


@services
def test_every_time_in_the_image_is_the_commits(images, source, service):
    layout = images[service]
    assert layout.config()["created"] == source.created
    assert all(entry.mtime in (0, source.epoch) for entry, _ in layout.files().values())
    assert all(h["created"] in (source.created, "0001-01-01T00:00:00Z") for h in layout.config()["history"])


@services
def test_the_image_runs_as_a_numeric_non_root_user_the_deployment_also_names(images, service):
    user = images[service].config()["config"]["User"]
    assert user == f"{NONROOT_UID}:{NONROOT_UID}"
    assert all(part.isdigit() and int(part) != 0 for part in user.split(":"))


@services
def test_the_entrypoint_starts_the_service_as_the_deployment_sets_no_command(images, renderers, service):
    config = images[service].config()["config"]
    binary, = config["Entrypoint"]
    entry, _ = images[service].files()[binary.lstrip("/")]
    assert binary == f"/ko-app/{service}" and entry.mode & 0o111
    assert not config.get("Cmd")
    stacks = [s for s in stacks_of_kind("go-service") if s.split(".")[0] == service]
    assert stacks, f"no go-service stack deploys {service}"
    for stack in stacks:
        pod = single(renderers.run(stack), "kubernetes:apps/v1:Deployment").inputs["spec"]["template"]["spec"]
        container, = pod["containers"]
        assert "command" not in container and "args" not in container, stack


@services
def test_the_image_holds_the_binary_and_the_ca_bundle_and_no_shell(images, service):
    files = images[service].files()
    assert sorted(files) == sorted([
        "etc", "etc/ssl", "etc/ssl/certs", "etc/ssl/certs/ca-certificates.crt",
        "ko-app", f"ko-app/{service}", "var", "var/run", "var/run/ko"])
    assert not any(path.endswith(("bin/sh", "bin/bash", "bin/busybox")) for path in files)


@pytest.mark.filterwarnings("ignore:Parsed a serial number")  # one NSS root has a zero serial
def test_the_ca_bundle_is_the_pinned_nss_roots(images):
    bundle = toolchain.tool("ca-certificates").read_bytes()
    certificates = x509.load_pem_x509_certificates(bundle)
    assert len(certificates) > 100
    for layout in images.values():
        _, content = layout.files()["etc/ssl/certs/ca-certificates.crt"]
        assert content == bundle


def program_header_types(elf: bytes) -> list[int]:
    assert elf[:4] == b"\x7fELF" and elf[4] == 2 and elf[5] == 1, "not a 64-bit little-endian ELF"
    phoff, = struct.unpack_from("<Q", elf, 32)
    entry_size, count = struct.unpack_from("<HH", elf, 54)
    return [struct.unpack_from("<I", elf, phoff + i * entry_size)[0] for i in range(count)]


PT_DYNAMIC, PT_INTERP = 2, 3


@services
def test_the_binary_is_static(images, service):
    _, binary = images[service].files()[f"ko-app/{service}"]
    types = program_header_types(binary)
    assert PT_INTERP not in types and PT_DYNAMIC not in types, "the binary asks for a dynamic loader"


@services
def test_the_image_names_its_source_revision_and_creation_as_labels_and_annotations(images, source, service):
    expected = {
        "org.opencontainers.image.source": REPOSITORY,
        "org.opencontainers.image.revision": source.revision,
        "org.opencontainers.image.created": source.created,
    }
    labels = images[service].config()["config"]["Labels"]
    annotations = images[service].manifest()["annotations"]
    for key, value in expected.items():
        if key.endswith("revision"):  # a service folder with uncommitted changes says so
            assert labels[key] in (value, value + "-dirty") and annotations[key] == labels[key]
        else:
            assert labels[key] == value == annotations[key]


def test_ci_names_the_source_and_a_remote_is_named_by_its_https_url(monkeypatch, project):
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/platform")
    monkeypatch.setenv("GITHUB_SHA", "0123abcd" * 5)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert source_of(project) == Source("https://github.com/acme/platform", "0123abcd" * 5, 1700000000)
    for name in ("GITHUB_REPOSITORY", "GITHUB_SHA", "SOURCE_DATE_EPOCH"):
        monkeypatch.delenv(name)
    git(project, "remote", "add", "origin", "git@github.com:acme/platform.git")
    local = source_of(project)
    assert local.repository == "https://github.com/acme/platform"
    assert (local.revision, local.created) == (git(project, "rev-parse", "HEAD"), "2026-01-02T03:04:05Z")


def test_on_github_the_provenance_names_the_workflow_its_ref_the_run_and_the_commit(monkeypatch, images, source):
    monkeypatch.setenv("GITHUB_WORKFLOW_REF", "acme/platform/.github/workflows/deploy.yml@refs/heads/main")
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/platform")
    monkeypatch.setenv("GITHUB_RUN_ID", "42")
    workflow = Workflow.from_environment("https://github.com/acme/platform")
    service = SERVICES[0]
    predicate = provenance(built_image(service, images[service].path.parent), workflow)
    definition = predicate["buildDefinition"]
    assert definition["buildType"] == GITHUB_BUILD_TYPE
    assert definition["externalParameters"]["workflow"] == {
        "path": ".github/workflows/deploy.yml", "repository": "https://github.com/acme/platform", "ref": "refs/heads/main"}
    assert definition["resolvedDependencies"] == [{"uri": f"git+{source.repository}@refs/heads/main",
                                                   "digest": {"gitCommit": source.revision}}]
    # The keyless signing identity of that workflow: what verification and admission name.
    assert predicate["runDetails"]["builder"]["id"] == \
        "https://github.com/acme/platform/.github/workflows/deploy.yml@refs/heads/main"
    assert predicate["runDetails"]["metadata"]["invocationId"] == \
        "https://github.com/acme/platform/actions/runs/42/attempts/1"


# -- the SBOM -----------------------------------------------------------------------------------

SPDX_ID = {"type": "string", "pattern": r"^SPDXRef-[A-Za-z0-9.\-]+$"}
# The SPDX 2.3 rules an SBOM must meet (the specification's required fields and formats).
SPDX_2_3 = {
    "type": "object",
    "required": ["spdxVersion", "dataLicense", "SPDXID", "name", "documentNamespace", "creationInfo"],
    "properties": {
        "spdxVersion": {"const": "SPDX-2.3"},
        "dataLicense": {"const": "CC0-1.0"},
        "SPDXID": {"const": "SPDXRef-DOCUMENT"},
        "name": {"type": "string", "minLength": 1},
        "documentNamespace": {"type": "string", "pattern": r"^[a-z][a-z0-9+.\-]*://[^#\s]+$"},
        "creationInfo": {
            "type": "object", "required": ["created", "creators"],
            "properties": {
                "created": {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"},
                "creators": {"type": "array", "minItems": 1,
                             "items": {"type": "string", "pattern": r"^(Tool|Organization|Person): \S"}},
            },
        },
        "documentDescribes": {"type": "array", "items": SPDX_ID},
        "packages": {"type": "array", "items": {
            "type": "object", "required": ["SPDXID", "name", "downloadLocation"],
            "properties": {
                "SPDXID": SPDX_ID,
                "name": {"type": "string", "minLength": 1},
                "externalRefs": {"type": "array", "items": {
                    "type": "object", "required": ["referenceCategory", "referenceType", "referenceLocator"],
                    "properties": {"referenceCategory": {"enum": ["SECURITY", "PACKAGE-MANAGER",
                                                                  "PERSISTENT-ID", "OTHER"]},
                                   "referenceLocator": {"type": "string", "pattern": r"^\S+$"}}}},
                "checksums": {"type": "array", "items": {
                    "type": "object", "required": ["algorithm", "checksumValue"],
                    "properties": {"checksumValue": {"type": "string", "pattern": "^[0-9a-f]+$"}}}},
            }}},
        "relationships": {"type": "array", "items": {
            "type": "object", "required": ["spdxElementId", "relationshipType", "relatedSpdxElement"],
            "properties": {"spdxElementId": SPDX_ID, "relatedSpdxElement": SPDX_ID}}},
    },
}
PURL = re.compile(r"^pkg:[a-z]+/[A-Za-z0-9.%_~/\-]+@[A-Za-z0-9.%_~+\-:]+(\?[^#\s]*)?$")


def sbom_of(layout: Layout) -> dict:
    return json.loads((layout.path / "sbom.spdx.json").read_text())


@services
def test_the_sbom_is_valid_spdx_2_3_json(images, service):
    document = sbom_of(images[service])
    jsonschema.validate(document, SPDX_2_3)
    declared = {p["SPDXID"] for p in document["packages"]} | {document["SPDXID"]}
    for relation in document["relationships"]:
        assert {relation["spdxElementId"], relation["relatedSpdxElement"]} <= declared, relation
    for package in document["packages"]:
        for ref in package.get("externalRefs", []):
            assert ref["referenceType"] != "purl" or PURL.match(ref["referenceLocator"]), ref
    assert document["documentDescribes"] == [f"SPDXRef-Package-{images[service].digest.replace(':', '-')}"]


def go_sum_modules(service: str) -> set[tuple[str, str]]:
    lines = (PROJECT_ROOT / "apps" / service / "go.sum").read_text().splitlines()
    return {(module, version) for module, version, _ in (line.split() for line in lines)
            if not version.endswith("/go.mod")}


def linked_modules(binary: Path) -> set[tuple[str, str]]:
    out = subprocess.run([GO, "version", "-m", str(binary)], capture_output=True, text=True, check=True).stdout
    return {(fields[1], fields[2]) for fields in (line.split() for line in out.splitlines()) if fields[:1] == ["dep"]}


@services
def test_the_sbom_names_every_module_in_the_binary_as_go_sum_pins_it(images, service, tmp_path):
    golang = {}
    for package in sbom_of(images[service])["packages"]:
        for ref in package.get("externalRefs", []):
            if ref["referenceLocator"].startswith("pkg:golang/"):
                golang[package["name"]] = package.get("versionInfo")
    main_module = subprocess.run([GO, "list", "-m"], cwd=PROJECT_ROOT / "apps" / service,
                                 capture_output=True, text=True, check=True).stdout.strip()
    assert golang.pop(main_module) is None  # the service itself: built from the checkout
    named = set(golang.items())
    assert named <= go_sum_modules(service)
    _, binary = images[service].files()[f"ko-app/{service}"]
    (tmp_path / service).write_bytes(binary)
    assert named == linked_modules(tmp_path / service)


def test_an_sbom_main_module_built_from_a_checkout_gets_valid_identifiers():
    package = "SPDXRef-Package-example.invalid.hello-(devel)"
    document = {
        "SPDXID": "SPDXRef-DOCUMENT", "documentDescribes": [package],
        "packages": [{"SPDXID": package, "name": "example.invalid/hello", "externalRefs": [
            {"referenceType": "purl", "referenceLocator": "pkg:golang/example.invalid/hello@(devel)?type=module"}]}],
        "relationships": [{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                           "relatedSpdxElement": package}],
    }
    fixed = sbom.fix(document)
    assert fixed["packages"][0]["SPDXID"] == "SPDXRef-Package-example.invalid.hello--devel-"
    assert fixed["documentDescribes"] == [fixed["packages"][0]["SPDXID"]]
    assert fixed["relationships"][0]["relatedSpdxElement"] == fixed["packages"][0]["SPDXID"]
    assert fixed["packages"][0]["externalRefs"][0]["referenceLocator"] == \
        "pkg:golang/example.invalid/hello@%28devel%29?type=module"


# -- the Dockerfile builds the same binary -----------------------------------------------------

DOCKERFILES = [s for s in SERVICES if (PROJECT_ROOT / "apps" / s / "Dockerfile").exists()]


def build_stage_runs(dockerfile: Path) -> list[list[str]]:
    """The RUN commands of the Dockerfile's first (build) stage, as argument lists."""
    stages = re.split(r"^FROM\s", dockerfile.read_text(), flags=re.M)[1:]
    return [shlex.split(line[len("RUN "):]) for line in stages[0].splitlines() if line.startswith("RUN ")]


def go_build_line(dockerfile: Path) -> tuple[dict[str, str], list[str]]:
    """The environment and the arguments of the Dockerfile's `go build`."""
    run, = [r for r in build_stage_runs(dockerfile) if "build" in r and "go" in r]
    split = run.index("go")
    env = dict(assignment.split("=", 1) for assignment in run[:split])
    return env, run[split + 1:]


@pytest.mark.parametrize("service", DOCKERFILES)
def test_the_dockerfile_builds_with_the_flags_of_the_daemonless_build(service):
    env, args = go_build_line(PROJECT_ROOT / "apps" / service / "Dockerfile")
    assert {k: v for k, v in env.items() if k in GO_ENV} == GO_ENV
    assert args[0] == "build"
    flags, values, rest = [], {}, iter(args[1:])
    for arg in rest:
        if arg in ("-ldflags", "-o"):
            values[arg] = next(rest)
        elif arg.startswith("-"):
            flags.append(arg)
    assert flags == GO_FLAGS
    assert values["-ldflags"].split() == GO_LDFLAGS


@pytest.mark.parametrize("service", DOCKERFILES)
def test_the_dockerfile_build_stage_gives_the_binary_in_the_image_byte_for_byte(images, service, tmp_path):
    """Runs the build stage's RUN lines (with this machine's Go, as the image build does) on
    exactly the files the Docker build context holds, and compares with the image's binary."""
    folder = PROJECT_ROOT / "apps" / service
    context, out = tmp_path / "src", tmp_path / "out"
    for name in context_files(folder):
        (context / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(folder / name, context / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOFLAGS")}
    for run in build_stage_runs(folder / "Dockerfile"):
        split = run.index("go")
        command = [GO, *(arg.replace("/out/", f"{out}/") for arg in run[split + 1:])]
        result = subprocess.run(command, cwd=context, capture_output=True, text=True, timeout=600,
                                env={**env, **dict(a.split("=", 1) for a in run[:split])})
        assert result.returncode == 0, f"{' '.join(run)}:\n{result.stderr}"
    _, in_image = images[service].files()[f"ko-app/{service}"]
    assert (out / service).read_bytes() == in_image


# -- the command -------------------------------------------------------------------------------


def test_build_prints_one_digest_line_per_service(image_tools, tmp_path):
    result = subprocess.run([sys.executable, "-m", "tools.images", "build", "--out", str(tmp_path),
                             "--source", REPOSITORY], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == SERVICES
    for line in lines:
        service, digest = line.split()
        assert digest == Layout(tmp_path / service).digest


def test_an_unknown_service_is_refused_with_the_known_ones(tmp_path):
    result = subprocess.run([sys.executable, "-m", "tools.images", "build", "nope", "--out", str(tmp_path)],
                            cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip() == f"images: no Go service nope under apps/ (services: {', '.join(SERVICES)})"
    assert "Traceback" not in result.stderr and not any(tmp_path.iterdir())
