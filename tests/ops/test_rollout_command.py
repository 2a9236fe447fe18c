"""`platform rollout`'s refusals: one message naming the stack and the reason, exit 1, nothing
changed (the stack file untouched). What it decides against a real Prometheus is in
tests/test_rollout_prometheus.py."""
from __future__ import annotations

import pytest

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
                   "https://api.cloudflare.com/client/v4/graphql)\n")


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
