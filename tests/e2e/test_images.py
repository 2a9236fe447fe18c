"""The images pushed to a registry, signed, attested and verified: go-containerregistry's
in-memory registry on a free loopback port, cosign with a key pair made for this test.

Offline on purpose and said so: no certificate authority nor transparency log can be reached
here, so signatures and attestations are made with the test's key pair and nothing is uploaded
to a transparency log (cosign's --tlog-upload=false --use-signing-config=false), and
verification does not look for one (--insecure-ignore-tlog=true). On GitHub the same commands
sign keyless with the workflow's OIDC identity and log in Rekor; that path is not run here.

Needs ko, crane, registry and cosign (`make engine` builds them; missing, they are built first
with a line saying so: cosign takes about 5 to 15 minutes cold).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from infra.project import PROJECT_ROOT
from tools.images import (
    BuiltImage,
    KeyPair,
    LoopbackRegistry,
    Signer,
    VerificationError,
    Workflow,
    attest_image,
    build_image,
    build_images,
    discover_services,
    generate_key_pair,
    provenance,
    push_image,
    sign_image,
    source_of,
    toolchain,
    verify_attestation,
    verify_image,
)
from tools.images.signing import LOCAL_BUILD_TYPE, PROVENANCE_TYPE, SBOM_TYPE

from tests.conftest import engine_tools
from tests.e2e.conftest import FIGURES

REPOSITORY = "https://example.invalid/platform"
PASSWORD = "made-for-this-test"
SERVICES = [s.name for s in discover_services()]


@pytest.fixture(scope="module")
def signing_tools(pytestconfig) -> None:
    engine_tools(pytestconfig, ["ko", "ca-certificates", "crane", "registry", "cosign"], "engine")


@pytest.fixture(scope="module")
def registry(signing_tools):
    started = time.monotonic()
    with LoopbackRegistry() as loopback:
        FIGURES["loopback registry"] = f"{time.monotonic() - started:.2f}s to answer on {loopback.host}"
        yield loopback


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("images")


@pytest.fixture(scope="module")
def built(signing_tools, out) -> dict[str, BuiltImage]:
    started = time.monotonic()
    images = build_images(out=out, source=source_of(PROJECT_ROOT, repository=REPOSITORY), report=lambda line: None)
    FIGURES["image build (Go cache warm)"] = f"{time.monotonic() - started:.1f}s for {len(images)} service(s)"
    return {image.service: image for image in images}


@pytest.fixture(scope="module")
def keys(signing_tools, tmp_path_factory) -> KeyPair:
    return generate_key_pair(tmp_path_factory.mktemp("keys"), PASSWORD)


@pytest.fixture(scope="module")
def other_keys(signing_tools, tmp_path_factory) -> KeyPair:
    return generate_key_pair(tmp_path_factory.mktemp("other-keys"), PASSWORD)


def images_command(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tools.images", *args], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, env={**os.environ, "COSIGN_PASSWORD": PASSWORD})


@pytest.fixture(scope="module")
def pushed(registry, built, out) -> dict[str, str]:
    """The built images pushed with the command, which prints one reference by digest each."""
    started = time.monotonic()
    result = images_command("push", "--registry", registry.host, "--out", str(out))
    FIGURES["push"] = f"{time.monotonic() - started:.2f}s for {len(built)} image(s)"
    assert result.returncode == 0, result.stderr
    return dict(zip(SERVICES, result.stdout.split()))


def test_push_prints_each_image_by_digest_and_the_registry_serves_that_digest(pushed, built, registry):
    for service, ref in pushed.items():
        assert ref == f"{registry.host}/{service}@{built[service].digest}"
        tag = f"{registry.host}/{service}:{built[service].source.revision}"
        served = toolchain.run("crane", ["digest", "--insecure", tag]).stdout.strip()
        assert served == built[service].digest


def test_a_signed_digest_verifies_against_the_test_key_without_a_transparency_log(pushed, keys, out, registry):
    started = time.monotonic()
    result = images_command("sign", "--registry", registry.host, "--key", str(keys.private_key), "--out", str(out))
    FIGURES["sign (key pair, no transparency log)"] = f"{time.monotonic() - started:.2f}s for {len(pushed)} image(s)"
    assert result.returncode == 0, result.stderr
    for ref in pushed.values():
        assert f"{ref} signed: key {keys.public_key} (offline: key pair, no transparency log)" in result.stdout
    verified = images_command("verify", *pushed.values(), "--key", str(keys.public_key))
    assert verified.returncode == 0, verified.stderr
    for ref in pushed.values():
        assert f"{ref} verified: signed by {keys.public_key} (offline: transparency log not checked)" in verified.stdout
        payload, = verify_image(ref, key=keys.public_key)
        assert payload["critical"]["image"]["docker-manifest-digest"] == ref.rsplit("@", 1)[1]


@pytest.fixture(scope="module")
def unsigned(registry, built, out) -> str:
    """Another build of a service (a commit one second later: another digest), pushed, never signed."""
    image = next(iter(built.values()))
    service = next(s for s in discover_services() if s.name == image.service)
    later = replace(image.source, epoch=image.source.epoch + 1)
    other = build_image(service, later, out / "later")
    assert other.digest != image.digest
    return push_image(other, registry.host)


def test_an_unsigned_image_fails_verification_with_a_clear_message(unsigned, keys):
    with pytest.raises(VerificationError, match=r"is not signed by .*cosign\.pub: no signatures found"):
        verify_image(unsigned, key=keys.public_key)
    result = images_command("verify", unsigned, "--key", str(keys.public_key))
    assert result.returncode == 1
    assert result.stderr.strip() == f"images: {unsigned} is not signed by {keys.public_key}: no signatures found"
    assert "Traceback" not in result.stderr


def test_a_signature_by_another_key_is_refused(pushed, keys, other_keys):
    ref = next(iter(pushed.values()))
    sign_image(ref, Signer(keys))
    with pytest.raises(VerificationError, match=f"is not signed by {other_keys.public_key}"):
        verify_image(ref, key=other_keys.public_key)


def test_images_are_signed_and_verified_by_digest_never_by_tag(registry, keys):
    with pytest.raises(ValueError, match="by digest"):
        sign_image(f"{registry.host}/api-gateway:latest", Signer(keys))


def test_the_sbom_and_a_provenance_naming_workflow_repository_and_commit_are_attested(pushed, built, keys, out,
                                                                                       registry):
    started = time.monotonic()
    result = images_command("attest", "--registry", registry.host, "--key", str(keys.private_key),
                            "--out", str(out), "--workflow", "make e2e")
    FIGURES["attest (SBOM + provenance)"] = f"{time.monotonic() - started:.2f}s for {len(pushed)} image(s)"
    assert result.returncode == 0, result.stderr
    for service, ref in pushed.items():
        image = built[service]
        assert (f"{ref} attested: SBOM (spdxjson), provenance (slsaprovenance1: workflow make e2e, commit "
                f"{image.source.revision}); key {keys.public_key} (offline: key pair, no transparency log)") in result.stdout
        digest = image.digest.split(":", 1)[1]

        sbom, = verify_attestation(ref, SBOM_TYPE, key=keys.public_key)
        assert sbom["predicateType"] == "https://spdx.dev/Document"
        assert sbom["subject"][0]["digest"] == {"sha256": digest}
        assert sbom["predicate"] == json.loads(image.sbom.read_text())

        statement, = verify_attestation(ref, PROVENANCE_TYPE, key=keys.public_key)
        assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
        assert statement["subject"][0]["digest"] == {"sha256": digest}
        definition = statement["predicate"]["buildDefinition"]
        assert definition["buildType"] == LOCAL_BUILD_TYPE
        assert definition["externalParameters"]["workflow"] == {"path": "make e2e", "repository": REPOSITORY, "ref": None}
        assert definition["externalParameters"]["service"] == f"apps/{service}"
        assert definition["resolvedDependencies"] == [
            {"uri": f"git+{REPOSITORY}", "digest": {"gitCommit": image.source.revision}}]
        assert statement["predicate"]["runDetails"]["builder"]["id"] == "urn:platform:local:make e2e"


def test_an_attestation_by_another_key_is_refused(pushed, built, keys, other_keys):
    service, ref = next(iter(pushed.items()))
    image = built[service]
    attest_image(ref, provenance(image, Workflow("a test", image.source.repository)), PROVENANCE_TYPE, Signer(keys))
    with pytest.raises(VerificationError, match=f"no {PROVENANCE_TYPE} attestation signed by"):
        verify_attestation(ref, PROVENANCE_TYPE, key=other_keys.public_key)


def test_the_image_tools_are_the_versions_tools_engine_pins(signing_tools):
    from tools.engine import versions
    pinned = versions.built_versions()
    assert toolchain.run("ko", ["version"]).stdout.strip() == f"v{pinned.ko}"
    assert toolchain.run("crane", ["version"]).stdout.strip() == f"v{pinned.go_containerregistry}"
    assert f"GitVersion:    v{pinned.cosign}" in toolchain.run("cosign", ["version"]).stdout
