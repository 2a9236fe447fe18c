"""A stack's rollout analysis: its `platform:canary` and its SLO, as the program's own config
models read them, turned into the questions asked of its analysis source: a Go service's new
version's own series in Prometheus, a Worker's new version's invocations in Cloudflare's
analytics."""
from __future__ import annotations

import os
from collections.abc import Callable
from urllib.parse import urlsplit

from infra.config.canary import CanarySteps
from infra.stacks import StackName
from ops.errors import OpsError
from ops.project import Project, StackInfo
from ops.rollout.analysis import Analyser, Prometheus, checks
from ops.rollout.controller import Analyses
from ops.rollout.worker_analytics import (
    GRAPHQL_URL,
    CloudflareAnalytics,
    WorkerAnalyser,
    worker_checks,
)
from ops.stack_config import validated

# The Cloudflare provider's credentials (infra/providers.py): the variable's name, not a token.
TOKEN_VARIABLE = "CLOUDFLARE_API_TOKEN"  # nosec B105 -- the name of an environment variable


def _is_http(url: str) -> bool:
    return urlsplit(url).scheme in ("http", "https") and bool(urlsplit(url).netloc)


def analyser_for(project: Project, info: StackInfo, prometheus_url: str | None,
                 canary: CanarySteps | None = None, *, analytics_url: str | None = None,
                 version: Callable[[], str | None] | None = None) -> tuple[CanarySteps, Analyses]:
    """The stack's canary settings (or `canary`) and the analyser of its new version, by the
    stack's kind: a Go service's series in Prometheus (`prometheus_url`), a Worker's invocations
    in Cloudflare's analytics (`analytics_url`, Cloudflare's own API unless given; `version`:
    the new version's id when asked, ops.rollout.worker_split.WorkerSplit.new_version)."""
    if info.kind == "cloudflare-worker":
        return _worker_analyser(project, info, prometheus_url, analytics_url, canary, version)
    if info.kind != "go-service":
        raise OpsError(f"stack '{info.name}': `platform rollout` takes a Go service's or a "
                       f"Worker's new version through its steps; '{info.name}' is a {info.kind} "
                       f"stack")
    if analytics_url is not None:
        raise OpsError(f"stack '{info.name}': --analytics is a Worker's analysis source; a Go "
                       f"service's new version is judged by its series in Prometheus "
                       f"(--prometheus URL)")
    if prometheus_url is None:
        raise OpsError(f"stack '{info.name}': a Go service's new version is judged by its own "
                       f"series in Prometheus: pass --prometheus URL (for example "
                       f"http://prometheus.monitoring:9090)")
    if not _is_http(prometheus_url):
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


def _worker_analyser(project: Project, info: StackInfo, prometheus_url: str | None,
                     analytics_url: str | None, canary: CanarySteps | None,
                     version: Callable[[], str | None] | None) -> tuple[CanarySteps, Analyses]:
    if prometheus_url is not None:
        raise OpsError(f"stack '{info.name}': a Worker's versions are not in Prometheus; its new "
                       f"version is judged by its invocations in Cloudflare's analytics (drop "
                       f"--prometheus; --analytics URL only to ask another endpoint than "
                       f"Cloudflare's own)")
    url = analytics_url or GRAPHQL_URL
    if not _is_http(url):
        raise OpsError(f"stack '{info.name}': --analytics {url!r} is not an http(s) URL (for "
                       f"example https://api.cloudflare.com/client/v4/graphql, Cloudflare's own)")
    token = os.environ.get(TOKEN_VARIABLE, "").strip()
    if not token:
        raise OpsError(f"stack '{info.name}': CLOUDFLARE_API_TOKEN is not set: a Worker's rollout "
                       f"reads its new version's invocations from Cloudflare's analytics with "
                       f"the API token the stack is deployed with (it needs Account Analytics: "
                       f"Read); nothing was changed")
    config = validated(project, info)
    environment = validated(project, project.stack(info.env))
    canary = canary or config.canary
    script_name = _script_name(info)
    found = worker_checks(config.availability, canary.max_burn_rate, canary.wall_time_p99_ms)
    analytics = CloudflareAnalytics(token, environment.cloudflare.account_id, url)
    return canary, WorkerAnalyser(analytics, script_name, version or (lambda: None), found,
                                  canary.min_requests, canary.window_seconds)


def _script_name(info: StackInfo) -> str:
    from infra import naming

    return naming.worker_script_name(StackName(env=info.env, component=info.component))
