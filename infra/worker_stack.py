"""`<component>.<env>` stacks of kind cloudflare-worker: one CloudflareWorker in the env's zone."""
from __future__ import annotations

import hashlib
from typing import Any

import pulumi

from components.cloudflare_worker import (
    Bundle,
    CloudflareWorker,
    CloudflareWorkerArgs,
    Notifications,
    Rollout,
    Telemetry,
)
from infra import naming
from infra.config.common import repo_file
from infra.config.loader import NAMESPACE, reveal
from infra.config.worker import WorkerConfig, route_host
from infra.environment_ref import EnvironmentSettings, read_environment
from infra.errors import ConfigError
from infra.providers import cloudflare_provider
from infra.stacks import StackName


def bundle_of(config: WorkerConfig) -> Bundle:
    content = repo_file(config.bundle).read_bytes()
    return Bundle(path=config.bundle, sha256=hashlib.sha256(content).hexdigest(),
                  main_module=config.main_module)


def check_in_zone(stack: StackName, config: WorkerConfig, env: EnvironmentSettings) -> None:
    """Routes and domains must live in the environment's zone (known only from the env stack)."""
    zone = env.cloudflare_zone_name
    problems = []
    for key, hosts in (("routes", [route_host(r) for r in config.routes]),
                       ("custom_domains", list(config.custom_domains))):
        for index, host in enumerate(hosts):
            if host != zone and not host.endswith("." + zone):
                problems.append((f"{NAMESPACE}:{key}[{index}]",
                                 f"'{host}' is outside the {stack.env} zone '{zone}'"))
    if problems:
        raise ConfigError(str(stack), problems)


def public_vars(config: WorkerConfig, env: EnvironmentSettings) -> dict[str, str]:
    """Plain-text bindings, with the URLs of public hosts derived from the environment's base
    domain (a Go service exposes `<subdomain>.<base_domain>`): never typed per environment."""
    return {**config.vars, **{binding: f"https://{subdomain}.{env.base_domain}"
                              for binding, subdomain in config.url_vars.items()}}


def telemetry(config: WorkerConfig) -> Telemetry:
    observability = config.observability
    destination = config.logpush_destination
    return Telemetry(
        logs_sampling_rate=observability.head_sampling_rate,
        invocation_logs=observability.invocation_logs,
        traces=observability.traces.enabled,
        traces_sampling_rate=observability.traces.head_sampling_rate,
        logpush_destination=pulumi.Output.secret(reveal(destination)) if destination else None)


async def build(stack: StackName, config: WorkerConfig) -> dict[str, Any]:
    environment = await read_environment(stack, config.organization)
    check_in_zone(stack, config, environment)
    bundle = bundle_of(config)
    runtime = config.runtime  # read from wrangler.toml once
    script_name = naming.worker_script_name(stack)
    worker = CloudflareWorker(script_name, CloudflareWorkerArgs(
        account_id=environment.cloudflare_account_id,
        zone_id=environment.cloudflare_zone_id,
        bundle=bundle,
        compatibility_date=runtime.compatibility_date.isoformat(),
        compatibility_flags=runtime.compatibility_flags,
        vars=public_vars(config, environment),
        secrets={k: pulumi.Output.secret(reveal(v)) for k, v in config.secrets.items()},
        ai_binding=config.ai_binding,
        kv_namespaces=config.kv_namespaces,
        services=config.services,
        routes=config.routes,
        custom_domains=config.custom_domains,
        crons=config.crons,
        workers_dev=config.workers_dev,
        rollout=Rollout(percentage=config.rollout.percentage,
                        stable_version_id=config.rollout.stable_version_id,
                        rollback_to=config.rollout.rollback_to),
        telemetry=telemetry(config),
        notifications=(Notifications(emails=config.notifications.emails,
                                     edge_error_slo=config.notifications.edge_error_slo,
                                     zone_name=environment.cloudflare_zone_name)
                       if config.notifications else None)),
        opts=pulumi.ResourceOptions(providers=[cloudflare_provider(stack)]))
    hosts = sorted({route_host(r) for r in config.routes} | set(config.custom_domains))
    return {
        **environment.forwarded,
        "environment": stack.env,
        "script_name": worker.script_name,
        "version_id": worker.version_id,
        "deployment_id": worker.deployment_id,
        "routes": list(config.routes),
        "custom_domains": list(config.custom_domains),
        "urls": [f"https://{host}" for host in hosts],
        "bundle": bundle.path,
        "bundle_sha256": bundle.sha256,
        "compatibility_date": runtime.compatibility_date.isoformat(),
        "traffic": ({"rollback_to": config.rollout.rollback_to} if config.rollout.rollback_to
                    else {"new_version_percentage": config.rollout.percentage,
                          "stable_version_id": config.rollout.stable_version_id}),
    }
