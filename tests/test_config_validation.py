"""Bad config: one message naming the stack, each bad key and why; nothing is registered."""
from __future__ import annotations

import datetime as dt
import re

import pytest

from infra.errors import ConfigError
from infra.project import PROJECT_ROOT

GATEWAY = "api-gateway.staging"
WORKER = "ai-worker.staging"
ENV = "staging"
DIGEST = "registry.example.com/platform/api-gateway@sha256:" + "ab" * 32
SECRET = {"secure": "v1:bm9uY2U=:Y2lwaGVy"}
TOMORROW = (dt.date.today() + dt.timedelta(days=1)).isoformat()
UUID = "8f4c2a1e-3b5d-4e6f-9a7b-1c2d3e4f5a6b"


def assert_rejected(failing_run, stack, overrides, key, reason, registered_ok=()):
    error, registered = failing_run(stack, **overrides)
    assert isinstance(error, ConfigError), str(error)
    assert str(error).startswith(f"stack '{stack}': invalid config")
    assert any(k == f"platform:{key}" and reason in r for k, r in error.problems), str(error)
    assert [r.type for r in registered] == list(registered_ok), "resources were registered"


ENVIRONMENT_RULES = {
    "namespace_must_be_a_dns_label": ({"namespace": "Platform_Staging"}, "namespace",
                                      "is not a DNS label"),
    "context_is_required": ({"kubernetes": {}}, "kubernetes.context", "required key is missing"),
    "account_id_is_32_hex_digits": (
        {"cloudflare": {"account_id": "xyz", "zone_id": "a" * 32, "zone_name": "example.com"}},
        "cloudflare.account_id", "is not a Cloudflare id"),
    "zone_name_is_a_hostname": (
        {"cloudflare": {"account_id": "a" * 32, "zone_id": "a" * 32, "zone_name": "Example"}},
        "cloudflare.zone_name", "is not a lower-case hostname"),
    "base_domain_must_be_inside_the_zone": ({"base_domain": "staging.example.org"},
                                            "base_domain", "is outside the zone 'example.com'"),
    "quota_requests_must_not_exceed_limits": (
        {"quota": {"requests_cpu": "16", "limits_cpu": "8"}}, "quota.requests_cpu",
        "16 exceeds limits_cpu 8"),
    "quota_values_must_be_quantities": ({"quota": {"requests_memory": "lots"}},
                                        "quota.requests_memory", "is not a Kubernetes quantity"),
    "unknown_keys_are_typos": ({"namesapce": "x"}, "namesapce", "unknown key"),
    "components_keys_do_not_belong_here": ({"kind": "go-service"}, "kind", "unknown key"),
}


@pytest.mark.parametrize("overrides, key, reason", ENVIRONMENT_RULES.values(),
                         ids=ENVIRONMENT_RULES.keys())
def test_environment_config_rule(failing_run, overrides, key, reason):
    assert_rejected(failing_run, ENV, overrides, key, reason)


