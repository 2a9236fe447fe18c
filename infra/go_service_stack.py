"""`<component>.<env>` stacks of kind go-service: one GoService in the environment's namespace."""
from __future__ import annotations

from typing import Any

import pulumi

from components.alert_rules import CustomAlert
from components.go_service import (
    CANARY_POD_LABELS,
    CanaryRelease,
    Caller,
    Exposure,
    GoService,
    GoServiceArgs,
    ImageBuild,
    Monitoring,
    Peer,
)
from components.service_signals import ServiceSignals
from infra.build_context import context_digest
from infra.config.common import repo_file
from infra.config.go_service import GoServiceConfig
from infra.config.loader import reveal
from infra.environment_ref import EnvironmentSettings, read_environment
from infra.providers import docker_provider, kubernetes_provider
from infra.stacks import StackName


def _image(config: GoServiceConfig):
    if config.image.ref is not None:
        return config.image.ref
    build = config.image.build
    return ImageBuild(context=build.context, dockerfile=build.dockerfile,
                      repository=build.repository,
                      tag=context_digest(repo_file(build.context), build.dockerfile),
                      platform=build.platform)


def callers(config: GoServiceConfig, environment: EnvironmentSettings) -> list[Caller]:
    """The declared callers, plus the environment's ingress controller when the service is
    exposed and its Prometheus when monitoring is on: one source, the environment's outputs."""
    found = [Caller(namespace=c.namespace, pod_labels=c.pod_labels) for c in config.callers]
    if config.expose:
        found.append(Caller(namespace=environment.ingress.namespace,
                            pod_labels=environment.ingress.pod_labels))
    if environment.monitoring.enabled:
        found.append(Caller(namespace=environment.monitoring.namespace,
                            pod_labels=environment.monitoring.prometheus_pod_labels))
    return found


def signals(name: str, namespace: str, config: GoServiceConfig) -> ServiceSignals:
    monitoring = config.monitoring
    return ServiceSignals(
        service=name, namespace=namespace,
        metric_prefix=monitoring.metric_prefix or name.replace("-", "_"),
        availability=config.slo.availability,
        latency_p99_seconds=config.slo.latency_p99_ms / 1000,
        route_latency_p99_seconds={route: ms / 1000
                                   for route, ms in config.slo.route_latency_p99_ms.items()},
        excluded_paths=[config.probes.liveness_path, config.probes.readiness_path,
                        config.probes.startup_path, monitoring.metrics_path],
        circuit_breaker=monitoring.circuit_breaker,
        outbound_calls=monitoring.outbound_calls,
        cpu_target_utilization=config.scaling.target_cpu_utilization)


def exposure(config: GoServiceConfig, environment: EnvironmentSettings) -> Exposure | None:
    """The public host of an exposed service: its subdomain under the environment's domain."""
    if not config.expose:
        return None
    expose = config.expose
    return Exposure(host=f"{expose.subdomain}.{environment.base_domain}", path=expose.path,
                    ingress_class=environment.ingress.class_name,
                    tls_secret=expose.tls_secret, cluster_issuer=expose.cluster_issuer)


def monitoring(name: str, config: GoServiceConfig,
               environment: EnvironmentSettings) -> Monitoring | None:
    """Scraping, alerts and the dashboard, when the environment runs monitoring."""
    if not environment.monitoring.enabled:
        return None
    return Monitoring(
        signals=signals(name, environment.namespace, config),
        metrics_path=config.monitoring.metrics_path,
        scrape_interval=config.monitoring.scrape_interval,
        runbooks_url=environment.monitoring.runbooks_url,
        custom_alerts=[CustomAlert(alert=a.alert, expr=a.expr, for_=a.for_, severity=a.severity,
                                   summary=a.summary) for a in config.monitoring.alerts],
        resource_labels=environment.monitoring.resource_labels,
        dashboard_labels=environment.monitoring.dashboard_labels)


def canary_release(config: GoServiceConfig) -> CanaryRelease | None:
    """The release `platform rollout` takes through its steps, when the stack file has one: its
    pods carry the canary selector the analysis reads their series by."""
    release = config.canary.release
    if release is None:
        return None
    return CanaryRelease(image=release.image, weight=release.weight,
                         pod_labels={**CANARY_POD_LABELS, **config.canary.selector})


def service_args(name: str, config: GoServiceConfig, environment: EnvironmentSettings,
                 labels: dict[str, str]) -> GoServiceArgs:
    """The component's args: the config model's values, with what the environment decides."""
    scaling, probes, shutdown, files = config.scaling, config.probes, config.shutdown, config.files
    return GoServiceArgs(
        namespace=environment.namespace, image=_image(config), port=config.port,
        min_replicas=scaling.min_replicas, max_replicas=scaling.max_replicas,
        target_cpu_utilization=scaling.target_cpu_utilization,
        min_available=config.min_available,
        requests=config.resources.requests.model_dump(),
        limits=config.resources.limits.model_dump(),
        liveness_path=probes.liveness_path, readiness_path=probes.readiness_path,
        startup_path=probes.startup_path,
        drain_seconds=shutdown.drain_seconds, shutdown_timeout_seconds=shutdown.timeout_seconds,
        env=config.env,
        secret_env={k: pulumi.Output.secret(reveal(v)) for k, v in config.secret_env.items()},
        files={file_name: repo_file(path).read_text()
               for file_name, path in (files.sources.items() if files else ())},
        files_mount_path=files.mount_path if files else None,
        callers=callers(config, environment),
        peers=[Peer(ports=p.ports, namespace=p.namespace, pod_labels=p.pod_labels, cidr=p.cidr,
                    except_cidrs=p.except_cidrs) for p in config.peers],
        automount_service_account_token=config.service_account_token,
        service_type=config.service_type,
        service_source_ranges=config.service_source_ranges,
        label_domain=environment.label_domain, labels=labels,
        exposure=exposure(config, environment),
        monitoring=monitoring(name, config, environment),
        canary=canary_release(config))


async def build(stack: StackName, config: GoServiceConfig) -> dict[str, Any]:
    environment = await read_environment(stack, config.organization)
    providers = [kubernetes_provider(stack, environment.kubernetes_context)]
    if config.image.build is not None:
        providers.append(docker_provider(stack))
    name = config.name or stack.component
    labels = {f"{environment.label_domain}/environment": stack.env}
    args = service_args(name, config, environment, labels)
    service = GoService(name, args, opts=pulumi.ResourceOptions(providers=providers))
    host = f"{name}.{environment.namespace}.svc.cluster.local"
    public = ({"public_host": args.exposure.host, "public_url": service.public_url}
              if args.exposure else {})
    return {
        **environment.forwarded,
        "environment": stack.env,
        "namespace": environment.namespace,
        "service": name,
        "service_host": host,
        "service_port": config.port,
        "service_url": f"http://{host}:{config.port}",
        "image": service.image,
        "min_replicas": config.scaling.min_replicas,
        "max_replicas": config.scaling.max_replicas,
        "min_available": config.min_available,
        "termination_grace_period_seconds": args.termination_grace_period_seconds,
        "monitoring": environment.monitoring.enabled,
        **public,
    }
