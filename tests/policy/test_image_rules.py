"""Where images may come from: the environment's registries (`platform:images.registries`,
passed on to each component as its `environment_images` output) hold production's images
(mandatory) and the others' (advisory); each refusal names the image, the rule and the fix."""
from __future__ import annotations

import pytest
from pulumi_policy import StackValidationArgs

from policy import kubernetes_rules as rules
from policy.images import allowed_by, is_pinned, repository_of
from policy.pack import POLICIES, ADVISORY, MANDATORY
from policy.workloads import DEPLOYMENT

from tests.policy.engine_view import policy_resource, violations
from tests.policy.test_kubernetes_rules import container, deployment

DIGEST = "@sha256:" + "0" * 64
OURS = "registry.example.com/platform/api-gateway" + DIGEST
ELSEWHERE = "docker.io/someone/api-gateway" + DIGEST
IMAGES = {"registries": ["registry.example.com/platform"],
          "signer": {"issuer": "https://token.actions.githubusercontent.com", "subject": "x"}}


def stack(image: str, env: str = "production", images: dict | None = IMAGES) -> StackValidationArgs:
    name = f"api-gateway.{env}"
    outputs = {"environment": env, **({"environment_images": images} if images is not None else {})}
    return StackValidationArgs([
        policy_resource("pulumi:pulumi:Stack", outputs, stack=name, name="stack"),
        policy_resource(DEPLOYMENT, deployment(container(image=image)), stack=name, name="app")])


@pytest.mark.parametrize("image, repository", [
    (OURS, "registry.example.com/platform/api-gateway"),
    ("registry.example.com:5000/platform/api-gateway:v1" + DIGEST, "registry.example.com:5000/platform/api-gateway"),
    ("127.0.0.1:5000/api-gateway", "127.0.0.1:5000/api-gateway"),
    ("nginx:1.27", "nginx"),
])
def test_the_repository_of_an_image_drops_its_tag_and_digest_not_the_registry_port(image, repository):
    assert repository_of(image) == repository


@pytest.mark.parametrize("image, allowed", [
    (OURS, True),
    ("registry.example.com/platform/team/api" + DIGEST, True),
    ("registry.example.com/platform-other/api" + DIGEST, False),  # whole path segments only
    ("registry.example.com/api" + DIGEST, False),
    ("evil.example/registry.example.com/platform/api" + DIGEST, False),
    ("registry.example.com.evil.example/platform/api" + DIGEST, False),
    (ELSEWHERE, False),
])
def test_an_image_is_allowed_only_under_a_listed_registry_path(image, allowed):
    assert allowed_by(image, ["registry.example.com/platform"]) is allowed


def test_pinned_means_a_sha256_digest_at_the_end():
    assert is_pinned(OURS) and not is_pinned("registry.example.com/platform/api-gateway:v1")


def test_production_admits_an_image_of_its_registries():
    assert violations(rules.images_from_allowed_registries_in_production, stack(OURS)) == []


def test_production_refuses_an_image_of_another_registry_naming_image_rule_and_fix():
    assert violations(rules.images_from_allowed_registries_in_production, stack(ELSEWHERE)) == [
        f"Deployment 'app' container 'app' runs '{ELSEWHERE}', from a registry environment "
        "'production' does not allow (platform:images.registries: registry.example.com/platform): "
        "push it to one of them and set that digest (`platform promote`)"]


def test_production_without_allowed_registries_refuses_every_image():
    assert violations(rules.images_from_allowed_registries_in_production, stack(OURS, images=None)) == [
        f"Deployment 'app' container 'app' runs '{OURS}', but environment 'production' allows no "
        "registry: set platform:images.registries in Pulumi.production.yaml (and redeploy "
        "'production', which passes it on to its components)"]


def test_elsewhere_the_rule_warns_and_an_environment_without_registries_is_not_judged():
    assert violations(rules.images_from_allowed_registries_in_production, stack(ELSEWHERE, "staging")) == []
    assert len(violations(rules.images_from_allowed_registries, stack(ELSEWHERE, "staging"))) == 1
    assert violations(rules.images_from_allowed_registries, stack(ELSEWHERE, "staging", images=None)) == []
    assert violations(rules.images_from_allowed_registries, stack(ELSEWHERE)) == []  # production's own rule


def test_the_registry_rule_is_mandatory_in_production_and_advisory_elsewhere():
    levels = {p.name: p.enforcement_level for p in POLICIES}
    assert levels["images-from-allowed-registries-in-production"] == MANDATORY
    assert levels["images-from-allowed-registries"] == ADVISORY
