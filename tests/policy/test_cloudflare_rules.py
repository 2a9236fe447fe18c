"""Each Worker rule of the pack on crafted resources, as the Cloudflare provider (v6) names them."""
from __future__ import annotations

import pytest
from pulumi_policy import StackValidationArgs

from policy import cloudflare_rules as rules

from tests.policy.engine_view import policy_resource, resource_args, violations

ZONE_ID = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
ENVIRONMENT = ("pulumi:pulumi:StackReference",
               {"name": "organization/platform/staging",
                "outputs": {"cloudflare_zone_name": "example.com", "cloudflare_zone_id": ZONE_ID}})


def version(*bindings: dict, date: str | None = "2025-09-01") -> dict:
    props = {"accountId": "0" * 32, "mainModule": "worker.js", "bindings": list(bindings)}
    return {**props, **({"compatibilityDate": date} if date else {})}


def stack(*resources) -> StackValidationArgs:
    return StackValidationArgs([policy_resource(t, p, stack="ai-worker.staging", name=f"r{i}")
                                for i, (t, p) in enumerate(resources)])


def test_a_worker_version_pins_its_compatibility_date():
    assert violations(rules.compatibility_date,
                      resource_args(rules.WORKER_VERSION, version(), name="ai")) == []
    assert violations(rules.compatibility_date,
                      resource_args(rules.WORKER_VERSION, version(date=None), name="ai")) == [
        "Worker 'ai' sets no compatibilityDate: the runtime's behaviour would change under it"]


@pytest.mark.parametrize("name, text", [
    ("GATEWAY_URL", "https://api.staging.example.com"),
    ("GATEWAY_TIMEOUT_MS", "3000"),
    ("LOG_LEVEL", "debug"),
    ("GREETING", "a plain sentence anyone may read"),
])
def test_ordinary_settings_may_be_plain_text(name, text):
    binding = {"name": name, "type": "plain_text", "text": text}
    assert violations(rules.no_secret_in_plain_text,
                      stack((rules.WORKER_VERSION, version(binding)))) == []


@pytest.mark.parametrize("name, text, reason", [
    ("API_TOKEN", "anything", "its name 'API_TOKEN' says it holds a secret"),
    ("DB_PASSWORD", "hunter2", "its name 'DB_PASSWORD' says it holds a secret"),
    ("UPSTREAM", "sk-live-0123456789", "its value starts like a credential"),
    ("UPSTREAM", "AKIAIOSFODNN7EXAMPLE", "its value starts like a credential"),
    ("UPSTREAM", "q8Xz3LmP0vR7tY2wK9sD4fG6hJ1nB5cV", "its value looks like a random token"),
])
def test_a_secret_looking_plain_text_binding_is_stopped(name, text, reason):
    binding = {"name": name, "type": "plain_text", "text": text}
    assert violations(rules.no_secret_in_plain_text,
                      stack((rules.WORKER_VERSION, version(binding)))) == [
        f"plain-text binding '{name}' of 'r0' looks like a secret ({reason}): bind it as "
        "secret_text"]


def test_a_secret_text_binding_is_where_a_secret_belongs():
    binding = {"name": "API_TOKEN", "type": "secret_text", "text": "sk-live-0123456789"}
    assert violations(rules.no_secret_in_plain_text,
                      stack((rules.WORKER_VERSION, version(binding)))) == []


def route(pattern: str, zone_id: str = ZONE_ID) -> tuple[str, dict]:
    return rules.ROUTE, {"pattern": pattern, "zoneId": zone_id, "script": "ai-worker-staging"}


@pytest.mark.parametrize("pattern", ["ai.staging.example.com/*", "*.example.com/ai/*",
                                     "example.com/*"])
def test_routes_inside_the_environment_zone_pass(pattern):
    assert violations(rules.routes_in_environment_zone, stack(ENVIRONMENT, route(pattern))) == []


def test_a_route_outside_the_environment_zone_is_stopped():
    assert violations(rules.routes_in_environment_zone,
                      stack(ENVIRONMENT, route("ai.example.org/*"))) == [
        "'r1' serves 'ai.example.org', outside the example.com zone of this environment"]
    # A look-alike suffix is not the zone.
    assert len(violations(rules.routes_in_environment_zone,
                          stack(ENVIRONMENT, route("ai.notexample.com/*")))) == 1


def test_a_route_placed_in_another_zone_id_is_stopped():
    assert violations(rules.routes_in_environment_zone,
                      stack(ENVIRONMENT, route("ai.example.com/*", zone_id="f" * 32))) == [
        f"'r1' is placed in zone id {'f' * 32}, not this environment's {ZONE_ID}"]


def test_custom_domains_live_in_the_zone_too():
    domain = (rules.CUSTOM_DOMAIN, {"hostname": "ai.example.net", "zoneId": ZONE_ID})
    assert violations(rules.routes_in_environment_zone, stack(ENVIRONMENT, domain)) == [
        "'r1' serves 'ai.example.net', outside the example.com zone of this environment"]


def test_routes_without_an_environment_zone_cannot_be_judged_and_are_stopped():
    assert violations(rules.routes_in_environment_zone, stack(route("ai.example.com/*"))) == [
        "'r0': the stack passes on no environment zone (its `environment_cloudflare_zone_name` "
        "and `environment_cloudflare_zone_id` outputs)"]


def test_routes_are_judged_by_the_zone_their_stack_passes_on_as_outputs():
    """The engine shows a stack validation the stack's outputs, not its StackReference."""
    outputs = ("pulumi:pulumi:Stack", {"environment_cloudflare_zone_name": "example.com",
                                       "environment_cloudflare_zone_id": ZONE_ID})
    assert violations(rules.routes_in_environment_zone, stack(outputs, route("ai.example.com/*"))) == []
    assert violations(rules.routes_in_environment_zone, stack(outputs, route("ai.example.org/*"))) == [
        "'r1' serves 'ai.example.org', outside the example.com zone of this environment"]
