"""Where pods hide in Kubernetes objects as the engine sees them (camelCase inputs), and how a
label selector picks them."""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

# Resource type -> path from the object to its pod template (empty: the object is a pod).
POD_TEMPLATES: dict[str, tuple[str, ...]] = {
    "kubernetes:core/v1:Pod": (),
    "kubernetes:core/v1:ReplicationController": ("spec", "template"),
    "kubernetes:apps/v1:Deployment": ("spec", "template"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template"),
    "kubernetes:batch/v1:Job": ("spec", "template"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template"),
}
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
SERVICE = "kubernetes:core/v1:Service"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"


def _at(value: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def pod_template(resource_type: str, props: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The pod (metadata and spec) an object runs, or None if it runs none."""
    if resource_type not in POD_TEMPLATES:
        return None
    template = _at(props, POD_TEMPLATES[resource_type])
    return template if isinstance(template, Mapping) else None


def pod_spec(resource_type: str, props: Mapping[str, Any]) -> Mapping[str, Any] | None:
    template = pod_template(resource_type, props)
    spec = template.get("spec") if template else None
    return spec if isinstance(spec, Mapping) else None


def pod_labels(resource_type: str, props: Mapping[str, Any]) -> Mapping[str, str]:
    return _at(pod_template(resource_type, props) or {}, ("metadata", "labels")) or {}


def containers(spec: Mapping[str, Any], init: bool = True) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(kind, container) for every container of a pod spec: `container` or `init container`."""
    for key, kind in (("containers", "container"), ("initContainers", "init container")):
        if key == "initContainers" and not init:
            continue
        for container in spec.get(key) or []:
            if isinstance(container, Mapping):
                yield kind, container


def namespace_of(props: Mapping[str, Any]) -> str | None:
    return _at(props, ("metadata", "namespace"))


def name_of(props: Mapping[str, Any], fallback: str) -> str:
    return _at(props, ("metadata", "name")) or fallback


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Whether a label selector (matchLabels and matchExpressions) picks these labels. An empty
    selector picks everything, as Kubernetes has it for pod selectors."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key"), expression.get("operator")
        values = expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True
