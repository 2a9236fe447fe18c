"""The local cluster's pieces that need no control plane: the contexts its kubeconfig holds,
its TLS material, and the client facade's paths. (Starting it is `make e2e`'s.)"""
from __future__ import annotations

import json
import shutil

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from infra.project import PROJECT_ROOT
from tools.cluster import Cluster
from tools.cluster.contexts import environment_contexts
from tools.cluster.kube import path_for
from tools.cluster.pki import API_SERVER_NAMES, write_pki

from tests.conftest import FIXTURE_PROJECT


def contexts_in_files(root) -> list[str]:
    """The contexts written in the environment stack files, read as plain YAML."""
    return sorted(yaml.safe_load(p.read_text())["config"]["platform:kubernetes"]["context"]
                  for p in root.glob("Pulumi.*.yaml") if p.name.count(".") == 2)


def test_the_kubeconfig_contexts_are_the_ones_the_environment_stacks_name():
    assert environment_contexts() == contexts_in_files(PROJECT_ROOT)
    assert environment_contexts() == ["platform-production", "platform-staging"]
    assert environment_contexts(FIXTURE_PROJECT) == contexts_in_files(FIXTURE_PROJECT) == [
        "shop-staging"]


def test_a_new_environment_stack_adds_its_context(tmp_path):
    for path in PROJECT_ROOT.glob("Pulumi*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    staging = (tmp_path / "Pulumi.staging.yaml").read_text()
    (tmp_path / "Pulumi.staging.yaml").write_text(
        staging.replace("context: platform-staging", "context: team-cluster-staging"))
    assert environment_contexts(tmp_path) == ["platform-production", "team-cluster-staging"]


def test_cluster_up_writes_every_environment_context_into_its_kubeconfig(tmp_path):
    cluster = Cluster(directory=tmp_path)  # what `python -m tools.cluster up` makes
    assert cluster.contexts == environment_contexts()
    cluster.ports = {"apiserver": 6443}
    cluster._write_kubeconfig()
    kubeconfig = json.loads(cluster.kubeconfig.read_text())
    names = [c["name"] for c in kubeconfig["contexts"]]
    assert names == ["local", *environment_contexts()]
    assert {c["context"]["cluster"] for c in kubeconfig["contexts"]} == {"local"}


def load_cert(path):
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_the_pki_is_a_ca_a_serving_and_an_admin_certificate_and_a_signing_key(tmp_path):
    write_pki(tmp_path)
    ca = load_cert(tmp_path / "ca.crt")
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    ca.verify_directly_issued_by(ca)

    serving = load_cert(tmp_path / "apiserver.crt")
    serving.verify_directly_issued_by(ca)
    names = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(ip) for ip in names.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "10.96.0.1"}
    assert set(names.get_values_for_type(x509.DNSName)) == set(API_SERVER_NAMES)
    assert serving.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == \
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])

    admin = load_cert(tmp_path / "admin.crt")
    admin.verify_directly_issued_by(ca)
    assert admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:masters"
    assert admin.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == \
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])

    for name, cert in (("ca", ca), ("apiserver", serving), ("admin", admin)):
        key = serialization.load_pem_private_key((tmp_path / f"{name}.key").read_bytes(), None)
        assert key.public_key() == cert.public_key(), name
        assert (tmp_path / f"{name}.key").stat().st_mode & 0o077 == 0, name
    signing = serialization.load_pem_private_key((tmp_path / "sa.key").read_bytes(), None)
    assert serialization.load_pem_public_key((tmp_path / "sa.pub").read_bytes()) == signing.public_key()


def test_paths_of_the_kinds_the_stacks_use():
    assert path_for("v1", "Namespace", "platform-staging") == "/api/v1/namespaces/platform-staging"
    assert path_for("apps/v1", "Deployment", "api-gateway", "platform-staging") == \
        "/apis/apps/v1/namespaces/platform-staging/deployments/api-gateway"
    assert path_for("networking.k8s.io/v1", "NetworkPolicy", namespace="ns") == \
        "/apis/networking.k8s.io/v1/namespaces/ns/networkpolicies"