GATEWAY_RULES = {
    "kind_is_required": ({"kind": None}, "kind", "missing (one of: go-service, cloudflare-worker)"),
    "kind_must_be_known": ({"kind": "lambda"}, "kind", "unknown kind 'lambda'"),
    "kind_must_be_a_name": ({"kind": ["go-service"]}, "kind", "unknown kind '['go-service']'"),
    "image_must_be_pinned_by_digest": ({"image": {"ref": "registry.example.com/gw:latest"}},
                                       "image.ref", "is not an image pinned by digest"),
    "image_is_ref_or_build_not_both": (
        {"image": {"ref": DIGEST, "build": {"context": "apps/api-gateway",
                                            "repository": "registry.example.com/gw"}}},
        "image.ref", "set exactly one of image.ref or image.build"),
    "image_needs_ref_or_build": ({"image": {}}, "image.ref",
                                 "set exactly one of image.ref or image.build"),
    "image_build_needs_a_dockerfile": (
        {"image": {"build": {"context": "apps/api-gateway", "dockerfile": "Nope",
                             "repository": "registry.example.com/gw"}}},
        "image.build.dockerfile", "no file apps/api-gateway/Nope"),
    "build_context_stays_in_the_repository": (
        {"image": {"build": {"context": "../elsewhere", "repository": "registry.example.com/gw"}}},
        "image.build.context", "must be a path inside the repository"),
    "port_must_be_unprivileged": ({"port": 80}, "port", "greater than or equal to 1024"),
    "port_must_be_a_port": ({"port": 70000}, "port", "less than or equal to 65535"),
    "max_replicas_not_below_min": ({"scaling": {"min_replicas": 3, "max_replicas": 2}},
                                   "scaling.max_replicas", "is below min_replicas 3"),
    "replicas_not_below_the_pdb_minimum": (
        {"scaling": {"min_replicas": 2, "max_replicas": 4}, "min_available": 2},
        "min_available", "must be below scaling.min_replicas 2"),
    "requests_within_limits": (
        {"resources": {"requests": {"cpu": "2", "memory": "64Mi"},
                       "limits": {"cpu": "1", "memory": "128Mi"}}},
        "resources.requests.cpu", "2 exceeds limits.cpu 1"),
    "probe_paths_are_paths": ({"probes": {"readiness_path": "readyz"}}, "probes.readiness_path",
                              "is not an absolute URL path"),
    "drain_is_bounded": ({"shutdown": {"drain_seconds": 600}}, "shutdown.drain_seconds",
                         "less than or equal to 120"),
    "platform_env_is_reserved": ({"env": {"PORT": "9090"}}, "env.PORT",
                                 "is set by the platform"),
    "env_names_are_env_names": ({"env": {"log-level": "x"}}, "env.log-level",
                                "is not an environment variable name"),
    "env_and_secret_env_do_not_overlap": (
        {"env": {"WORKER_API_TOKEN": "x"}}, "env.WORKER_API_TOKEN", "also set in secret_env"),
    "a_secret_file_path_is_the_platform_s": (
        {"env": {"WORKER_API_TOKEN_FILE": "/tmp/token"}}, "env.WORKER_API_TOKEN_FILE",
        "is set by the platform (the path of secret_env.WORKER_API_TOKEN's file)"),
    "mounted_files_must_exist": (
        {"files": {"mount_path": "/etc/x", "sources": {"catalog.json": "apps/nope.json"}}},
        "files.sources.catalog.json", "no file apps/nope.json in the repository"),
    "callers_are_namespaces": ({"callers": [{"namespace": "Ingress"}]}, "callers[0].namespace",
                               "is not a DNS label"),
    "peers_are_namespace_or_cidr": (
        {"peers": [{"namespace": "db", "cidr": "10.0.0.0/8", "ports": [5432]}]},
        "peers[0].namespace", "set exactly one of namespace or cidr"),
    "peer_cidrs_are_cidrs": ({"peers": [{"cidr": "10.0.0.0/33", "ports": [443]}]},
                             "peers[0].cidr", "is not a CIDR block"),
    "peers_name_their_ports": ({"peers": [{"cidr": "0.0.0.0/0", "ports": []}]},
                               "peers[0].ports", "at least 1 item"),
    "service_types_are_kubernetes_s": ({"service_type": "ExternalName"}, "service_type",
                                       "Input should be 'ClusterIP', 'NodePort' or "
                                       "'LoadBalancer'"),
    "an_outside_service_names_who_may_reach_it": (
        {"service_type": "LoadBalancer"}, "service_source_ranges",
        "must name the address blocks that may reach a LoadBalancer Service"),
    "source_ranges_are_cidrs": (
        {"service_type": "NodePort", "service_source_ranges": ["203.0.113.7/24"]},
        "service_source_ranges", "'203.0.113.7/24' is not a CIDR block"),
    "source_ranges_need_an_outside_service": (
        {"service_source_ranges": ["203.0.113.0/24"]}, "service_source_ranges",
        "applies only when service_type is NodePort or LoadBalancer"),
    "secrets_must_be_pulumi_secrets": (
        {"secret_env": {"WORKER_API_TOKEN": "plain-text"}}, "secret_env.WORKER_API_TOKEN",
        "is a secret in plain text: set it with `pulumi config set --secret --path "
        "'platform:secret_env.WORKER_API_TOKEN' <value>`"),
    "secrets_must_not_be_missing": ({"secret_env": {"WORKER_API_TOKEN": {"secure": ""}}},
                                    "secret_env.WORKER_API_TOKEN", "secret is missing"),
    "plain_keys_must_not_hold_secrets": ({"env": {"LOG_LEVEL": SECRET}}, "env",
                                         "is a secret but not a secret setting"),
    "unknown_keys_are_typos": ({"replicas": 3}, "replicas", "unknown key"),
    "an_unknown_key_names_the_closest_valid_one": (
        {"replicass": 3}, "replicass", "unknown key (did you mean `platform:scaling.min_replicas`?)"),
    "a_nested_unknown_key_names_the_closest_valid_one": (
        {"scaling": {"max_replica": 3}}, "scaling.max_replica",
        "unknown key (did you mean `platform:scaling.max_replicas`?)"),
    "a_port_below_1024_says_why": (
        {"port": 80}, "port", "greater than or equal to 1024: the pod runs as non-root, and a "
                              "non-root process cannot listen on a port below 1024"),
}


