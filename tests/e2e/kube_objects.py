"""Reading our objects back from the API server and comparing them with the offline render."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tools.cluster.kube import ApiError, Kube, path_for

# Values the render cannot know (see offline/render.py).
PLACEHOLDERS = {"[secret]", "[unknown]"}

_QUANTITY = re.compile(r"^([+-]?[0-9.]+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")
_SUFFIX = {None: 1, "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "k": 10**3, "M": 10**6,
           "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30,
           "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}


def quantity(value: Any) -> Decimal | None:
    match = _QUANTITY.match(str(value))
    if not match:
        return None
    return Decimal(match.group(1)) * _SUFFIX[match.group(2)]


def differences(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Where `actual` (what the server holds) differs from `expected` (the render).

    Every field of the render must be on the server with the same value; fields the
    server adds (defaults, status, metadata it fills in) are not differences.
    """
    if isinstance(expected, str) and expected in PLACEHOLDERS:
        return []
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected an object, server has {actual!r}"]
        out = []
        for key, value in expected.items():
            if key not in actual:
                if value in (None, {}, []):
                    continue
                out.append(f"{path}.{key}: missing on the server (render: {value!r})")
            else:
                out.extend(differences(value, actual[key], f"{path}.{key}"))
        return out
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{path}: render {expected!r} != server {actual!r}"]
        out = []
        for i, (e, a) in enumerate(zip(expected, actual)):
            out.extend(differences(e, a, f"{path}[{i}]"))
        return out
    if expected == actual:
        return []
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)) and expected == actual:
        return []
    if quantity(expected) is not None and quantity(expected) == quantity(actual):
        return []
    return [f"{path}: render {expected!r} != server {actual!r}"]


def object_path(obj: dict) -> str:
    meta = obj.get("metadata", {})
    return path_for(obj["apiVersion"], obj["kind"], meta.get("name"), meta.get("namespace"))


def resource_versions(kube: Kube, objects: list[dict]) -> dict[str, str]:
    return {object_path(o): kube.get(object_path(o))["metadata"]["resourceVersion"] for o in objects}


def wait_for(what: str, check, timeout: float = 90, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except ApiError as err:
            last = err
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def deployment_rolled_out(kube: Kube, namespace: str, name: str, replicas: int | None = None) -> dict | None:
    """The Deployment once every replica runs the current template and is ready."""
    dep = kube.get(path_for("apps/v1", "Deployment", name, namespace))
    spec, status = dep["spec"], dep.get("status", {})
    want = replicas if replicas is not None else spec.get("replicas", 1)
    done = (status.get("observedGeneration", 0) >= dep["metadata"]["generation"]
            and spec.get("replicas") == want
            and status.get("replicas") == want
            and status.get("updatedReplicas") == want
            and status.get("readyReplicas") == want
            and status.get("availableReplicas") == want)
    return dep if done else None


def hpa_min(kube: Kube, namespace: str, name: str) -> int:
    """The autoscaler's minimum replica count of a service, as the cluster holds it."""
    return kube.get(path_for("autoscaling/v2", "HorizontalPodAutoscaler", name, namespace))["spec"]["minReplicas"]


def ready_pods(kube: Kube, namespace: str, selector: dict[str, str]) -> list[dict]:
    label_selector = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
    pods = kube.get(f"/api/v1/namespaces/{namespace}/pods", labelSelector=label_selector)["items"]
    return [p for p in pods if p.get("metadata", {}).get("deletionTimestamp") is None and any(
        c["type"] == "Ready" and c["status"] == "True" for c in p.get("status", {}).get("conditions", []))]


@dataclass
class RolloutWatch:
    """Samples a Deployment's ready replicas in the background while an update runs."""

    kube: Kube
    namespace: str
    name: str
    interval: float = 0.1
    samples: list[tuple[int, int, int]] = field(default_factory=list)  # (desired, ready, available)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> "RolloutWatch":
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        path = path_for("apps/v1", "Deployment", self.name, self.namespace)
        while not self._stop.is_set():
            try:
                dep = self.kube.get(path)
                status = dep.get("status", {})
                self.samples.append((dep["spec"].get("replicas", 1), status.get("readyReplicas", 0),
                                     status.get("availableReplicas", 0)))
            except (ApiError, OSError):
                pass
            self._stop.wait(self.interval)
