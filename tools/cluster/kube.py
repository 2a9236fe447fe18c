"""The e2e suite's Kubernetes client: a thin facade over the official client (`kubernetes`).

Callers speak REST paths (`path_for` builds them for the kinds our stacks use) and JSON
objects: `get`, `create`, `merge_patch`, `delete`, `exists`, `request`. The official client
reads the kubeconfig (server, CA, client certificate) and does the HTTP; API errors become one
`ApiError(status, reason)`, a server that cannot be reached a `ConnectionError` (an OSError),
at once: the callers wait and retry on their own terms.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException


class ApiError(Exception):
    def __init__(self, status: int, method: str, path: str, body: str):
        self.status = status
        self.body = body
        try:
            self.reason = json.loads(body).get("message", body)
        except (ValueError, AttributeError):
            self.reason = body
        super().__init__(f"{method} {path}: HTTP {status}: {self.reason}")


class Kube:
    """A client bound to one kubeconfig context."""

    def __init__(self, kubeconfig: Path, context: str | None = None, timeout: float = 10.0):
        self.timeout = timeout
        configuration = k8s.Configuration()
        k8s_config.load_kube_config(config_file=str(kubeconfig), context=context,
                                    client_configuration=configuration)
        configuration.retries = 0
        self.api = k8s.ApiClient(configuration)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        query: dict[str, str] | None = None,
    ) -> Any:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        try:
            # The raw answer (not a model): callers want the JSON as the API server wrote it.
            response = self.api.call_api(
                path, method, query_params=list((query or {}).items()), header_params=headers,
                body=body, auth_settings=["BearerToken"], _preload_content=False,
                _return_http_data_only=True, _request_timeout=self.timeout)
            raw = response.data.decode()
        except ApiException as err:
            raise ApiError(err.status, method, path, err.body or err.reason or "") from None
        except urllib3.exceptions.HTTPError as err:
            raise ConnectionError(f"{method} {path}: {err}") from None
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw

    def get(self, path: str, **query: str) -> Any:
        return self.request("GET", path, query=query or None)

    def create(self, path: str, obj: dict) -> Any:
        return self.request("POST", path, obj)

    def merge_patch(self, path: str, patch: dict) -> Any:
        return self.request("PATCH", path, patch, content_type="application/merge-patch+json")

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def exists(self, path: str) -> bool:
        try:
            self.get(path)
            return True
        except ApiError as err:
            if err.status == 404:
                return False
            raise


def path_for(api_version: str, kind: str, name: str | None = None, namespace: str | None = None) -> str:
    """The REST path of an object of the built-in kinds our stacks use."""
    plural = {
        "Namespace": "namespaces",
        "ServiceAccount": "serviceaccounts",
        "Service": "services",
        "ConfigMap": "configmaps",
        "Secret": "secrets",  # nosec B105 -- the API resource name
        "ResourceQuota": "resourcequotas",
        "LimitRange": "limitranges",
        "Pod": "pods",
        "Node": "nodes",
        "Deployment": "deployments",
        "ReplicaSet": "replicasets",
        "NetworkPolicy": "networkpolicies",
        "PodDisruptionBudget": "poddisruptionbudgets",
        "HorizontalPodAutoscaler": "horizontalpodautoscalers",
        "Role": "roles",
        "RoleBinding": "rolebindings",
        "ClusterRole": "clusterroles",
        "ClusterRoleBinding": "clusterrolebindings",
        "Ingress": "ingresses",
        "CustomResourceDefinition": "customresourcedefinitions",
        "ServiceMonitor": "servicemonitors",
        "PrometheusRule": "prometheusrules",
    }[kind]
    prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    path = prefix
    if namespace:
        path += f"/namespaces/{namespace}"
    path += f"/{plural}"
    if name:
        path += f"/{name}"
    return path
