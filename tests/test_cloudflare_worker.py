"""CloudflareWorker graphs: bundle, bindings, compatibility, rollout, routes, for every Worker stack
(the repository's and the minimal fixture's), each held to what its own config implies."""
from __future__ import annotations

import hashlib
import tomllib

import pytest

from components.cloudflare_worker import CloudflareWorker
from infra.config.worker import Rollout
from infra.secrets import SECRET_PLACEHOLDER, is_secret_wrapper
from offline.mock_engine import redact, unwrap_secrets

from tests.conftest import FIXTURE_PROJECT, Stack, single, stacks_of

WORKER_STACKS = stacks_of("cloudflare-worker")
worker_stacks = pytest.mark.parametrize("stack", WORKER_STACKS, ids=str)
VERSION = "cloudflare:index/workerVersion:WorkerVersion"
DEPLOYMENT = "cloudflare:index/workersDeployment:WorkersDeployment"
ROUTE = "cloudflare:index/workersRoute:WorkersRoute"
UUID_A = "8f4c2a1e-3b5d-4e6f-9a7b-1c2d3e4f5a6b"


def bindings(run):
    return {b["name"]: b for b in unwrap_secrets(single(run, VERSION).inputs["bindings"])}


def test_there_are_worker_stacks_to_check():
    assert {"ai-worker.staging", "ai-worker.production"} <= {s.name for s in WORKER_STACKS}
    assert Stack("notify.staging", FIXTURE_PROJECT) in WORKER_STACKS


@worker_stacks
def test_version_uploads_exactly_the_built_bundle(renderers, stack):
    run = renderers.run(stack)
    version = single(run, VERSION).inputs
    path = run.outputs["bundle"]
    assert path == stack.configured("bundle")
    digest = hashlib.sha256((stack.root / path).read_bytes()).hexdigest()
    (module,) = version["modules"]
    assert module["contentFile"] == path and module["contentSha256"] == digest
    assert module["contentType"] == "application/javascript+module"
    assert version["mainModule"] == module["name"]
    assert run.outputs["bundle_sha256"] == digest


@worker_stacks
def test_bindings_are_exactly_the_configured_vars_secrets_and_ai(renderers, stack):
    run = renderers.run(stack)
    expected = {name: {"name": name, "type": "plain_text", "text": text}
                for name, text in stack.configured("vars", {}).items()}
    base_domain = renderers.run(stack.environment).outputs["base_domain"]
    expected |= {name: {"name": name, "type": "plain_text",
                        "text": f"https://{subdomain}.{base_domain}"}
                 for name, subdomain in stack.configured("url_vars", {}).items()}
    # Offline a secret is the stack file's encrypted value, as the placeholder.
    expected |= {name: {"name": name, "type": "secret_text", "text": SECRET_PLACEHOLDER}
                 for name in stack.configured("secrets", {})}
    if stack.configured("ai_binding"):
        expected[stack.configured("ai_binding")] = {"name": stack.configured("ai_binding"),
                                                     "type": "ai"}
    assert bindings(run) == expected
    # One secret binding makes the whole property secret in state and in previews.
    assert is_secret_wrapper(single(run, VERSION).inputs["bindings"]) == bool(
        stack.configured("secrets"))


@worker_stacks
def test_compatibility_settings_come_from_wrangler_toml_or_else_the_stack(renderers, stack):
    version = single(renderers.run(stack), VERSION).inputs
    wrangler = wrangler_settings(stack)
    if wrangler is not None:  # the one place they are set: the stack file repeats nothing
        assert version["compatibilityDate"] == wrangler["compatibility_date"]
        assert version.get("compatibilityFlags", []) == wrangler.get("compatibility_flags", [])
        assert stack.configured("compatibility_date") is None
        assert stack.configured("compatibility_flags") is None
    else:
        assert version["compatibilityDate"] == stack.configured("compatibility_date")
        assert version.get("compatibilityFlags", []) == stack.configured("compatibility_flags", [])


def wrangler_settings(stack) -> dict | None:
    """The wrangler.toml nearest above the stack's bundle, read as wrangler reads it."""
    bundle = stack.root / stack.configured("bundle")
    for folder in bundle.parents:
        if (folder / "wrangler.toml").is_file():
            return tomllib.loads((folder / "wrangler.toml").read_text())
        if folder == stack.root:
            return None
    return None


