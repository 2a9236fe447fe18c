"""Each backend is told by its URL's scheme and handled as what it is, for locks, history and
`--state-only`, or refused with a message naming it and what is not supported: never taken
for another. The folder and the S3 backend run for real in tests/e2e (on a folder and on an
S3-compatible server on loopback); here the engine is a stand-in that answers what the
backend URL is and what Pulumi Cloud reports."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from infra.project import PROJECT_ROOT
from ops.engine.backends import Backend, FileStore, S3Store
from ops.engine.session import Session
from ops.engine.updates import number
from ops.errors import OpsError
from ops.project import Project

STACK = "api-gateway.staging"
DEPLOYMENT = {"manifest": {}, "resources": [{"urn": "urn:pulumi:api-gateway.staging::platform::x"}]}


class EngineStandIn:
    """The engine as a session asks it: the backend URL, Pulumi Cloud's stack summaries, and
    the CLI (`stack export --version N`), each call recorded."""

    def __init__(self, url: str, summaries: dict | None = None):
        self.url, self.cli_calls = url, []
        self._summaries = summaries or {}

    def require_backend(self) -> str:
        return self.url

    def summaries(self) -> dict:
        return self._summaries

    def run_cli(self, stack: str, *args: str) -> str:
        self.cli_calls.append((stack, *args))
        return json.dumps({"version": 3, "deployment": DEPLOYMENT})


def session_on(url: str, summaries: dict | None = None) -> Session:
    session = Session(Project.at(PROJECT_ROOT))
    session._engine = EngineStandIn(url, summaries)
    return session


def updates(count: int = 2):
    """The history as a self-managed backend's CLI lists it: newest first, every version 0."""
    return number([{"version": 0, "kind": "update", "result": "succeeded", "config": {}}] * count)


def stack(name: str = STACK):
    return SimpleNamespace(name=name)


# -- file:// ------------------------------------------------------------------------------------


def write_json(path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value))


def test_a_folder_backend_reads_its_lock_objects(tmp_path):
    write_json(tmp_path / ".pulumi/locks/organization/platform" / STACK / "l1.json",
               {"pid": 4242, "username": "ops", "hostname": "elsewhere", "timestamp": "t0"})
    session = session_on(f"file://{tmp_path}")
    assert isinstance(session.backend().store("reading"), FileStore)
    with pytest.raises(OpsError, match=rf"stack '{STACK}' is locked by ops@elsewhere \(pid 4242\)"):
        session.require_unlocked(stack())


def test_a_folder_backend_restores_the_state_an_update_wrote(tmp_path):
    history = tmp_path / ".pulumi/history/platform" / STACK
    for nanos, resources in ((100, []), (200, DEPLOYMENT["resources"])):
        write_json(history / f"{STACK}-{nanos}.history.json", {"kind": "update"})
        write_json(history / f"{STACK}-{nanos}.checkpoint.json",
                   {"version": 3, "checkpoint": {"latest": {"resources": resources}}})
    session = session_on(f"file://{tmp_path}")
    listed = updates(2)
    assert session.saved_state(STACK, listed[1], listed)["deployment"]["resources"] == \
        DEPLOYMENT["resources"]
    assert session.saved_state(STACK, listed[0], listed)["deployment"]["resources"] == []
    assert session.engine.cli_calls == []  # read from the objects, not `stack export --version`


# -- s3:// --------------------------------------------------------------------------------------


def test_an_s3_backend_is_read_as_the_bucket_the_cli_addresses():
    backend = Backend.of("s3://state/platform?endpoint=127.0.0.1:9000&disableSSL=true"
                         "&s3ForcePathStyle=true&region=us-east-1")
    store = backend.store("reading")
    assert isinstance(store, S3Store)
    assert (store.bucket, store.prefix) == ("state", "platform")
    assert store.client.meta.endpoint_url == "http://127.0.0.1:9000"
    assert backend.describe() == "the S3 bucket s3://state/platform"  # the query is not shown


# -- gs:// and azblob:// ------------------------------------------------------------------------


@pytest.mark.parametrize("url, described", [
    ("gs://team-state/platform", "the Google Cloud Storage bucket gs://team-state/platform"),
    ("azblob://team-state?storage_account=acct", "the Azure Blob Storage container azblob://team-state"),
])
def test_gs_and_azblob_are_refused_where_their_objects_are_needed(url, described):
    session = session_on(url)
    where = "platform reads a self-managed backend's objects itself, and does so for file:// and s3:// backends only"
    with pytest.raises(OpsError) as locks:
        session.require_unlocked(stack())
    assert str(locks.value) == f"stack '{STACK}': reading its locks is not supported on {described}: {where}"
    listed = updates(2)
    with pytest.raises(OpsError) as state:
        session.saved_state(STACK, listed[0], listed)
    assert str(state.value) == (f"stack '{STACK}': restoring the state update 1 wrote is not "
                                f"supported on {described}: {where}")
    # Never taken for Pulumi Cloud: the CLI was not asked to export an earlier update.
    assert session.engine.cli_calls == []


# -- Pulumi Cloud -------------------------------------------------------------------------------


def test_pulumi_cloud_reports_a_running_update_itself():
    running = {STACK: SimpleNamespace(update_in_progress=True, resource_count=3)}
    with pytest.raises(OpsError, match=rf"stack '{STACK}' has an update in progress on Pulumi "
                                       r"Cloud https://api.pulumi.com: wait for it"):
        session_on("https://api.pulumi.com", running).require_unlocked(stack())
    idle = {STACK: SimpleNamespace(update_in_progress=False, resource_count=3)}
    session_on("https://api.pulumi.com", idle).require_unlocked(stack())  # no refusal


def test_pulumi_cloud_exports_an_earlier_updates_state():
    session = session_on("https://api.pulumi.com")
    listed = number([{"version": 7, "kind": "update", "result": "succeeded", "config": {}}])
    assert session.saved_state(STACK, listed[0], listed)["deployment"] == DEPLOYMENT
    assert session.engine.cli_calls == [(STACK, "stack", "export", "--version", "7")]


def test_pulumi_cloud_has_no_objects_to_read():
    with pytest.raises(OpsError, match="reading is not supported on Pulumi Cloud https://api.pulumi.com: "
                                       "Pulumi Cloud keeps them in its service"):
        Backend.of("https://api.pulumi.com").store("reading")


# -- anything else ------------------------------------------------------------------------------


def test_an_unknown_scheme_is_refused_not_taken_for_pulumi_cloud():
    with pytest.raises(OpsError, match=r"^the backend postgres://db/state is not one platform knows: "
                                       r"file://, s3://, gs://, azblob:// or Pulumi Cloud \(https://\)$"):
        session_on("postgres://db/state?password=x").require_unlocked(stack())
