"""`platform rollout`'s refusals: one message naming the stack and the reason, exit 1, nothing
changed (the stack file untouched). What it decides against a real Prometheus is in
tests/test_rollout_prometheus.py."""
from __future__ import annotations

import pytest
import yaml

from ops.cli import main
from tests.conftest import free_port


def rollout(repo, capsys, *args: str) -> tuple[int, str, str]:
    code = main(["--project-dir", str(repo.root), "rollout", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_an_invalid_canary_config_is_refused_naming_the_key(repo, capsys):
    path = repo.root / "Pulumi.api-gateway.staging.yaml"
    before = path.read_text() + "  platform:canary:\n    steps: [50, 10]\n"
    path.write_text(before)
    code, _, err = rollout(repo, capsys, "api-gateway.staging", "--prometheus",
                           "http://127.0.0.1:9", "--check")
    assert code == 1
    assert "stack 'api-gateway.staging': invalid config" in err
    assert "platform:canary.steps" in err and "[50, 10] must rise step by step" in err
    assert "Traceback" not in err and path.read_text() == before


def test_a_worker_stack_is_not_analysed_in_prometheus(repo, capsys):
    code, out, err = rollout(repo, capsys, "ai-worker.staging", "--prometheus",
                             "http://127.0.0.1:9")
    assert code == 1 and out == ""
    assert err == ("error: stack 'ai-worker.staging': a Worker's versions are not in Prometheus; "
                   "its new version is judged by its invocations in Cloudflare's analytics (drop "
                   "--prometheus; --analytics URL only to ask another endpoint than "
                   "Cloudflare's own)\n")


def test_a_go_service_needs_its_prometheus(repo, capsys):
    code, out, err = rollout(repo, capsys, "api-gateway.staging", "--check")
    assert code == 1 and out == ""
    assert err == ("error: stack 'api-gateway.staging': a Go service's new version is judged by "
                   "its own series in Prometheus: pass --prometheus URL (for example "
                   "http://prometheus.monitoring:9090)\n")


def test_a_worker_rollout_without_a_cloudflare_token_is_one_message(repo, capsys, monkeypatch):
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN", raising=False)
    path = repo.root / "Pulumi.ai-worker.staging.yaml"
    before = path.read_text()
    code, out, err = rollout(repo, capsys, "ai-worker.staging")
    assert code == 1 and out == ""
    assert err == ("error: stack 'ai-worker.staging': CLOUDFLARE_API_TOKEN is not set: a Worker's "
                   "rollout reads its new version's invocations from Cloudflare's analytics with "
                   "the API token the stack is deployed with (it needs Account Analytics: Read); "
                   "nothing was changed\n")
    assert path.read_text() == before


@pytest.mark.parametrize("mode", [[], ["--abort"]])
def test_a_go_service_without_a_canary_release_has_nothing_to_roll_out(repo, capsys, mode):
    path = repo.root / "Pulumi.api-gateway.staging.yaml"
    before = path.read_text()
    code, out, err = rollout(repo, capsys, "api-gateway.staging", "--prometheus",
                             f"http://127.0.0.1:{free_port()}", *mode)
    assert code == 1 and out == ""
    assert err == ("error: stack 'api-gateway.staging': nothing to roll out: "
                   "Pulumi.api-gateway.staging.yaml declares no canary release "
                   "(platform:canary.release: {image: <repository>@sha256:<digest>, weight: 0}, "
                   "docs/rollouts.md)\n")
    assert path.read_text() == before


def test_a_go_service_release_with_prometheus_unreachable_changes_nothing(repo, capsys):
    path = repo.root / "Pulumi.api-gateway.staging.yaml"
    path.write_text(path.read_text() + "  platform:canary:\n    release:\n      image: "
                    "registry.example.com/platform/api-gateway@sha256:" + "7c" * 32 + "\n")
    before = path.read_text()
    code, _, err = rollout(repo, capsys, "api-gateway.staging", "--prometheus",
                           f"http://127.0.0.1:{free_port()}")
    assert code == 1
    assert "rollout not started, nothing changed: Prometheus at" in err
    assert "Traceback" not in err and path.read_text() == before


def test_check_with_prometheus_unreachable_is_no_verdict(repo, capsys):
    code, out, _ = rollout(repo, capsys, "api-gateway.staging", "--prometheus",
                           f"http://127.0.0.1:{free_port()}", "--check")
    assert code == 1
    assert out.startswith("api-gateway.staging: error\n  Prometheus at http://127.0.0.1:")
    assert "cannot be queried" in out


@pytest.mark.parametrize("url", ["file:///etc/passwd", "prometheus:9090", "ftp://127.0.0.1:9"])
def test_a_prometheus_url_that_is_not_http_is_refused_before_any_query(repo, capsys, url):
    code, out, err = rollout(repo, capsys, "api-gateway.staging", "--prometheus", url, "--check")
    assert code == 1 and out == ""
    assert err == (f"error: stack 'api-gateway.staging': --prometheus {url!r} is not an http(s) URL "
                   "(for example http://prometheus.monitoring:9090)\n")


# -- a Worker stack: Cloudflare's analytics (a stand-in on loopback), its gradual deployment ------

WORKER = "ai-worker.staging"
BUNDLE = "workers/ai-worker/dist/worker.js"
STABLE = "3f2c1a9e-7b6d-4e5f-8a9b-0c1d2e3f4a5b"
NEW = "7d0e7a52-3b1c-4c52-9a61-2f4c8b1d9e01"


def worker_state(repo, monkeypatch, outputs: dict | None) -> dict:
    """The Worker stack's outputs as `platform` reads them from its state (the backend holds no
    Worker stack here: a Cloudflare account is out of reach)."""
    import ops.operator.env

    state = {"outputs": outputs}
    monkeypatch.setattr(ops.operator.env, "stack_outputs",
                        lambda session, stack: state["outputs"] if stack == WORKER else None)
    return state


def new_bundle(repo) -> str:
    import hashlib

    repo.write(BUNDLE, "export default { fetch() { return new Response('new'); } };\n")
    return hashlib.sha256((repo.root / BUNDLE).read_bytes()).hexdigest()


def test_a_worker_never_deployed_has_nothing_to_roll_out(repo, capsys, monkeypatch,
                                                         cloudflare_analytics):
    worker_state(repo, monkeypatch, None)
    code, out, err = rollout(repo, capsys, WORKER, "--analytics", cloudflare_analytics.url)
    assert code == 1 and out == ""
    assert err == (f"error: stack '{WORKER}': nothing to roll out: the stack serves no version yet "
                   f"(no version_id output); its first version is deployed by `platform up "
                   f"{WORKER}`, the next ones rolled out\n")


def test_a_worker_whose_bundle_is_deployed_has_nothing_to_roll_out(repo, capsys, monkeypatch,
                                                                   cloudflare_analytics):
    worker_state(repo, monkeypatch, {"version_id": STABLE, "bundle_sha256": new_bundle(repo)})
    path = repo.root / f"Pulumi.{WORKER}.yaml"
    before = path.read_text()
    code, out, err = rollout(repo, capsys, WORKER, "--analytics", cloudflare_analytics.url)
    assert code == 1 and out == ""
    assert err == (f"error: stack '{WORKER}': nothing to roll out: the bundle is the one version "
                   f"{STABLE} was built from (build the new one first, `make worker`; "
                   f"docs/rollouts.md)\n")
    code, out, err = rollout(repo, capsys, WORKER, "--analytics", cloudflare_analytics.url, "--abort")
    assert code == 1
    assert err == (f"error: stack '{WORKER}': no rollout to abort: Pulumi.{WORKER}.yaml's "
                   f"platform:rollout splits no traffic (no stable_version_id)\n")
    assert path.read_text() == before and cloudflare_analytics.received == []


def test_a_worker_check_judges_the_new_version_in_cloudflares_analytics(repo, capsys, monkeypatch,
                                                                        cloudflare_analytics):
    import json

    path = repo.root / f"Pulumi.{WORKER}.yaml"
    path.write_text(path.read_text().replace(
        "  platform:rollout:\n    percentage: 100\n",
        f"  platform:rollout:\n    percentage: 10\n    stable_version_id: {STABLE}\n"))
    worker_state(repo, monkeypatch, {"version_id": NEW, "bundle_sha256": new_bundle(repo)})
    cloudflare_analytics.record("ai-worker-staging", NEW, 400, errors=20)
    cloudflare_analytics.record("ai-worker-staging", STABLE, 3600)
    code, out, _ = rollout(repo, capsys, WORKER, "--analytics", cloudflare_analytics.url,
                           "--check", "--json")
    assert code == 2
    analysis = json.loads(out)
    assert analysis["stack"] == WORKER and analysis["verdict"] == "fail"
    assert analysis["requests"] == 400
    assert analysis["reasons"] == [(f"version {NEW}: error ratio (limit 14.4x the 99.9 % budget) "
                                    f"5 % is above its limit 1.44 %")]
    (query,) = cloudflare_analytics.received
    assert query["variables"]["scriptVersion"] == NEW
    assert query["variables"]["scriptName"] == "ai-worker-staging"


def test_a_failing_worker_release_is_rolled_back_to_the_stable_version(repo, capsys, monkeypatch,
                                                                       cloudflare_analytics):
    """The whole loop through the CLI: the first step uploads the new version beside the stable
    one (the recorded update leaves its outputs), the new version fails 5 % of its invocations
    in the window, the rollout writes `rollback_to` and applies it."""
    import datetime as dt
    import json

    from ops.rollout import canary_stack

    digest = new_bundle(repo)
    state = worker_state(repo, monkeypatch, {"version_id": STABLE, "bundle_sha256": "0" * 64})
    path = repo.root / f"Pulumi.{WORKER}.yaml"
    path.write_text(path.read_text() + "  platform:canary:\n    window_seconds: 4\n"
                                       "    min_requests: 20\n")
    updates = []

    def apply_stack_file(session, info, stack_file, *, dry_run, yes, question, message):
        stack_file.write()
        updates.append((message, yaml.safe_load(path.read_text())["config"]["platform:rollout"]))
        if not updates[1:]:  # the first step uploads the new bundle, which then serves its share
            state["outputs"] = {"version_id": NEW, "bundle_sha256": digest}
            cloudflare_analytics.record("ai-worker-staging", NEW, 200, errors=10,
                                        at=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2))
        return {}

    monkeypatch.setattr(canary_stack, "apply_stack_file", apply_stack_file)
    code, out, err = rollout(repo, capsys, WORKER, "--analytics", cloudflare_analytics.url, "--json")
    assert code == 2, err
    events = json.loads(out)["events"]
    assert [e["action"] for e in events] == ["start", "set-weight", "analysis", "rolled-back"]
    assert [rollout for _, rollout in updates] == [
        {"percentage": 10, "stable_version_id": STABLE}, {"rollback_to": STABLE}]
    assert updates[1][0].startswith(f"platform rollout: rollback: version {STABLE} serves all "
                                    f"traffic, the new version none — analysis failed at 10 %")
    assert events[2]["analysis"]["requests"] == 200
