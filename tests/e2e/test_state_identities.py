"""The read-only state identity SECURITY.md gives the `-read` environments (pull-request previews
and drift checks), for real: an account of the S3 backend that may get and list the state's
objects and write none.

Staging and api-gateway.staging are deployed through `platform up` with the backend's writing
identity; then, with only the reader's credentials, `platform preview` and `platform drift` of
the stack answer, and `platform up` is refused before it changes anything: not one object of
the state, not one object of the cluster.
"""

from __future__ import annotations

import secrets

import pytest

from tools.cluster import Cluster
from tools.cluster.kube import path_for

from tests.e2e.conftest import deploy_stacks
from tests.e2e.harness import Workspace, namespace_of
from tests.e2e.object_store import ObjectStore

STACKS = ["staging", "api-gateway.staging"]
SERVICE = "api-gateway.staging"


@pytest.fixture(scope="module")
def deployed(cluster: Cluster, tmp_path_factory):
    """The two stacks up on the session's cluster in namespaces of this module's own, their state
    in an S3 store with accounts: (workspace, store, the reader's credentials)."""
    base = tmp_path_factory.mktemp("state-identities")
    store = ObjectStore(base / "s3", iam=True).start()
    try:
        ws = Workspace.create(base, cluster.kubeconfig)
        ws.backend_url, ws.extra_env = store.backend_url, store.credentials()
        ws.use_namespace("staging", f"ids-{secrets.token_hex(3)}")
        deploy_stacks(ws, cluster.client(), STACKS,
                      lambda stack: ws.platform("up", stack, "--yes").stderr)
        yield ws, store, store.reader()
    finally:
        store.stop()


def test_the_reader_previews_and_checks_drift_of_a_deployed_stack(deployed):
    ws, store, reader = deployed
    before = store.objects()
    preview = ws.platform("preview", SERVICE, env=reader, check=False)
    assert preview.returncode == 0, preview.stdout + preview.stderr
    drift = ws.platform("drift", SERVICE, env=reader, check=False)
    assert drift.returncode == 0, drift.stdout + drift.stderr  # clean: nothing changed since up
    assert store.objects() == before


def test_the_reader_cannot_update_and_nothing_changes(deployed, cluster: Cluster):
    ws, store, reader = deployed
    kube = cluster.client()
    deployment = path_for("apps/v1", "Deployment", "api-gateway", namespace_of(SERVICE, ws.root))
    generation = kube.get(deployment)["metadata"]["generation"]
    stack_file = ws.root / f"Pulumi.{SERVICE}.yaml"
    deployed_file = stack_file.read_text()
    ws.pulumi("config", "set", "--path", "-s", SERVICE, "platform:scaling.min_replicas", "3")
    before = store.objects()
    try:
        result = ws.platform("up", SERVICE, "--yes", env=reader, check=False)
    finally:
        stack_file.write_text(deployed_file)  # what the other test expects
    said = result.stdout + result.stderr
    assert result.returncode == 1, said
    assert "AccessDenied" in said or "Access Denied" in said, said
    assert "Traceback" not in said, said
    assert store.objects() == before  # no lock, no checkpoint, no history entry
    assert kube.get(deployment)["metadata"]["generation"] == generation
