"""A minimal Kubernetes API client over the standard library (no kubectl here).

It speaks JSON to the API server with the admin client certificate the local
cluster generates; enough to create the fake node, wait for readiness, and
read back and change objects in the end-to-end tests.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class ApiError(Exception):
    def __init__(self, status: int, method: str, path: str, body: str):
        self.status = status
        self.body = body
        try:
            self.reason = json.loads(body).get("message", body)
        except ValueError:
            self.reason = body
        super().__init__(f"{method} {path}: HTTP {status}: {self.reason}")


@dataclass(frozen=True)
class Credentials:
    server: str  # https://127.0.0.1:PORT
    ca_file: Path
    cert_file: Path
    key_file: Path


class Kube:
    def __init__(self, credentials: Credentials, timeout: float = 10.0):
        self.credentials = credentials
        self.timeout = timeout
        self._context = ssl.create_default_context(cafile=str(credentials.ca_file))
        self._context.load_cert_chain(str(credentials.cert_file), str(credentials.key_file))

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        query: dict[str, str] | None = None,
    ) -> Any:
        url = self.credentials.server + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, context=self._context, timeout=self.timeout) as resp:  # nosec B310 -- the kubeconfig's https API server
                raw = resp.read().decode()
        except urllib.error.HTTPError as err:
            raise ApiError(err.code, method, path, err.read().decode()) from None
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
