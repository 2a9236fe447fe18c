"""The SDK internals the mock engine relies on (it runs the render and the tests, never
`pulumi up`): each one is checked here, so an SDK upgrade that changes one fails loudly and
names it instead of quietly changing what the render writes."""
from __future__ import annotations

import asyncio

from pulumi.runtime import rpc, settings
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

from infra.secrets import SECRET_SIGNATURE, SIGNATURE_KEY, is_secret_wrapper
from offline.mock_engine import UNKNOWN_PLACEHOLDER
from offline.render import Renderer

from tests.conftest import FIXTURE_PROJECT, single

# The wire protocol's marker of a secret value (sdk/proto: "special signature" keys).
PROTOCOL_SECRET_SIG = "4dabf18193072939515e22adb298388d"
PROTOCOL_SECRET_MARK = "1b47061264138c4ac30d75fd1eb44270"


def test_the_secret_marker_is_the_protocols():
    assert (rpc._special_sig_key, rpc._special_secret_sig) == (PROTOCOL_SECRET_SIG,
                                                                PROTOCOL_SECRET_MARK)
    assert (SIGNATURE_KEY, SECRET_SIGNATURE) == (PROTOCOL_SECRET_SIG, PROTOCOL_SECRET_MARK)


def test_a_secret_input_reaches_the_mocks_wrapped_in_that_marker(repo_renderer):
    secret = single(repo_renderer.run("api-gateway.staging"), "kubernetes:core/v1:Secret")
    assert is_secret_wrapper(secret.inputs["stringData"]), secret.inputs


def test_the_sdks_event_loop_helpers_still_run_a_coroutine_to_completion():
    loop = _ensure_event_loop()
    assert not loop.is_closed() and _ensure_event_loop() is loop
    assert _sync_await(asyncio.sleep(0, result="done")) == "done"


def test_a_value_only_the_cloud_knows_is_written_as_unknown(repo_renderer):
    assert rpc.UNKNOWN == "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
    assert repo_renderer.run("ai-worker.staging").outputs["version_id"] == UNKNOWN_PLACEHOLDER


def test_each_run_starts_from_a_root_stack_and_rpc_state_of_its_own():
    # The engine's root stack and pending RPCs live in settings.ROOT and settings.SETTINGS.
    assert hasattr(settings, "ROOT") and hasattr(settings.SETTINGS, "rpc_manager")
    assert hasattr(settings.SETTINGS, "outputs")
    renderer = Renderer()
    environment, service = renderer.run("staging"), renderer.run("api-gateway.staging")
    assert "cloudflare_zone_id" in environment.outputs
    assert "cloudflare_zone_id" not in service.outputs
    assert not service.of_type("kubernetes:core/v1:Namespace")
    stacks = [r.urn for r in service.resources if r.type == "pulumi:pulumi:Stack"]
    assert stacks == [], "the root stack is the engine's, not a resource of the graph"


def test_the_recording_monitor_knows_each_registrations_parent(repo_renderer):
    run = repo_renderer.run("api-gateway.staging")
    component = single(run, "platform:go_service:GoService")
    deployment = single(run, "kubernetes:apps/v1:Deployment")
    assert deployment.parent == component.urn
    assert deployment.urn.endswith("::api-gateway-deployment")
    assert component.parent.endswith("::platform-api-gateway.staging")


def test_the_program_runs_for_the_project_it_is_given_and_the_root_is_restored():
    # The CLI tells the program its project's folder (pulumi.get_root_directory()); the mock
    # engine sets the same setting, which set_mocks leaves alone, for each run only.
    before = settings.SETTINGS.root_directory
    run = Renderer(root=FIXTURE_PROJECT).run("notify.staging")
    assert run.outputs["bundle"] == "workers/notify/worker.js"  # a file only the fixture has
    assert settings.SETTINGS.root_directory == before
