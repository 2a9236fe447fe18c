"""Production admits only its own signed images, for real: the gateway built (ko), pushed to
go-containerregistry's registry on loopback and signed with a key pair made for this test
(cosign, no transparency log: offline, as tests/e2e/test_images.py says), production trusting
that key and that registry path. Three images of api-gateway.production:

- the signed one, from the allowed path: admitted (cosign verify), previewed and deployed on
  the local cluster; the Deployment runs it; and the way CI takes it there: set in staging's
  stack file by `platform promote api-gateway.staging --image`, deployed, then copied into
  production's by `platform promote api-gateway.production` (no build), deployed;
- another build, pushed to the same repository and never signed: refused by `platform preview`
  and `platform up` before the engine with the signature rule's message;
- the signed image pushed under a path production does not allow: refused with the registry
  rule's message by `platform` before the engine, and by the policy pack itself in a raw
  `pulumi preview --policy-pack policy`.

The refusals are checked twice: on a copy with an empty backend (the engine never runs: no
stack is created; no cluster needed), and on the local cluster with production deployed (the
Deployment and the stack's state stay as they were).
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import replace

import pytest

from tools.cluster.kube import path_for
from tools.images import LoopbackRegistry, Signer, build_image, discover_services, push_image, sign_image

from tests.e2e.conftest import FIGURES
from tests.e2e.harness import Workspace, namespace_of
from tests.e2e.test_images import built, keys, out, signing_tools  # noqa: F401 -- the fixtures

PRODUCTION, SERVICE = "production", "api-gateway.production"
STAGING, STAGING_SERVICE = "staging", "api-gateway.staging"
ALLOWED_PATH = "platform"


@pytest.fixture(scope="module")
def registry(signing_tools):  # noqa: F811 -- a registry of this module's own
    with LoopbackRegistry() as loopback:
        yield loopback


@pytest.fixture(scope="module")
def images(registry, built, keys, out) -> dict[str, str]:  # noqa: F811
    """The three references: signed and allowed, unsigned, signed from a disallowed path."""
    image = built["api-gateway"]
    started = time.monotonic()
    signed = push_image(image, registry.host, f"{ALLOWED_PATH}/api-gateway")
    sign_image(signed, Signer(keys))
    FIGURES["admission: push + sign one image"] = f"{time.monotonic() - started:.2f}s"
    service = next(s for s in discover_services() if s.name == "api-gateway")
    later = build_image(service, replace(image.source, epoch=image.source.epoch + 1), out / "unsigned")
    unsigned = push_image(later, registry.host, f"{ALLOWED_PATH}/api-gateway")
    elsewhere = push_image(image, registry.host, "elsewhere/api-gateway")
    sign_image(elsewhere, Signer(keys))
    return {"signed": signed, "unsigned": unsigned, "elsewhere": elsewhere}


@pytest.fixture(scope="module")
def ws(registry, keys, tmp_path_factory) -> Workspace:  # noqa: F811
    """A copy of the project whose production trusts the test's key and the registry's
    `platform/` path. Its backend is empty: a refusal before the engine needs no cluster."""
    base = tmp_path_factory.mktemp("admission")
    workspace = Workspace.create(base, base / "no-cluster-yet")
    workspace.use_namespace(PRODUCTION, "admission-production")
    workspace.use_namespace(STAGING, "admission-staging")
    (workspace.root / "keys").mkdir()
    shutil.copy(keys.public_key, workspace.root / "keys" / "cosign.pub")
    workspace.trust_signer({"key": "keys/cosign.pub"}, environments=(PRODUCTION,),
                           registries=[f"{registry.host}/{ALLOWED_PATH}"])
    return workspace


@pytest.fixture(scope="module")
def deployed(ws, cluster) -> Workspace:
    """The same copy on the local cluster, its production environment deployed."""
    ws.kubeconfig = cluster.kubeconfig
    ws.platform("up", PRODUCTION, "--yes")
    return ws


def set_image(ws: Workspace, ref: str) -> None:
    path = ws.root / f"Pulumi.{SERVICE}.yaml"
    text = path.read_text()
    current = next(line for line in text.splitlines() if line.strip().startswith("ref: "))
    path.write_text(text.replace(current, f"    ref: {ref}"))


def deployed_image(ws: Workspace, cluster, stack: str = SERVICE) -> str | None:
    kube = cluster.client()
    path = path_for("apps/v1", "Deployment", "api-gateway", namespace_of(stack, ws.root))
    if not kube.exists(path):
        return None
    return kube.get(path)["spec"]["template"]["spec"]["containers"][0]["image"]


def resources(ws: Workspace) -> int:
    exported = ws.pulumi("stack", "export", "-s", SERVICE, check=False)
    if exported.returncode != 0:
        return 0  # never created
    return len(json.loads(exported.stdout)["deployment"].get("resources") or [])


REFUSED = {
    "unsigned": ("images-signed-by-trusted-identity-in-production",
                 "is not signed by key keys/cosign.pub (cosign: no signatures found)"),
    "elsewhere": ("images-from-allowed-registries-in-production",
                  "comes from a registry 'production' does not allow"),
}


def refused(ws: Workspace, ref: str, rule: str, problem: str) -> None:
    """`platform preview` and `platform up` both stop before the engine, with the rule's message."""
    for command in (["preview", SERVICE], ["up", SERVICE, "--yes"]):
        result = ws.platform(*command, check=False)
        assert result.returncode == 1, result.stdout + result.stderr
        assert result.stderr.startswith(f"error: stack '{SERVICE}': image {ref} {problem}"), result.stderr
        assert (f"(rule {rule}, platform:images of Pulumi.production.yaml); nothing was previewed "
                "or applied. Fix: ") in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


