"""`<component>.<env>` stacks of kind go-service: one GoService in the environment's namespace."""
from __future__ import annotations

from typing import Any

import pulumi

from components.go_service import Caller, GoService, GoServiceArgs, ImageBuild, Peer
from infra.build_context import context_digest
from infra.config.common import repo_file
from infra.config.go_service import GoServiceConfig
from infra.config.loader import reveal
from infra.environment_ref import read_environment
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


async def build(stack: StackName, config: GoServiceConfig) -> dict[str, Any]:
    environment = await read_environment(stack, config.organization)
    providers = [kubernetes_provider(stack, environment.kubernetes_context)]
    if config.image.build is not None:
        providers.append(docker_provider(stack))
    name = config.name or stack.component
    args = GoServiceArgs(
        namespace=environment.namespace,
        image=_image(config),
        port=config.port,
        min_replicas=config.scaling.min_replicas,
        max_replicas=config.scaling.max_replicas,
        target_cpu_utilization=config.scaling.target_cpu_utilization,
        min_available=config.min_available,
        requests=config.resources.requests.model_dump(),
        limits=config.resources.limits.model_dump(),
        liveness_path=config.probes.liveness_path,
        readiness_path=config.probes.readiness_path,
        startup_path=config.probes.startup_path,
        drain_seconds=config.shutdown.drain_seconds,
        shutdown_timeout_seconds=config.shutdown.timeout_seconds,
        env=config.env,
        secret_env={k: pulumi.Output.secret(reveal(v)) for k, v in config.secret_env.items()},
        files={file_name: repo_file(path).read_text()
               for file_name, path in (config.files.sources.items() if config.files else ())},
        files_mount_path=config.files.mount_path if config.files else None,
        callers=[Caller(namespace=c.namespace, pod_labels=c.pod_labels) for c in config.callers],
        peers=[Peer(ports=p.ports, namespace=p.namespace, pod_labels=p.pod_labels, cidr=p.cidr,
                    except_cidrs=p.except_cidrs) for p in config.peers],
        automount_service_account_token=config.service_account_token,
        label_domain=environment.label_domain,
        labels={f"{environment.label_domain}/environment": stack.env})
    service = GoService(name, args, opts=pulumi.ResourceOptions(providers=providers))
    host = f"{name}.{environment.namespace}.svc.cluster.local"
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
    }
