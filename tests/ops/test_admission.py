"""Admission before the engine: `platform preview` and `platform up` of a production Go service
refuse an image that is not pinned, comes from a registry production does not allow, or cannot
be checked for its signer's signature, with one message naming the image, the rule and the fix,
before the engine is asked anything (no CLI is needed for these: none is on this machine's
PATH in `make test`). Elsewhere the same findings are warnings. The signature itself, checked
with cosign against a registry, is proven in tests/e2e/test_admission.py."""
from __future__ import annotations

import io

import pytest

from ops.engine import admission
from ops.engine.session import Session
from ops.errors import OpsError
from ops.project import Project

from tests.ops.conftest import ProjectRepo

PRODUCTION, STAGING = "api-gateway.production", "api-gateway.staging"
DIGEST = "@sha256:" + "ab" * 32
OURS = "registry.example.com/platform/api-gateway" + DIGEST
ELSEWHERE = "docker.io/someone/api-gateway" + DIGEST


def set_image(repo: ProjectRepo, stack: str, ref: str) -> None:
    code, _, err = repo.platform("promote", stack, "--image", ref) if stack == STAGING else (None, "", "")
    if code is None:  # production only ever takes staging's digest: edit the file as a test may
        path = f"Pulumi.{stack}.yaml"
        text = repo.read(path)
        current = next(line for line in text.splitlines() if line.strip().startswith("ref: "))
        repo.write(path, text.replace(current, f"    ref: {ref}"))
    else:
        assert code == 0, err


def admit(repo: ProjectRepo, stack: str, monkeypatch) -> str:
    monkeypatch.setenv("PATH", "/nonexistent")  # no cosign but the project's own
    session = Session(Project(repo.root), out=io.StringIO(), err=io.StringIO())
    admission.admit(session, session.stack(stack))
    return session.err.getvalue()


@pytest.mark.parametrize("ref, rule, problem, fix", [
    ("registry.example.com/platform/api-gateway:v2", "images-pinned-by-digest-in-production",
     "is not pinned by digest", f"set platform:image.ref to registry/repository@sha256:<digest> "
                                f"(`platform promote {PRODUCTION}`)"),
    (ELSEWHERE, "images-from-allowed-registries-in-production",
     "comes from a registry 'production' does not allow (registry.example.com/platform)",
     "push it to one of them and set that digest (`platform promote`), or add its registry to "
     "platform:images.registries of Pulumi.production.yaml"),
    (OURS, "images-signed-by-trusted-identity-in-production",
     "cannot be checked for a signature by https://github.com/example/platform/.github/workflows/"
     "images.yml@refs/heads/main (issuer https://token.actions.githubusercontent.com): cosign is "
     "missing (tools/engine/bin/cosign, nor on PATH)", "`make signing-tools` builds it"),
])
def test_production_refuses_naming_the_image_the_rule_and_the_fix(repo, monkeypatch, ref, rule, problem, fix):
    set_image(repo, PRODUCTION, ref)
    with pytest.raises(OpsError) as refused:
        admit(repo, PRODUCTION, monkeypatch)
    assert str(refused.value) == (
        f"stack '{PRODUCTION}': image {ref} {problem} (rule {rule}, platform:images of "
        f"Pulumi.production.yaml); nothing was previewed or applied. Fix: {fix}")


def test_elsewhere_the_same_findings_are_warnings(repo, monkeypatch):
    set_image(repo, STAGING, ELSEWHERE)
    warned = admit(repo, STAGING, monkeypatch)
    assert warned == (f"warning: stack '{STAGING}': image {ELSEWHERE} comes from a registry 'staging' "
                      "does not allow (registry.example.com/platform) (rule images-from-allowed-"
                      "registries, platform:images of Pulumi.staging.yaml). Fix: push it to one of "
                      "them and set that digest (`platform promote`), or add its registry to "
                      "platform:images.registries of Pulumi.staging.yaml\n")


