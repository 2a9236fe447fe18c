"""CloudflareWorker graphs: bundle, bindings, compatibility, rollout, routes, for every Worker stack."""
from __future__ import annotations

import hashlib

import pytest

from infra.mock_engine import is_secret_value, redact, unwrap_secrets
from infra.stack_files import read_stack_config
from infra.stacks import PROJECT_ROOT

from tests.conftest import single, stacks_of_kind

WORKER_STACKS = stacks_of_kind("cloudflare-worker")
VERSION = "cloudflare:index/workerVersion:WorkerVersion"
DEPLOYMENT = "cloudflare:index/workersDeployment:WorkersDeployment"
ROUTE = "cloudflare:index/workersRoute:WorkersRoute"
UUID_A = "8f4c2a1e-3b5d-4e6f-9a7b-1c2d3e4f5a6b"


def bindings(run):
    return {b["name"]: b for b in unwrap_secrets(single(run, VERSION).inputs["bindings"])}


def test_there_are_worker_stacks_to_check():
    assert {"ai-worker.staging", "ai-worker.production"} <= set(WORKER_STACKS)


@pytest.mark.parametrize("stack", WORKER_STACKS)
def test_version_uploads_exactly_the_built_bundle(repo_renderer, stack):
    run = repo_renderer.run(stack)
    version = single(run, VERSION).inputs
    path = run.outputs["bundle"]
    digest = hashlib.sha256((PROJECT_ROOT / path).read_bytes()).hexdigest()
    (module,) = version["modules"]
    assert module["contentFile"] == path and module["contentSha256"] == digest
    assert module["contentType"] == "application/javascript+module"
    assert version["mainModule"] == module["name"]
    assert run.outputs["bundle_sha256"] == digest


@pytest.mark.parametrize("stack", WORKER_STACKS)
def test_bindings_carry_vars_secrets_and_ai(repo_renderer, stack):
    run = repo_renderer.run(stack)
    found = bindings(run)
    assert found["GATEWAY_URL"]["type"] == "plain_text"
    assert found["GATEWAY_URL"]["text"].startswith("https://")
    assert found["API_TOKEN"] == {"name": "API_TOKEN", "type": "secret_text", "text": "[secret]"}
    # One secret binding makes the whole property secret in state and in previews.
    assert is_secret_value(single(run, VERSION).inputs["bindings"])
    assert found["AI"] == {"name": "AI", "type": "ai"}


@pytest.mark.parametrize("stack", WORKER_STACKS)
def test_compatibility_settings_come_from_the_stack(repo_renderer, stack):
    version = single(repo_renderer.run(stack), VERSION).inputs
    config = read_stack_config(stack).config
    assert version["compatibilityDate"] == config["platform:compatibility_date"]
    assert version.get("compatibilityFlags", []) == []


@pytest.mark.parametrize("stack", WORKER_STACKS)
def test_observability_is_on(repo_renderer, stack):
    worker = single(repo_renderer.run(stack), "cloudflare:index/worker:Worker").inputs
    assert worker["observability"]["enabled"] is True
    assert worker["observability"]["logs"]["enabled"] is True


@pytest.mark.parametrize("stack", WORKER_STACKS)
def test_new_version_serves_all_traffic_by_default(repo_renderer, stack):
    run = repo_renderer.run(stack)
    deployment = redact(single(run, DEPLOYMENT).inputs)
    assert deployment["strategy"] == "percentage"
    assert deployment["versions"] == [{"percentage": 100, "versionId": "[unknown]"}]
    assert deployment["scriptName"] == run.outputs["script_name"] == f"ai-worker-{stack.split('.')[1]}"


@pytest.mark.parametrize("stack", WORKER_STACKS)
def test_gradual_rollout_splits_traffic_with_the_live_version(run_stack_with, stack):
    run = run_stack_with(stack, rollout={"percentage": 10, "stable_version_id": UUID_A})
    versions = redact(single(run, DEPLOYMENT).inputs)["versions"]
    assert versions == [{"percentage": 10, "versionId": "[unknown]"},
                        {"percentage": 90, "versionId": UUID_A}]


@pytest.mark.parametrize("stack", WORKER_STACKS)
def test_rollback_points_the_deployment_at_an_earlier_version(run_stack_with, stack):
    run = run_stack_with(stack, rollout={"rollback_to": UUID_A})
    assert single(run, DEPLOYMENT).inputs["versions"] == [{"percentage": 100,
                                                           "versionId": UUID_A}]
    assert run.outputs["traffic"] == {"rollback_to": UUID_A}


@pytest.mark.parametrize("stack", WORKER_STACKS)
def test_routes_live_on_the_environment_zone(repo_renderer, stack):
    run = repo_renderer.run(stack)
    zone_id = repo_renderer.run(stack.split(".")[1]).outputs["cloudflare_zone_id"]
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
