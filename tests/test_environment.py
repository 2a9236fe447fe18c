"""Environment graphs: restricted namespace, default deny both ways, DNS egress, quotas, outputs."""
from __future__ import annotations

import pytest

from infra.render import normalize
from infra.stacks import PROJECT_ROOT

from tests.conftest import stacks_of_kind

ENV_STACKS = stacks_of_kind("environment")
POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


def objects(run, type_):
    return {r.inputs["metadata"]["name"]: normalize(r.inputs) for r in run.of_type(type_)}


def test_both_environments_have_a_stack():
    assert ENV_STACKS == ["production", "staging"]


@pytest.mark.parametrize("stack", ENV_STACKS)
def test_namespace_enforces_restricted_pod_security_at_the_pinned_version(repo_renderer, stack):
    (namespace,) = objects(repo_renderer.run(stack), "kubernetes:core/v1:Namespace").values()
    version = "v" + (PROJECT_ROOT / "tools" / "kubernetes-version").read_text().strip()
    labels = namespace["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
        assert labels[f"pod-security.kubernetes.io/{mode}-version"] == version


@pytest.mark.parametrize("stack", ENV_STACKS)
def test_default_deny_covers_every_pod_in_both_directions(repo_renderer, stack):
    deny = objects(repo_renderer.run(stack), POLICY)["default-deny"]["spec"]
    assert deny["podSelector"] == {}
    assert deny["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in deny and "egress" not in deny


@pytest.mark.parametrize("stack", ENV_STACKS)
def test_dns_is_the_only_egress_every_pod_gets(repo_renderer, stack):
    dns = objects(repo_renderer.run(stack), POLICY)["allow-dns-egress"]["spec"]
    assert dns["policyTypes"] == ["Egress"]
    (rule,) = dns["egress"]
    assert sorted(p["protocol"] for p in rule["ports"]) == ["TCP", "UDP"]
    assert {p["port"] for p in rule["ports"]} == {53}
    (peer,) = rule["to"]
    assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name":
                                                        "kube-system"}
    assert peer["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}


@pytest.mark.parametrize("stack", ENV_STACKS)
def test_quota_and_container_defaults_bound_the_namespace(repo_renderer, stack):
    run = repo_renderer.run(stack)
    (quota,) = objects(run, "kubernetes:core/v1:ResourceQuota").values()
    assert set(quota["spec"]["hard"]) == {"requests.cpu", "requests.memory", "limits.cpu",
                                          "limits.memory", "pods"}
    (limits,) = objects(run, "kubernetes:core/v1:LimitRange").values()
    (item,) = limits["spec"]["limits"]
    assert item["type"] == "Container" and item["default"] and item["defaultRequest"]


@pytest.mark.parametrize("stack", ENV_STACKS)
def test_outputs_carry_the_settings_component_stacks_need(repo_renderer, stack):
    outputs = repo_renderer.run(stack).outputs
    assert outputs["environment"] == stack
    assert outputs["namespace"] == f"platform-{stack}"
    assert outputs["kubernetes_context"]
    assert len(outputs["cloudflare_account_id"]) == 32
    assert len(outputs["cloudflare_zone_id"]) == 32
    assert outputs["base_domain"].endswith(outputs["cloudflare_zone_name"])


@pytest.mark.parametrize("stack", ENV_STACKS)
def test_the_kubernetes_provider_is_pinned_to_the_environments_context(repo_renderer, stack):
    run = repo_renderer.run(stack)
    (provider,) = run.of_type("pulumi:providers:kubernetes")
    assert provider.inputs["context"] == run.outputs["kubernetes_context"]


@pytest.mark.parametrize("stack", ENV_STACKS)
def test_every_environment_object_is_protected_from_destroy(repo_renderer, stack):
    run = repo_renderer.run(stack)
    owned = [r for r in run.resources if not r.type.startswith("pulumi:")]
    assert owned and all(r.protect for r in owned)


def test_protection_can_be_switched_off_for_a_disposable_environment(run_stack_with):
    run = run_stack_with("staging", deletion_protection=False)
    assert not any(r.protect for r in run.resources)