@pytest.mark.parametrize("which", REFUSED)
def test_production_refuses_an_image_before_the_engine(ws, images, which):
    set_image(ws, images[which])
    started = time.monotonic()
    refused(ws, images[which], *REFUSED[which])
    FIGURES[f"admission: refusal of the {which} image (preview + up)"] = f"{time.monotonic() - started:.1f}s"
    assert resources(ws) == 0  # the engine never ran: no stack was even created


def test_the_signed_image_passes_admission_and_goes_on_to_the_engine(ws, images):
    set_image(ws, images["signed"])
    started = time.monotonic()
    result = ws.platform("preview", SERVICE, check=False)
    FIGURES["admission: platform preview up to the engine, with cosign verify"] = f"{time.monotonic() - started:.1f}s"
    assert result.stderr.startswith(f"{SERVICE}: image {images['signed']} admitted: signed by key keys/cosign.pub\n")
    # Admitted, the command goes on to the engine; this copy's environment was never deployed.
    assert "its environment stack 'production' has never been deployed" in result.stderr


@pytest.mark.parametrize("which", REFUSED)
def test_a_refused_image_leaves_the_cluster_and_the_state_as_they_were(deployed, cluster, images, which):
    before_image, before_resources = deployed_image(deployed, cluster), resources(deployed)
    set_image(deployed, images[which])
    refused(deployed, images[which], *REFUSED[which])
    assert deployed_image(deployed, cluster) == before_image
    assert resources(deployed) == before_resources


def test_the_policy_pack_refuses_a_disallowed_registry_in_a_raw_preview_too(deployed, images):
    set_image(deployed, images["elsewhere"])
    if deployed.pulumi("stack", "select", SERVICE, check=False).returncode != 0:
        deployed.init_stack(SERVICE)  # `pulumi stack init` from its stack file, as an operator would
    result = deployed.pulumi("preview", "-s", SERVICE, "--policy-pack", "policy", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "images-from-allowed-registries-in-production" in output
    assert f"runs '{images['elsewhere']}', from a registry environment 'production' does not allow" in output


def test_production_admits_and_deploys_its_signed_image(deployed, cluster, images):
    set_image(deployed, images["signed"])
    preview = deployed.platform("preview", SERVICE)
    assert f"{SERVICE}: image {images['signed']} admitted: signed by key keys/cosign.pub" in preview.stderr
    deployed.platform("up", SERVICE, "--yes")
    assert deployed_image(deployed, cluster) == images["signed"]


def test_a_pushed_digest_reaches_staging_then_production_copied_never_rebuilt(deployed, cluster, images):
    signed = images["signed"]
    promoted = deployed.platform("promote", STAGING_SERVICE, "--image", signed)
    assert f"{STAGING_SERVICE}: " in promoted.stdout and f"-> {signed} (from --image)" in promoted.stdout
    deployed.platform("up", STAGING, "--yes")
    deployed.platform("up", STAGING_SERVICE, "--yes")
    assert deployed_image(deployed, cluster, STAGING_SERVICE) == signed

    set_image(deployed, images["unsigned"])  # production runs something else until promoted
    promoted = deployed.platform("promote", SERVICE)
    assert f"-> {signed} (from {STAGING_SERVICE})" in promoted.stdout, promoted.stdout
    assert f"ref: {signed}" in (deployed.root / f"Pulumi.{SERVICE}.yaml").read_text()
    started = time.monotonic()
    result = deployed.platform("up", SERVICE, "--yes")
    FIGURES["admission: production up of the promoted digest (cosign verify + engine)"] = \
        f"{time.monotonic() - started:.1f}s"
    assert f"{SERVICE}: image {signed} admitted: signed by key keys/cosign.pub" in result.stderr
    assert deployed_image(deployed, cluster) == deployed_image(deployed, cluster, STAGING_SERVICE) == signed