@pytest.mark.parametrize("overrides, key, reason", GATEWAY_RULES.values(),
                         ids=GATEWAY_RULES.keys())
def test_go_service_config_rule(failing_run, overrides, key, reason):
    assert_rejected(failing_run, GATEWAY, overrides, key, reason)


# A Worker whose bundle has no wrangler.toml above it (the minimal project's): its stack sets
# the compatibility settings itself.
BUNDLE_WITHOUT_WRANGLER = "tests/fixtures/worker-without-wrangler/worker.js"
WORKER_RULES = {
    "bundle_must_be_built": ({"bundle": "workers/ai-worker/dist/missing.js"}, "bundle",
                             "no file workers/ai-worker/dist/missing.js: build the Worker first"),
    "compatibility_date_not_in_the_future": (
        {"bundle": BUNDLE_WITHOUT_WRANGLER, "compatibility_date": TOMORROW},
        "compatibility_date", "is in the future"),
    "compatibility_date_is_a_date": (
        {"bundle": BUNDLE_WITHOUT_WRANGLER, "compatibility_date": "someday"},
        "compatibility_date", "valid date"),
    "a_worker_without_wrangler_toml_sets_its_date_in_the_stack": (
        {"bundle": BUNDLE_WITHOUT_WRANGLER}, "compatibility_date",
        "required: the Worker has no wrangler.toml above its bundle to read it from"),
    "the_compatibility_date_is_set_in_wrangler_toml_only": (
        {"compatibility_date": "2025-09-01"}, "compatibility_date",
        "is read from workers/ai-worker/wrangler.toml, the one place it is set: remove it from "
        "the stack file"),
    "the_compatibility_flags_are_set_in_wrangler_toml_only": (
        {"compatibility_flags": ["nodejs_compat"]}, "compatibility_flags",
        "is read from workers/ai-worker/wrangler.toml"),
    "routes_are_route_patterns": ({"routes": ["https://ai.staging.example.com/*"]}, "routes",
                                  "is not a route pattern"),
    "crons_have_five_fields": ({"crons": ["every minute"]}, "crons",
                               "is not a 5-field cron expression"),
    "binding_names_are_unique": ({"kv_namespaces": ["AI"]}, "ai_binding",
                                 "binding 'AI' is also declared in kv_namespaces"),
    "binding_names_are_identifiers": ({"vars": {"GATEWAY-URL": "x"}}, "vars",
                                      "is not a valid binding name"),
    "a_worker_must_be_reachable": ({"routes": []}, "routes", "the Worker would be unreachable"),
    "gradual_rollout_names_the_stable_version": ({"rollout": {"percentage": 10}},
                                                 "rollout.stable_version_id",
                                                 "required when percentage is below 100"),
    "rollback_serves_one_version": (
        {"rollout": {"percentage": 50, "stable_version_id": UUID, "rollback_to": UUID}},
        "rollout.rollback_to", "a rollback serves one version"),
    "version_ids_are_uuids": ({"rollout": {"rollback_to": "v41"}}, "rollout.rollback_to",
                              "is not a Worker version id"),
    "secrets_must_be_pulumi_secrets": ({"secrets": {"API_TOKEN": "plain-text"}},
                                       "secrets.API_TOKEN", "is a secret in plain text"),
    "the_api_token_is_required": ({"secrets": {}}, "secrets.API_TOKEN",
                                  "required (set it with pulumi config set --secret"),
    "the_api_token_is_required_beside_other_secrets": ({"secrets": {"OTHER": SECRET}},
                                                       "secrets.API_TOKEN", "required"),
    "sampling_is_a_ratio": ({"observability": {"head_sampling_rate": 2}},
                            "observability.head_sampling_rate", "less than or equal to 1"),
}


@pytest.mark.parametrize("overrides, key, reason", WORKER_RULES.values(),
                         ids=WORKER_RULES.keys())
def test_worker_config_rule(failing_run, overrides, key, reason):
    assert_rejected(failing_run, WORKER, overrides, key, reason)


