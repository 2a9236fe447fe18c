"""Observability of a Worker from its stack config: Workers Logs and traces with their head
sampling, Logpush of its trace events (the destination a secret), and Cloudflare notification
policies for its zone's edge errors and a failing Logpush job of the account (no filter narrows
either to one Worker, so one Worker stack per zone declares them)."""
from __future__ import annotations

import json

import pytest

from infra.secrets import is_secret_wrapper
from infra.stack_files import read_stack_config
from offline.mock_engine import unwrap_secrets
from offline.render import normalize

from tests.conftest import single, stacks_of_kind

WORKER_STACKS = stacks_of_kind("cloudflare-worker")
WORKER = "cloudflare:index/worker:Worker"
LOGPUSH = "cloudflare:index/logpushJob:LogpushJob"
NOTIFICATION = "cloudflare:index/notificationPolicy:NotificationPolicy"
DESTINATION = "r2://worker-logs/ai?account-id=0f1e&access-key-id=AKIA&secret-access-key=s3cr3t"


def observability(run) -> dict:
    return normalize(single(run, WORKER).inputs)["observability"]


@pytest.mark.parametrize("stack", WORKER_STACKS)
def test_logs_and_traces_follow_the_stacks_sampling(repo_renderer, stack):
    config = json.loads(read_stack_config(stack).config["platform:observability"])
    settings = observability(repo_renderer.run(stack))
    assert settings["logs"] == {"enabled": True, "invocationLogs": True,
                                "headSamplingRate": config["head_sampling_rate"]}
    assert settings["traces"] == {"enabled": config["traces"]["enabled"],
                                  "headSamplingRate": config["traces"]["head_sampling_rate"]}


def test_traces_are_off_unless_asked(run_stack_with):
    run = run_stack_with("ai-worker.staging", observability={"head_sampling_rate": 0.5})
    assert observability(run)["traces"]["enabled"] is False


def test_logpush_pushes_only_this_workers_trace_events_to_a_secret_destination(run_stack_with):
    run = run_stack_with("ai-worker.staging", logpush_destination={"secure": "v1:cipher"})
    assert single(run, WORKER).inputs["logpush"] is True
    job = single(run, LOGPUSH).inputs
    assert job["dataset"] == "workers_trace_events" and job["enabled"] is True
    assert is_secret_wrapper(job["destinationConf"])  # credentials never reach the state in plain
    assert json.loads(job["filter"]) == {"where": {"and": [
        {"key": "ScriptName", "operator": "eq", "value": "ai-worker-staging"}]}}
    assert {"ScriptName", "Outcome", "Exceptions", "Logs"} <= set(job["outputOptions"]["fieldNames"])


@pytest.mark.parametrize("stack", WORKER_STACKS)
def test_without_a_destination_nothing_is_pushed(repo_renderer, stack):
    run = repo_renderer.run(stack)
    assert single(run, WORKER).inputs["logpush"] is False
    assert run.of_type(LOGPUSH) == []


def test_a_logpush_destination_in_plain_text_is_refused(failing_run):
    error, registered = failing_run("ai-worker.staging", logpush_destination=DESTINATION)
    assert ("platform:logpush_destination",
            "is a secret in plain text: set it with `pulumi config set --secret --path "
            "'platform:logpush_destination' <value>`") in error.problems
    assert not [r for r in registered if r.custom]


NOTIFYING = [s for s in WORKER_STACKS if "platform:notifications" in read_stack_config(s).config]
RECIPIENTS = {"emails": ["ai-oncall@example.com"], "edge_error_slo": "99.9"}


@pytest.mark.parametrize("stack", NOTIFYING)
def test_edge_errors_of_the_workers_zone_notify_its_owners(repo_renderer, stack):
    run = repo_renderer.run(stack)
    environment = repo_renderer.run(stack.split(".")[1]).outputs
    config = json.loads(read_stack_config(stack).config["platform:notifications"])
    (policy,) = [normalize(p.inputs) for p in run.of_type(NOTIFICATION)]
    assert policy["alertType"] == "http_alert_edge_error" and policy["enabled"] is True
    assert policy["accountId"] == environment["cloudflare_account_id"]
    assert policy["filters"] == {"zones": [environment["cloudflare_zone_id"]],
                                 "slos": [config["edge_error_slo"]]}
    assert policy["mechanisms"] == {"emails": [{"id": e} for e in config["emails"]]}


def test_zone_and_account_policies_say_what_they_cover(run_stack_with):
    # No filter narrows either alert to one Worker: the edge-error one covers the zone, the
    # Logpush one the account, and neither may claim to be about the Worker alone.
    run = run_stack_with("ai-worker.staging", notifications=RECIPIENTS,
                         logpush_destination={"secure": "v1:cipher"})
    policies = {p.inputs["alertType"]: normalize(p.inputs) for p in run.of_type(NOTIFICATION)}
    edge, logpush = (policies["http_alert_edge_error"],
                     policies["failing_logpush_job_disabled_alert"])
    assert edge["name"] == "zone example.com: edge 5xx errors"
    assert "every host of zone example.com" in edge["description"]
    assert logpush["name"] == "account: a Logpush job disabled"
    assert "every Logpush job of the account" in logpush["description"]
    assert "filters" not in logpush


def test_one_worker_stack_per_zone_declares_the_zone_wide_notifications():
    # Two declarations in one zone (staging and production share example.com) would mail every
    # 5xx of the zone twice, each titled as its own environment's.
    from tests.conftest import stacks_of
    owners: dict[tuple, list[str]] = {}
    for stack in stacks_of("cloudflare-worker"):
        if stack.configured("notifications") is None:
            continue
        zone = stack.environment.configured("cloudflare")
        owners.setdefault((stack.root, zone["account_id"], zone["zone_id"]), []).append(str(stack))
    assert owners, "no Worker stack notifies anyone"
    assert {key: names for key, names in owners.items() if len(names) > 1} == {}


def test_a_failing_logpush_job_notifies_too_when_logs_are_pushed(run_stack_with):
    run = run_stack_with("ai-worker.staging", notifications=RECIPIENTS,
                         logpush_destination={"secure": "v1:cipher"})
    types = sorted(p.inputs["alertType"] for p in run.of_type(NOTIFICATION))
    assert types == ["failing_logpush_job_disabled_alert", "http_alert_edge_error"]


def test_no_notifications_without_recipients(run_stack_with):
    assert run_stack_with("ai-worker.production", notifications=None).of_type(NOTIFICATION) == []


@pytest.mark.parametrize("notifications,key", [
    ({"emails": []}, "platform:notifications.emails"),
    ({"emails": ["not-an-address"]}, "platform:notifications.emails[0]"),
    ({"emails": ["a@example.com"], "edge_error_slo": "101"}, "platform:notifications.edge_error_slo"),
])
def test_bad_notification_settings_are_refused(failing_run, notifications, key):
    error, _ = failing_run("ai-worker.staging", notifications=notifications)
    assert [k for k, _ in error.problems] == [key]


def test_no_secret_value_reaches_the_logpush_job_unwrapped(run_stack_with):
    run = run_stack_with("ai-worker.staging", logpush_destination={"secure": "v1:cipher"})
    job = single(run, LOGPUSH).inputs
    assert unwrap_secrets(job["destinationConf"]) == "[secret]"  # the offline placeholder
