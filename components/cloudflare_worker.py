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


class CloudflareWorker(pulumi.ComponentResource):
    """Worker, KV namespaces, WorkerVersion, WorkersDeployment, routes, domains, cron triggers."""

    script_name: pulumi.Output[str]
    version_id: pulumi.Output[str]
    deployment_id: pulumi.Output[str]

    def __init__(self, name: str, args: CloudflareWorkerArgs,
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("platform:cloudflare_worker:CloudflareWorker", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        telemetry = args.telemetry
        worker = cloudflare.Worker(f"{name}-worker", account_id=args.account_id, name=name,
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
                                   opts=child)
        if telemetry.logpush_destination is not None:
            # An account-wide job of the Workers dataset, narrowed to this Worker's events.
            cloudflare.LogpushJob(
                f"{name}-logpush", account_id=args.account_id, name=name,
                dataset="workers_trace_events", enabled=True,
                destination_conf=pulumi.Output.secret(telemetry.logpush_destination),
                filter=json.dumps({"where": {"and": [
                    {"key": "ScriptName", "operator": "eq", "value": name}]}}),
                output_options=cloudflare.LogpushJobOutputOptionsArgs(
                    field_names=TRACE_EVENT_FIELDS, output_type="ndjson",
                    timestamp_format="rfc3339"),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[worker]))

        bindings = [cloudflare.WorkerVersionBindingArgs(name=k, type="plain_text", text=v)
                    for k, v in sorted(args.vars.items())]
        bindings += [cloudflare.WorkerVersionBindingArgs(
            name=k, type="secret_text", text=pulumi.Output.secret(v))
            for k, v in sorted(args.secrets.items())]
        for binding in args.kv_namespaces:
            namespace = cloudflare.WorkersKvNamespace(
                f"{name}-kv-{binding.lower()}", account_id=args.account_id,
                title=f"{name}-{binding.lower()}", opts=child)
            bindings.append(cloudflare.WorkerVersionBindingArgs(
                name=binding, type="kv_namespace", namespace_id=namespace.id))
        bindings += [cloudflare.WorkerVersionBindingArgs(name=k, type="service", service=v)
                     for k, v in sorted(args.services.items())]
        if args.ai_binding:
            bindings.append(cloudflare.WorkerVersionBindingArgs(name=args.ai_binding, type="ai"))

        version = cloudflare.WorkerVersion(
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
            opts=child)

        deployment = cloudflare.WorkersDeployment(
            f"{name}-deployment", account_id=args.account_id, script_name=worker.name,
            strategy="percentage", versions=self._traffic(version.id, args.rollout),
            opts=child)

        # Routes and domains wait for the deployment so they never point at an empty Worker.
        after_deploy = pulumi.ResourceOptions(parent=self, depends_on=[deployment])
        for index, pattern in enumerate(args.routes):
            cloudflare.WorkersRoute(f"{name}-route-{index}", zone_id=args.zone_id,
                                    pattern=pattern, script=worker.name, opts=after_deploy)
        for hostname in args.custom_domains:
            cloudflare.WorkersCustomDomain(f"{name}-domain-{hostname}",
                                           account_id=args.account_id, hostname=hostname,
                                           service=worker.name, zone_id=args.zone_id,
                                           opts=after_deploy)
        if args.crons:
            cloudflare.WorkersCronTrigger(f"{name}-crons", account_id=args.account_id,
                                          script_name=worker.name,
                                          schedules=[cloudflare.WorkersCronTriggerScheduleArgs(
                                              cron=c) for c in args.crons],
                                          opts=after_deploy)

        self.script_name = worker.name
        self.version_id = version.id
        self.deployment_id = deployment.id
        self.register_outputs({"script_name": self.script_name, "version_id": self.version_id,
                               "deployment_id": self.deployment_id})

    @staticmethod
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
