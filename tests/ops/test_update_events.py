"""One engine run that previews with the policy pack and then applies: what `platform up` reads
from its event log (as the CLI writes it, one JSON document a line)."""
from __future__ import annotations

import json
from concurrent import futures

import grpc
from pulumi import automation as auto
from pulumi.runtime.proto import events_pb2, events_pb2_grpc

from ops.engine.automation import EventStream
from ops.engine.operation import UpdateEvents, refusal
from ops.operator.whole_environments import Counts

STACK_URN = "urn:pulumi:staging::platform::pulumi:pulumi:Stack::platform-staging"
HPA_URN = "urn:pulumi:staging::platform::kubernetes:autoscaling/v2:HorizontalPodAutoscaler::api-gateway-hpa"


def event(**kind) -> dict:
    return {"sequence": 0, "timestamp": 0, **kind}


def step(kind: str, op: str, urn: str, type_: str, planning: bool | None = None, outputs=None) -> dict:
    metadata = {"op": op, "urn": urn, "type": type_, "provider": "",
                "new": {"type": type_, "urn": urn, "outputs": outputs or {}}}
    body = {"metadata": metadata, **({"planning": planning} if planning is not None else {})}
    return event(**{kind: body})


def policy(message: str) -> dict:
    return event(policyEvent={"resourceUrn": HPA_URN, "message": message, "color": "never",
                              "policyName": "hpa-within-environment-quota",
                              "policyPackName": "platform-guardrails", "policyPackVersion": "0.0.1",
                              "policyPackVersionTag": "v0.0.1", "enforcementLevel": "mandatory"})


def engine_events(*documents: dict) -> list[auto.EngineEvent]:
    return [auto.EngineEvent.from_json(d) for d in documents]


def test_a_violation_found_by_the_preview_stops_the_update_and_says_why():
    shown = []
    events = UpdateEvents("api-gateway.staging", shown.append)
    for e in engine_events(step("resourcePreEvent", "same", STACK_URN, "pulumi:pulumi:Stack", planning=True),
                           policy("HPA 'api-gateway' may scale to 50 pods; the environment quota allows 40")):
        events(e)
    assert not events.applying
    assert refusal(events.plan.report) == ("  - platform-guardrails/hpa-within-environment-quota: HPA "
                                           "'api-gateway' may scale to 50 pods; the environment quota allows 40")
    assert [e.policy_event is not None for e in shown] == [True]  # the violation is shown as it comes


def test_the_stack_outputs_are_read_from_the_update_events():
    events = UpdateEvents("staging", lambda e: None)
    for e in engine_events(step("resourcePreEvent", "same", STACK_URN, "pulumi:pulumi:Stack"),
                           step("resOutputsEvent", "same", STACK_URN, "pulumi:pulumi:Stack",
                                outputs={"namespace": "platform-staging", "token": "[secret]"})):
        events(e)
    assert events.applying
    assert events.outputs == {"namespace": "platform-staging", "token": "[secret]"}


def test_counts_follow_the_applied_steps_only():
    seen = []
    counts = Counts(seen.append)
    for e in engine_events(step("resOutputsEvent", "create", HPA_URN, "k8s", planning=True),
                           step("resOutputsEvent", "create", HPA_URN, "k8s"),
                           step("resOutputsEvent", "same", STACK_URN, "pulumi:pulumi:Stack"),
                           step("resOutputsEvent", "update", HPA_URN, "k8s")):
        counts(e)
    assert seen[-1] == {"create": 1, "update": 1}


def test_events_streamed_by_the_cli_reach_the_callback_in_order_phase_after_phase():
    """As the CLI streams them (`--event-log tcp://…`): the preview's stream, then the update's."""
    received = []
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    events_pb2_grpc.add_EventsServicer_to_server(EventStream(received.append), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = events_pb2_grpc.EventsStub(channel)
            preview = [step("resourcePreEvent", "same", STACK_URN, "pulumi:pulumi:Stack", planning=True)]
            applied = [step("resourcePreEvent", "same", STACK_URN, "pulumi:pulumi:Stack"),
                       step("resOutputsEvent", "same", STACK_URN, "pulumi:pulumi:Stack",
                            outputs={"namespace": "platform-staging"})]
            for phase in (preview, applied):
                stub.StreamEvents(iter([events_pb2.EventRequest(event=json.dumps(d)) for d in phase]
                                       + [events_pb2.EventRequest(event="{cut short")]))
    finally:
        server.stop(grace=5).wait(10)
    events = UpdateEvents("staging", lambda e: None)
    for e in received:
        events(e)
    assert len(received) == 3 and events.applying
    assert events.outputs == {"namespace": "platform-staging"}


def test_the_cli_version_is_asked_once_even_by_stacks_run_side_by_side(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from ops.engine.automation import Command

    calls = tmp_path / "calls"
    cli = tmp_path / "pulumi"
    cli.write_text(f"#!/bin/sh\necho asked >> {calls}\nsleep 0.2\necho v3.260.0\n")
    cli.chmod(0o755)
    command = Command(str(cli))
    with ThreadPoolExecutor(4) as pool:
        versions = list(pool.map(lambda _: command.version, range(4)))
    assert [str(v) for v in versions] == ["3.260.0"] * 4
    assert calls.read_text() == "asked\n"