def test_a_worker_and_an_environment_stack_have_no_image_to_admit(repo, monkeypatch):
    assert admit(repo, "ai-worker.production", monkeypatch) == ""
    assert admit(repo, "production", monkeypatch) == ""


def test_a_production_without_image_settings_is_said_to_check_nothing(repo, monkeypatch):
    text = repo.read("Pulumi.production.yaml")
    start = text.index("  # The images production admits")
    end = text.index("  platform:kubernetes:")
    repo.write("Pulumi.production.yaml", text[:start] + text[end:])
    assert admit(repo, PRODUCTION, monkeypatch) == (
        f"warning: stack '{PRODUCTION}': environment 'production' sets no platform:images: no "
        "registry or signer is checked\n")


@pytest.mark.parametrize("command", ["preview", "up"])
def test_platform_preview_and_up_refuse_before_the_engine_and_change_nothing(repo, monkeypatch, command):
    set_image(repo, PRODUCTION, ELSEWHERE)
    files = {p.name: p.read_bytes() for p in repo.root.glob("Pulumi.*.yaml")}
    monkeypatch.setenv("PATH", "/nonexistent")  # neither a pulumi CLI nor cosign: refused before either
    code, out, err = repo.platform(command, PRODUCTION, *(["--yes"] if command == "up" else []))
    assert code == 1, (out, err)
    assert err.startswith(f"error: stack '{PRODUCTION}': image {ELSEWHERE} comes from a registry "
                          "'production' does not allow"), err
    assert "(rule images-from-allowed-registries-in-production, platform:images of Pulumi.production.yaml); " \
        "nothing was previewed or applied. Fix: " in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in out + err
    assert {p.name: p.read_bytes() for p in repo.root.glob("Pulumi.*.yaml")} == files


def test_a_signer_key_must_be_a_file_of_the_repository(repo):
    text = repo.read("Pulumi.production.yaml")
    repo.write("Pulumi.production.yaml", text.replace(
        "      issuer: https://token.actions.githubusercontent.com\n"
        "      subject: https://github.com/example/platform/.github/workflows/images.yml@refs/heads/main\n",
        "      key: keys/production-cosign.pub\n"))
    code, out, err = repo.platform("promote", PRODUCTION)  # any command that reads the environment
    assert code == 1
    assert "platform:images.signer.key: no file keys/production-cosign.pub" in err, err


def test_a_production_without_a_signer_is_said_to_check_no_signature(repo, monkeypatch):
    text = repo.read("Pulumi.production.yaml")
    repo.write("Pulumi.production.yaml", text.replace(
        "    signer:\n      issuer: https://token.actions.githubusercontent.com\n"
        "      subject: https://github.com/example/platform/.github/workflows/images.yml@refs/heads/main\n", ""))
    assert admit(repo, PRODUCTION, monkeypatch) == (
        f"warning: stack '{PRODUCTION}': environment 'production' sets no platform:images.signer: "
        "no signature is checked\n")


def test_a_canary_releases_image_is_held_to_the_same_rules(repo, monkeypatch):
    """The image a canary release runs beside the stable one is admitted like it: production
    (no signer here, to reach the registry rule) refuses it from a registry it does not allow."""
    text = repo.read("Pulumi.production.yaml")
    repo.write("Pulumi.production.yaml", text.replace(
        "    signer:\n      issuer: https://token.actions.githubusercontent.com\n"
        "      subject: https://github.com/example/platform/.github/workflows/images.yml@refs/heads/main\n", ""))
    set_image(repo, PRODUCTION, OURS)
    path = f"Pulumi.{PRODUCTION}.yaml"
    repo.write(path, repo.read(path) + f"  platform:canary:\n    release:\n      image: {ELSEWHERE}\n")
    with pytest.raises(OpsError) as refused:
        admit(repo, PRODUCTION, monkeypatch)
    assert str(refused.value).startswith(
        f"stack '{PRODUCTION}': image {ELSEWHERE} comes from a registry 'production' does not allow")
    assert "rule images-from-allowed-registries-in-production" in str(refused.value)