@worker_stacks
def test_observability_is_on(renderers, stack):
    worker = single(renderers.run(stack), "cloudflare:index/worker:Worker").inputs
    assert worker["observability"]["enabled"] is True
    assert worker["observability"]["logs"]["enabled"] is True


@worker_stacks
def test_the_new_version_serves_the_configured_share_of_traffic(renderers, stack):
    run = renderers.run(stack)
    deployment = redact(single(run, DEPLOYMENT).inputs)
    rollout = Rollout(**stack.configured("rollout", {}))  # unset: the new version, 100 %
    assert deployment["strategy"] == "percentage"
    if rollout.rollback_to:
        assert deployment["versions"] == [{"percentage": 100, "versionId": rollout.rollback_to}]
    elif rollout.percentage == 100:
        assert deployment["versions"] == [{"percentage": 100, "versionId": "[unknown]"}]
    else:
        assert deployment["versions"] == [
            {"percentage": rollout.percentage, "versionId": "[unknown]"},
            {"percentage": 100 - rollout.percentage, "versionId": rollout.stable_version_id}]
    assert deployment["scriptName"] == run.outputs["script_name"] == f"{stack.component}-{stack.env}"


@worker_stacks
def test_gradual_rollout_splits_traffic_with_the_live_version(run_stack_with, stack):
    run = run_stack_with(stack, rollout={"percentage": 10, "stable_version_id": UUID_A})
    versions = redact(single(run, DEPLOYMENT).inputs)["versions"]
    assert versions == [{"percentage": 10, "versionId": "[unknown]"},
                        {"percentage": 90, "versionId": UUID_A}]


@worker_stacks
def test_rollback_points_the_deployment_at_an_earlier_version(run_stack_with, stack):
    run = run_stack_with(stack, rollout={"rollback_to": UUID_A})
    assert single(run, DEPLOYMENT).inputs["versions"] == [{"percentage": 100,
                                                           "versionId": UUID_A}]
    assert run.outputs["traffic"] == {"rollback_to": UUID_A}


@worker_stacks
def test_routes_live_on_the_environment_zone(renderers, stack):
    run = renderers.run(stack)
    zone_id = renderers.run(stack.environment).outputs["cloudflare_zone_id"]
    routes = run.of_type(ROUTE)
    assert [r.inputs["pattern"] for r in routes] == run.outputs["routes"]
    assert all(r.inputs["zoneId"] == zone_id for r in routes)
    assert run.outputs["urls"] == [f"https://{p.split('/')[0]}" for p in run.outputs["routes"]]


def test_kv_service_bindings_custom_domains_and_crons(run_stack_with):
    run = run_stack_with("ai-worker.staging", kv_namespaces=["CACHE"],
                         services={"AUTH": "auth-worker-staging"},
                         custom_domains=["ai-direct.staging.example.com"],
                         crons=["*/15 * * * *"])
    found = bindings(run)
    kv = single(run, "cloudflare:index/workersKvNamespace:WorkersKvNamespace")
    assert kv.inputs["title"] == "ai-worker-staging-cache"
    assert found["CACHE"]["type"] == "kv_namespace"
    assert found["AUTH"] == {"name": "AUTH", "type": "service", "service": "auth-worker-staging"}
    domain = single(run, "cloudflare:index/workersCustomDomain:WorkersCustomDomain").inputs
    assert domain["hostname"] == "ai-direct.staging.example.com"
    cron = single(run, "cloudflare:index/workersCronTrigger:WorkersCronTrigger").inputs
    assert cron["schedules"] == [{"cron": "*/15 * * * *"}]
    assert "https://ai-direct.staging.example.com" in run.outputs["urls"]


@worker_stacks
def test_the_worker_makes_what_sits_under_it_and_its_docstring_lists_it(renderers, stack):
    run = renderers.run(stack)
    (component,) = run.of_type("platform:cloudflare_worker:CloudflareWorker")
    under = {r.type.rsplit(":", 1)[-1] for r in run.resources if r.parent == component.urn}
    assert {"Worker", "WorkerVersion", "WorkersDeployment"} <= under
    assert [kind for kind in sorted(under) if kind not in CloudflareWorker.__doc__] == []
    top = {r.type for r in run.resources if r.parent.split("::")[2] == "pulumi:pulumi:Stack"}
    assert {t for t in top if not t.startswith("pulumi:providers:")} == {
        "platform:cloudflare_worker:CloudflareWorker", "pulumi:pulumi:StackReference"}
