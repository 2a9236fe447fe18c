"""CloudflareWorker: a Worker, an immutable version of its bundle, and the deployment serving it.

Versions are immutable: each bundle or binding change uploads a new WorkerVersion; the
WorkersDeployment decides which version(s) serve traffic, so a gradual rollout splits traffic
by percentage and a rollback points the deployment at an earlier version id.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

import pulumi
import pulumi_cloudflare as cloudflare

from components.worker_notifications import WorkerNotifications, WorkerNotificationsArgs

MODULE_CONTENT_TYPE = "application/javascript+module"


@dataclass(frozen=True)
class Bundle:
    """The built ESM bundle: its path (read by the provider at deploy time) and content hash."""

    path: str
    sha256: str
    main_module: str


@dataclass(frozen=True)
class Rollout:
    percentage: int = 100  # share of traffic for the new version
    stable_version_id: Optional[str] = None  # keeps 100 - percentage
    rollback_to: Optional[str] = None  # serve only this earlier version


@dataclass(frozen=True)
class Telemetry:
    """Workers Logs, traces and Logpush of the Worker."""

    logs_sampling_rate: float = 1.0
    invocation_logs: bool = True
    traces: bool = False
    traces_sampling_rate: float = 0.01
    logpush_destination: Optional[pulumi.Input[str]] = None  # secret: holds credentials


# Workers Trace Events (the Logpush dataset of Workers): what each pushed record holds.
TRACE_EVENT_FIELDS = ["EventTimestampMs", "ScriptName", "ScriptVersion", "Outcome", "EventType",
                      "Event", "Exceptions", "Logs", "CPUTimeMs", "WallTimeMs"]


@dataclass(frozen=True)
class Notifications:
    """Who Cloudflare notifies of the zone's edge errors (and of a failing Logpush job of the
    account): policies of the zone and the account, which no filter narrows to one Worker."""

    emails: Sequence[str]
    edge_error_slo: str  # e.g. "99.9"
    zone_name: str  # what the zone-wide policy is named after


@dataclass(frozen=True)
class CloudflareWorkerArgs:
    account_id: pulumi.Input[str]
    zone_id: pulumi.Input[str]
    bundle: Bundle
    compatibility_date: str
    compatibility_flags: Sequence[str] = ()
    vars: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    ai_binding: Optional[str] = None
    kv_namespaces: Sequence[str] = ()  # binding names; each gets a namespace of its own
    services: Mapping[str, str] = field(default_factory=dict)  # binding -> Worker name
    routes: Sequence[str] = ()
    custom_domains: Sequence[str] = ()
    crons: Sequence[str] = ()
    workers_dev: bool = False
    rollout: Rollout = field(default_factory=Rollout)
    telemetry: Telemetry = field(default_factory=Telemetry)
    notifications: Optional[Notifications] = None


class CloudflareWorker(pulumi.ComponentResource):
    """A Worker and everything under it: the Worker (its settings, logs and traces), a
    WorkersKvNamespace per KV binding, the WorkerVersion holding the bundle and bindings, the
    WorkersDeployment that splits traffic, its WorkersRoute, WorkersCustomDomain and
    WorkersCronTrigger entry points, a LogpushJob when its trace events are pushed, and
    WorkerNotifications (Cloudflare's notification policies) when someone is to be notified."""

    script_name: pulumi.Output[str]
    version_id: pulumi.Output[str]
    deployment_id: pulumi.Output[str]

    def __init__(self, name: str, args: CloudflareWorkerArgs,
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("platform:cloudflare_worker:CloudflareWorker", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        worker = _worker(name, args, child)
        _logpush(name, args, pulumi.ResourceOptions(parent=self, depends_on=[worker]))
        kv_namespaces = _kv_namespaces(name, args, child)
        version = _version(name, args, worker, _bindings(args, kv_namespaces), child)
        deployment = cloudflare.WorkersDeployment(
            f"{name}-deployment", account_id=args.account_id, script_name=worker.name,
            strategy="percentage", versions=_traffic(version.id, args.rollout),
            opts=child)
        # Routes, domains and crons wait for the deployment so they never point at an empty Worker.
        _entry_points(name, args, worker, pulumi.ResourceOptions(parent=self,
                                                                 depends_on=[deployment]))
        _notifications(name, args, child)

        self.script_name = worker.name
        self.version_id = version.id
        self.deployment_id = deployment.id
        self.register_outputs({"script_name": self.script_name, "version_id": self.version_id,
                               "deployment_id": self.deployment_id})


def _worker(name: str, args: CloudflareWorkerArgs, opts: pulumi.ResourceOptions) -> cloudflare.Worker:
    telemetry = args.telemetry
    return cloudflare.Worker(f"{name}-worker", account_id=args.account_id, name=name,
                             observability=cloudflare.WorkerObservabilityArgs(
                                 enabled=True, head_sampling_rate=telemetry.logs_sampling_rate,
                                 logs=cloudflare.WorkerObservabilityLogsArgs(
                                     enabled=True, invocation_logs=telemetry.invocation_logs,
                                     head_sampling_rate=telemetry.logs_sampling_rate),
                                 traces=cloudflare.WorkerObservabilityTracesArgs(
                                     enabled=telemetry.traces,
                                     head_sampling_rate=telemetry.traces_sampling_rate)),
                             logpush=telemetry.logpush_destination is not None,
                             subdomain=cloudflare.WorkerSubdomainArgs(
                                 enabled=args.workers_dev, previews_enabled=False),
                             opts=opts)


def _logpush(name: str, args: CloudflareWorkerArgs, opts: pulumi.ResourceOptions) -> None:
    """An account-wide job of the Workers dataset, narrowed to this Worker's events."""
    destination = args.telemetry.logpush_destination
    if destination is None:
        return
    cloudflare.LogpushJob(
        f"{name}-logpush", account_id=args.account_id, name=name,
        dataset="workers_trace_events", enabled=True,
        destination_conf=pulumi.Output.secret(destination),
        filter=json.dumps({"where": {"and": [
            {"key": "ScriptName", "operator": "eq", "value": name}]}}),
        output_options=cloudflare.LogpushJobOutputOptionsArgs(
            field_names=TRACE_EVENT_FIELDS, output_type="ndjson", timestamp_format="rfc3339"),
        opts=opts)


def _kv_namespaces(name: str, args: CloudflareWorkerArgs,
                   opts: pulumi.ResourceOptions) -> dict[str, cloudflare.WorkersKvNamespace]:
    """One namespace of its own per KV binding, by binding name."""
    return {binding: cloudflare.WorkersKvNamespace(
        f"{name}-kv-{binding.lower()}", account_id=args.account_id,
        title=f"{name}-{binding.lower()}", opts=opts) for binding in args.kv_namespaces}


def _bindings(args: CloudflareWorkerArgs, kv_namespaces: Mapping[str, cloudflare.WorkersKvNamespace]
              ) -> list[cloudflare.WorkerVersionBindingArgs]:
    """The version's bindings: vars, secrets, KV namespaces, services and Workers AI."""
    bindings = [cloudflare.WorkerVersionBindingArgs(name=k, type="plain_text", text=v)
                for k, v in sorted(args.vars.items())]
    bindings += [cloudflare.WorkerVersionBindingArgs(
        name=k, type="secret_text", text=pulumi.Output.secret(v))
        for k, v in sorted(args.secrets.items())]
    bindings += [cloudflare.WorkerVersionBindingArgs(
        name=binding, type="kv_namespace", namespace_id=namespace.id)
        for binding, namespace in kv_namespaces.items()]
    bindings += [cloudflare.WorkerVersionBindingArgs(name=k, type="service", service=v)
                 for k, v in sorted(args.services.items())]
    if args.ai_binding:
        bindings.append(cloudflare.WorkerVersionBindingArgs(name=args.ai_binding, type="ai"))
    return bindings


def _version(name: str, args: CloudflareWorkerArgs, worker: cloudflare.Worker,
             bindings: list[cloudflare.WorkerVersionBindingArgs],
             opts: pulumi.ResourceOptions) -> cloudflare.WorkerVersion:
    return cloudflare.WorkerVersion(
        f"{name}-version", account_id=args.account_id, worker_id=worker.id,
        compatibility_date=args.compatibility_date,
        compatibility_flags=list(args.compatibility_flags),
        main_module=args.bundle.main_module,
        modules=[cloudflare.WorkerVersionModuleArgs(
            name=args.bundle.main_module, content_type=MODULE_CONTENT_TYPE,
            content_file=args.bundle.path, content_sha256=args.bundle.sha256)],
        bindings=bindings,
        annotations=cloudflare.WorkerVersionAnnotationsArgs(
            workers_message=f"bundle sha256:{args.bundle.sha256}"),
        opts=opts)


def _entry_points(name: str, args: CloudflareWorkerArgs, worker: cloudflare.Worker,
                  opts: pulumi.ResourceOptions) -> None:
    """What sends requests to the Worker: zone routes, custom domains, cron triggers."""
    for index, pattern in enumerate(args.routes):
        cloudflare.WorkersRoute(f"{name}-route-{index}", zone_id=args.zone_id,
                                pattern=pattern, script=worker.name, opts=opts)
    for hostname in args.custom_domains:
        cloudflare.WorkersCustomDomain(f"{name}-domain-{hostname}",
                                       account_id=args.account_id, hostname=hostname,
                                       service=worker.name, zone_id=args.zone_id, opts=opts)
    if args.crons:
        cloudflare.WorkersCronTrigger(f"{name}-crons", account_id=args.account_id,
                                      script_name=worker.name,
                                      schedules=[cloudflare.WorkersCronTriggerScheduleArgs(
                                          cron=c) for c in args.crons],
                                      opts=opts)


def _notifications(name: str, args: CloudflareWorkerArgs, opts: pulumi.ResourceOptions) -> None:
    if args.notifications is None:
        return
    WorkerNotifications(name, WorkerNotificationsArgs(
        account_id=args.account_id, zone_id=args.zone_id,
        zone_name=args.notifications.zone_name, emails=args.notifications.emails,
        edge_error_slo=args.notifications.edge_error_slo,
        logpush=args.telemetry.logpush_destination is not None), opts=opts)


def _traffic(new_version: pulumi.Output[str],
             rollout: Rollout) -> list[cloudflare.WorkersDeploymentVersionArgs]:
    if rollout.rollback_to:
        return [cloudflare.WorkersDeploymentVersionArgs(version_id=rollout.rollback_to,
                                                        percentage=100)]
    versions = [cloudflare.WorkersDeploymentVersionArgs(version_id=new_version,
                                                        percentage=rollout.percentage)]
    if rollout.percentage < 100:
        versions.append(cloudflare.WorkersDeploymentVersionArgs(
            version_id=rollout.stable_version_id, percentage=100 - rollout.percentage))
    return versions
