"""Environment graphs: restricted namespace, default deny both ways, DNS egress, quotas, outputs,
for every environment stack (the repository's and the minimal fixture's)."""
from __future__ import annotations

import pytest

from infra.config.environment import DnsTarget, Quota
from infra.project import PROJECT_ROOT
from offline.render import normalize

from tests.conftest import FIXTURE_PROJECT, Stack, stacks_of

ENV_STACKS = stacks_of("environment")
env_stacks = pytest.mark.parametrize("stack", ENV_STACKS, ids=str)
POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


def objects(run, type_):
    return {r.inputs["metadata"]["name"]: normalize(r.inputs) for r in run.of_type(type_)}


def test_both_environments_have_a_stack():
    assert [s.name for s in ENV_STACKS if s.root == PROJECT_ROOT] == ["production", "staging"]
    assert Stack("staging", FIXTURE_PROJECT) in ENV_STACKS


@env_stacks
def test_namespace_enforces_restricted_pod_security_at_the_pinned_version(renderers, stack):
    (namespace,) = objects(renderers.run(stack), "kubernetes:core/v1:Namespace").values()
    version = "v" + (PROJECT_ROOT / "tools" / "kubernetes-version").read_text().strip()
    labels = namespace["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
        assert labels[f"pod-security.kubernetes.io/{mode}-version"] == version


@env_stacks
def test_default_deny_covers_every_pod_in_both_directions(renderers, stack):
    deny = objects(renderers.run(stack), POLICY)["default-deny"]["spec"]
    assert deny["podSelector"] == {}
    assert deny["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in deny and "egress" not in deny


@env_stacks
def test_dns_is_the_only_egress_every_pod_gets(renderers, stack):
    dns = objects(renderers.run(stack), POLICY)["allow-dns-egress"]["spec"]
    assert dns["policyTypes"] == ["Egress"]
    (rule,) = dns["egress"]
    assert sorted(p["protocol"] for p in rule["ports"]) == ["TCP", "UDP"]
    assert {p["port"] for p in rule["ports"]} == {53}
    (peer,) = rule["to"]
    dns = DnsTarget(**stack.configured("dns", {}))  # unset: the cluster's kube-dns
    assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name":
                                                        dns.namespace}
    assert peer["podSelector"]["matchLabels"] == dns.pod_labels


@env_stacks
def test_quota_and_container_defaults_bound_the_namespace(renderers, stack):
    run = renderers.run(stack)
    (quota,) = objects(run, "kubernetes:core/v1:ResourceQuota").values()
    configured = Quota(**stack.configured("quota", {}))  # unset: the defaults
    assert quota["spec"]["hard"] == {
        "requests.cpu": configured.requests_cpu, "requests.memory": configured.requests_memory,
        "limits.cpu": configured.limits_cpu, "limits.memory": configured.limits_memory,
        "pods": str(configured.pods)}
    (limits,) = objects(run, "kubernetes:core/v1:LimitRange").values()
    (item,) = limits["spec"]["limits"]
    assert item["type"] == "Container" and item["default"] and item["defaultRequest"]


@env_stacks
def test_outputs_carry_the_settings_component_stacks_need(renderers, stack):
    outputs = renderers.run(stack).outputs
    cloudflare = stack.configured("cloudflare")
    assert outputs["environment"] == stack.name
    assert outputs["namespace"] == stack.configured("namespace")
    assert outputs["kubernetes_context"] == stack.configured("kubernetes")["context"]
    assert outputs["cloudflare_account_id"] == cloudflare["account_id"]
    assert outputs["cloudflare_zone_id"] == cloudflare["zone_id"]
    assert outputs["cloudflare_zone_name"] == cloudflare["zone_name"]
    assert outputs["base_domain"] == stack.configured("base_domain")


@env_stacks
def test_the_kubernetes_provider_is_pinned_to_the_environments_context(renderers, stack):
    run = renderers.run(stack)
    (provider,) = run.of_type("pulumi:providers:kubernetes")
    assert provider.inputs["context"] == run.outputs["kubernetes_context"]


@env_stacks
def test_every_environment_object_is_protected_from_destroy(renderers, stack):
    run = renderers.run(stack)
    owned = [r for r in run.resources if not r.type.startswith("pulumi:")]
    assert owned and all(r.protect for r in owned)


def test_protection_can_be_switched_off_for_a_disposable_environment(run_stack_with):
    run = run_stack_with("staging", deletion_protection=False)
    assert not any(r.protect for r in run.resources)