@pytest.mark.parametrize("key, value, reason", [
    ("routes", ["ai.example.org/*"], "'ai.example.org' is outside the staging zone 'example.com'"),
    ("custom_domains", ["ai.example.net"], "'ai.example.net' is outside the staging zone"),
])
def test_worker_routes_must_be_inside_the_environment_zone(failing_run, key, value, reason):
    # The zone is the environment stack's: only its reference is read before the check.
    assert_rejected(failing_run, WORKER, {key: value}, f"{key}[0]", reason,
                    registered_ok=["pulumi:pulumi:StackReference"])


def test_every_bad_key_is_reported_at_once(failing_run):
    error, registered = failing_run(GATEWAY, port=80, image={"ref": "nope"},
                                    callers=[{"namespace": "Bad"}], typo=True)
    keys = [key for key, _ in error.problems]
    assert keys == sorted(["platform:port", "platform:image.ref",
                           "platform:callers[0].namespace", "platform:typo"])
    assert str(error).count("\n  - ") == 4
    assert registered == []


def test_the_message_is_one_readable_block_without_python_internals(failing_run):
    error, _ = failing_run(GATEWAY, port="eighty")
    message = str(error)
    assert message == ("stack 'api-gateway.staging': invalid config (1 problem):\n"
                       "  - platform:port: Input should be a valid integer, unable to parse "
                       "string as an integer")
    assert "Traceback" not in message and "pydantic" not in message


def readme_example_of_every_problem_at_once() -> str:
    """The error block the README shows under "reports every problem at once"."""
    readme = (PROJECT_ROOT / "README.md").read_text()
    blocks = re.findall(r"```\n(error: stack .*?)```", readme, flags=re.S)
    assert len(blocks) == 1, "the README shows one example of a config error"
    return blocks[0].rstrip("\n")


def test_the_readme_example_reports_both_of_its_problems(failing_run):
    # A port below 1024 (a field problem) together with min_available equal to min_replicas
    # (a cross-field problem): pydantic alone stops at the first and never runs the second.
    error, registered = failing_run(GATEWAY, port=80, min_available=3,
                                    scaling={"min_replicas": 3, "max_replicas": 4})
    assert f"error: {error}" == readme_example_of_every_problem_at_once()
    assert registered == []


CROSS_FIELD_WITH_FIELD_PROBLEMS = {
    "nested_cross_field_beside_a_top_level_field": (
        GATEWAY, {"port": 80, "scaling": {"min_replicas": 3, "max_replicas": 2}},
        {"platform:port", "platform:scaling.max_replicas"}),
    "cross_field_of_a_model_with_a_bad_field_of_its_own": (
        GATEWAY, {"scaling": {"min_replicas": 3, "max_replicas": 2,
                              "target_cpu_utilization": 5}},
        {"platform:scaling.target_cpu_utilization", "platform:scaling.max_replicas"}),
    "cross_field_inside_a_list_item_beside_a_bad_field": (
        GATEWAY, {"port": 80, "peers": [{"namespace": "db", "cidr": "10.0.0.0/8",
                                         "ports": [5432]}]},
        {"platform:port", "platform:peers[0].namespace"}),
    "environment_zone_rule_beside_a_bad_namespace": (
        ENV, {"namespace": "Bad_Name", "base_domain": "staging.example.org"},
        {"platform:namespace", "platform:base_domain"}),
    "worker_reachability_beside_a_bad_date": (
        WORKER, {"compatibility_date": "someday", "routes": []},
        {"platform:compatibility_date", "platform:routes"}),
}


@pytest.mark.parametrize("stack, overrides, keys", CROSS_FIELD_WITH_FIELD_PROBLEMS.values(),
                         ids=CROSS_FIELD_WITH_FIELD_PROBLEMS.keys())
def test_cross_field_problems_are_reported_with_field_problems(failing_run, stack, overrides,
                                                                keys):
    error, registered = failing_run(stack, **overrides)
    assert {key for key, _ in error.problems} == keys, str(error)
    assert registered == []


def test_a_cross_field_rule_that_reads_an_invalid_key_says_nothing(failing_run):
    # min_replicas is invalid, so whether min_available is below it cannot be judged: the
    # operator sees the one problem to fix, not a verdict against a value they did not write.
    error, _ = failing_run(GATEWAY, min_available=5,
                           scaling={"min_replicas": "many", "max_replicas": 4})
    assert [key for key, _ in error.problems] == ["platform:scaling.min_replicas"]
