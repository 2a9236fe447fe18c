"""A stack's rollout analysis: its `platform:canary` and its SLO, as the program's own config
models read them, turned into the questions asked of Prometheus."""
from __future__ import annotations

from urllib.parse import urlsplit

from infra.config.canary import Canary
from ops.errors import OpsError
from ops.project import Project, StackInfo
from ops.rollout.analysis import Analyser, Prometheus, checks
from ops.stack_config import validated


def analyser_for(project: Project, info: StackInfo, prometheus_url: str,
                 canary: Canary | None = None) -> tuple[Canary, Analyser]:
    """The stack's canary settings (or `canary`) and the analyser of its new version's series:
    the service's own name and its environment's namespace, as the program deploys them."""
    if info.kind != "go-service":
        raise OpsError(f"stack '{info.name}': `platform rollout` analyses a Go service's own "
                       f"series in Prometheus; '{info.name}' is a {info.kind} stack (a Worker's "
                       f"versions are not in Prometheus: see docs/rollouts.md)")
    if urlsplit(prometheus_url).scheme not in ("http", "https") or not urlsplit(prometheus_url).netloc:
        raise OpsError(f"stack '{info.name}': --prometheus {prometheus_url!r} is not an http(s) URL "
                       f"(for example http://prometheus.monitoring:9090)")
    # The program's modules: loaded only when used.
    from infra.go_service_stack import signals

    config = validated(project, info)
    environment = validated(project, project.stack(info.env))
    canary = canary or config.canary
    service = signals(config.name or info.component, environment.namespace, config)
    requests, found = checks(service, canary.selector, canary.window_seconds, canary.max_burn_rate)
    return canary, Analyser(Prometheus(prometheus_url), requests, found, canary.min_requests,
                            canary.window_seconds)
