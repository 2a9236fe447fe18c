"""Rules for Kubernetes objects: pinned images, resources and probes, least privilege, exposure,
isolation and disruption. Each is a validation function the pack wraps in a policy; resource
validations take `ResourceValidationArgs`, stack validations `StackValidationArgs`."""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from policy import stack_context
from policy.images import allowed_by
from policy.quantities import quantity
from policy.workloads import (
    DEPLOYMENT,
    HPA,
    NETWORK_POLICY,
    PDB,
    SERVICE,
    containers,
    name_of,
    namespace_of,
    pod_labels,
    pod_spec,
    selects,
)

ReportViolation = Callable[..., None]
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
PROBES = ("readinessProbe", "livenessProbe", "startupProbe")
HOST_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC")


def _each_container(args):
    spec = pod_spec(args.resource_type, args.props)
    yield from containers(spec) if spec is not None else ()


def _describe(kind: str, container: Mapping[str, Any]) -> str:
    return f"{kind} '{container.get('name', '?')}'"


def _image_pinned(args, report: ReportViolation) -> None:
    for kind, container in _each_container(args):
        image = container.get("image") or ""
        if not DIGEST.search(image):
            report(f"{_describe(kind, container)} runs '{image}', not an image pinned by digest "
                   "(repository@sha256:<64 hex digits>): a tag can be moved to other code")


def images_pinned_in_production(args, report: ReportViolation) -> None:
    """Mandatory in production stacks."""
    if stack_context.is_production(args.urn):
        _image_pinned(args, report)


def images_pinned_outside_production(args, report: ReportViolation) -> None:
    """Advisory in every other environment (staging may try a tag)."""
    if not stack_context.is_production(args.urn):
        _image_pinned(args, report)


def _images_from_allowed_registries(args, report: ReportViolation, production: bool) -> None:
    """Each container's image comes from a registry the environment allows (the environment
    stack's `images` output, passed on as `environment_images`)."""
    workloads = [r for r in args.resources
                 if stack_context.is_production(r.urn) == production
                 and pod_spec(r.resource_type, r.props) is not None]
    if not workloads:
        return
    images = (stack_context.environment_outputs(args.resources) or {}).get("images")
    registries = images.get("registries") if isinstance(images, Mapping) else None
    for workload in workloads:
        env = stack_context.environment_of(workload.urn)
        kind = workload.resource_type.rsplit(":", 1)[-1]
        for container_kind, container in containers(pod_spec(workload.resource_type, workload.props)):
            image = container.get("image") or ""
            where = f"{kind} '{name_of(workload.props, workload.name)}' {_describe(container_kind, container)}"
            if not registries:
                if production:
                    report(f"{where} runs '{image}', but environment '{env}' allows no registry: "
                           f"set platform:images.registries in Pulumi.{env}.yaml (and redeploy "
                           f"'{env}', which passes it on to its components)", workload.urn)
                continue
            if not allowed_by(image, registries):
                report(f"{where} runs '{image}', from a registry environment '{env}' does not "
                       f"allow (platform:images.registries: {', '.join(registries)}): push it "
                       f"to one of them and set that digest (`platform promote`)", workload.urn)


def images_from_allowed_registries_in_production(args, report: ReportViolation) -> None:
    """Mandatory in production stacks."""
    _images_from_allowed_registries(args, report, production=True)


def images_from_allowed_registries(args, report: ReportViolation) -> None:
    """Advisory in every other environment that declares its registries."""
    _images_from_allowed_registries(args, report, production=False)


def requests_limits_and_probes(args, report: ReportViolation) -> None:
    for kind, container in _each_container(args):
        resources = container.get("resources") or {}
        for bound in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if not (resources.get(bound) or {}).get(resource):
                    report(f"{_describe(kind, container)} sets no {resource} {bound}")
        if kind == "container":  # init containers cannot have probes
            for probe in PROBES:
                if not container.get(probe):
                    report(f"{_describe(kind, container)} has no {probe}")


def least_privilege(args, report: ReportViolation) -> None:
    spec = pod_spec(args.resource_type, args.props)
    if spec is None:
        return
    pod_context = spec.get("securityContext") or {}
    for field in HOST_NAMESPACES:
        if spec.get(field):
            report(f"the pod sets {field}: it would share the node's namespace")
    for volume in spec.get("volumes") or []:
        if isinstance(volume, Mapping) and volume.get("hostPath"):
            report(f"volume '{volume.get('name', '?')}' is a hostPath: it would expose the node's "
                   "files")
    for kind, container in containers(spec):
        context = container.get("securityContext") or {}
        who = _describe(kind, container)

        def effective(key: str) -> Any:
            return context.get(key, pod_context.get(key))

        if context.get("privileged"):
            report(f"{who} is privileged")
        if effective("runAsNonRoot") is not True:
            report(f"{who} may run as root: set runAsNonRoot: true")
        if effective("runAsUser") == 0:
            report(f"{who} runs as user 0 (root)")
        if context.get("readOnlyRootFilesystem") is not True:
            report(f"{who} has a writable root filesystem: set readOnlyRootFilesystem: true")
        if context.get("allowPrivilegeEscalation") is not False:
            report(f"{who} allows privilege escalation: set allowPrivilegeEscalation: false")
        dropped = (context.get("capabilities") or {}).get("drop") or []
        if "ALL" not in dropped:
            report(f"{who} keeps Linux capabilities: drop ALL")
        if (context.get("capabilities") or {}).get("add"):
            report(f"{who} adds capabilities {list(context['capabilities']['add'])}")
        if (effective("seccompProfile") or {}).get("type") != "RuntimeDefault":
            report(f"{who} has no seccomp profile RuntimeDefault")


def services_are_cluster_ip(args, report: ReportViolation) -> None:
    """ClusterIP unless the stack's config asks for another type (`platform:service_type`)."""
    if args.resource_type != SERVICE:
        return
    service_type = (args.props.get("spec") or {}).get("type") or "ClusterIP"
    allowed = stack_context.stack_config("platform:service_type") or "ClusterIP"
    if service_type != "ClusterIP" and service_type != allowed:
        report(f"Service '{name_of(args.props, args.name)}' is of type {service_type}: it would "
               "be reachable from outside the cluster, and the stack config does not ask for "
               "it (platform:service_type)")


def _kubernetes(args, resource_type: str):
    return [r for r in args.resources if r.resource_type == resource_type]


def deployments_have_a_network_policy(args, report: ReportViolation) -> None:
    """Every Deployment's pods are selected by a NetworkPolicy of the same stack and namespace
    (the environment's default-deny belongs to another stack: a component must say what its
    own pods may do)."""
    policies = _kubernetes(args, NETWORK_POLICY)
    for deployment in _kubernetes(args, DEPLOYMENT):
        labels = pod_labels(deployment.resource_type, deployment.props)
        namespace = namespace_of(deployment.props)
        if not any(namespace_of(p.props) == namespace
                   and selects((p.props.get("spec") or {}).get("podSelector"), labels)
                   for p in policies):
            report(f"Deployment '{name_of(deployment.props, deployment.name)}' has no "
                   "NetworkPolicy of its own stack selecting its pods", deployment.urn)


def _target_deployment(hpa, deployments):
    target = (hpa.props.get("spec") or {}).get("scaleTargetRef") or {}
    for deployment in deployments:
        if (target.get("kind") == "Deployment"
                and name_of(deployment.props, deployment.name) == target.get("name")
                and namespace_of(deployment.props) == namespace_of(hpa.props)):
            return deployment
    return None


def pdb_below_hpa_minimum(args, report: ReportViolation) -> None:
    """A PodDisruptionBudget's minAvailable below the HPA's minReplicas of the pods it covers:
    otherwise no pod could ever be evicted, and node drains would hang."""
    deployments = _kubernetes(args, DEPLOYMENT)
    for hpa in _kubernetes(args, HPA):
        deployment = _target_deployment(hpa, deployments)
        min_replicas = (hpa.props.get("spec") or {}).get("minReplicas") or 1
        if deployment is None:
            continue
        labels = pod_labels(deployment.resource_type, deployment.props)
        for pdb in _kubernetes(args, PDB):
            spec = pdb.props.get("spec") or {}
            if (namespace_of(pdb.props) != namespace_of(deployment.props)
                    or not selects(spec.get("selector"), labels)):
                continue
            min_available = spec.get("minAvailable")
            if isinstance(min_available, str) and min_available.endswith("%"):
                min_available = math.ceil(float(min_available[:-1]) / 100 * min_replicas)
            if min_available is not None and min_available >= min_replicas:
                report(f"PodDisruptionBudget '{name_of(pdb.props, pdb.name)}' keeps "
                       f"minAvailable {_number(min_available)} of HPA "
                       f"'{name_of(hpa.props, hpa.name)}' minReplicas {_number(min_replicas)}: "
                       "no pod could ever be evicted", pdb.urn)


def hpa_within_environment_quota(args, report: ReportViolation) -> None:
    """An HPA's maxReplicas, times the pods' requests and limits, fits in the environment's
    ResourceQuota (the `quota` output of the environment stack the component references); and
    so do all the stack's pods at their most: each HPA's maximum beside the replicas of the
    Deployments no HPA scales (a canary release's)."""
    hpas = _kubernetes(args, HPA)
    if not hpas:
        return
    environment = stack_context.environment_outputs(args.resources)
    quota = (environment or {}).get("quota")
    if not isinstance(quota, Mapping):
        for hpa in hpas:
            report(f"HPA '{name_of(hpa.props, hpa.name)}': the stack passes on no environment quota "
                   "(its `environment_quota` output, the environment stack's `quota`)", hpa.urn)
        return
    deployments = _kubernetes(args, DEPLOYMENT)
    for hpa in hpas:
        max_replicas = quantity((hpa.props.get("spec") or {}).get("maxReplicas") or 0) or 0
        name = name_of(hpa.props, hpa.name)
        pods = quantity(quota.get("pods"))
        if pods is not None and max_replicas > pods:
            report(f"HPA '{name}' may scale to {_number(max_replicas)} pods; the environment "
                   f"quota allows {_number(pods)}", hpa.urn)
        deployment = _target_deployment(hpa, deployments)
        spec = pod_spec(deployment.resource_type, deployment.props) if deployment else None
        for bound in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                allowed = quantity(quota.get(f"{bound}.{resource}"))
                per_pod = sum((quantity(((c.get("resources") or {}).get(bound) or {})
                                        .get(resource, "0")) or 0)
                              for _, c in containers(spec or {}, init=False))
                if allowed is not None and per_pod * max_replicas > allowed:
                    report(f"HPA '{name}' at maxReplicas {_number(max_replicas)} would take "
                           f"{_amount(resource, per_pod * max_replicas)} of {resource} "
                           f"{bound}; the "
                           f"environment quota allows {quota.get(f'{bound}.{resource}')}",
                           hpa.urn)
    _stack_pods_within_quota(hpas, deployments, quota, report)


def _stack_pods_within_quota(hpas, deployments, quota: Mapping, report: ReportViolation) -> None:
    """Every pod of the stack at once, when some Deployment runs beside what the HPAs scale."""
    scaled = {id(_target_deployment(hpa, deployments)): hpa for hpa in hpas}
    fixed = [d for d in deployments if id(d) not in scaled]
    if not fixed:
        return  # each HPA's own check above is the whole of it
    counts = []  # (deployment, pods at most, what says so)
    for deployment in deployments:
        hpa = scaled.get(id(deployment))
        if hpa is not None:
            count = quantity((hpa.props.get("spec") or {}).get("maxReplicas") or 0) or 0
            counts.append((deployment, count, f"HPA '{name_of(hpa.props, hpa.name)}' maxReplicas {_number(count)}"))
        else:
            count = quantity((deployment.props.get("spec") or {}).get("replicas", 1)) or 0
            counts.append((deployment, count, f"Deployment '{name_of(deployment.props, deployment.name)}' "
                                              f"{_number(count)} replicas"))
    said = ", ".join(why for _, _, why in counts)
    where = fixed[0].urn
    pods, total = quantity(quota.get("pods")), sum(count for _, count, _ in counts)
    if pods is not None and total > pods:
        report(f"the stack's pods at their most ({said}) would be {_number(total)}; the "
               f"environment quota allows {_number(pods)}", where)
    for bound in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            allowed = quantity(quota.get(f"{bound}.{resource}"))
            needed = sum(count * sum((quantity(((c.get("resources") or {}).get(bound) or {})
                                               .get(resource, "0")) or 0)
                                     for _, c in containers(pod_spec(d.resource_type, d.props) or {},
                                                            init=False))
                         for d, count, _ in counts)
            if allowed is not None and needed > allowed:
                report(f"the stack's pods at their most ({said}) would take "
                       f"{_amount(resource, needed)} of {resource} {bound}; the environment "
                       f"quota allows {quota.get(f'{bound}.{resource}')}", where)


def _amount(resource: str, value: Any) -> str:
    """CPU in cores, memory in MiB, as an operator writes them."""
    if resource == "memory":
        return f"{_number(float(value) / 2**20)}Mi"
    return _number(value)


def _number(value: Any) -> str:
    """3 rather than 3.0 (numbers cross the engine as floats) or Decimal('3')."""
    try:
        as_float = float(value)
    except (TypeError, ValueError):
        return str(value)
    return str(int(as_float)) if as_float.is_integer() else f"{as_float:g}"
