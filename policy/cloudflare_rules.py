"""Rules for Cloudflare Workers: a pinned runtime, no secret in plain text, routes in the
environment's zone. Types and property names are those of the Cloudflare provider (v6)."""
from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable

from policy import stack_context

ReportViolation = Callable[..., None]
WORKER_VERSION = "cloudflare:index/workerVersion:WorkerVersion"
WORKER_SCRIPT = "cloudflare:index/workersScript:WorkersScript"
ROUTE = "cloudflare:index/workersRoute:WorkersRoute"
CUSTOM_DOMAIN = "cloudflare:index/workersCustomDomain:WorkersCustomDomain"

SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|PRIVATE|CREDENTIAL|API_?KEY|AUTH)",
                         re.IGNORECASE)
SECRET_PREFIXES = ("sk-", "sk_live_", "ghp_", "gho_", "github_pat_", "xoxb-", "xoxp-", "AKIA",
                   "AIza", "eyJ", "-----BEGIN")
TOKEN_LIKE = re.compile(r"^[A-Za-z0-9+/_=.-]{24,}$")
MIN_TOKEN_ENTROPY_BITS = 3.5  # per character; words and URLs stay well below, keys above


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def looks_secret(name: str, value: object) -> str | None:
    """Why a plain-text binding looks like a secret, or None."""
    text = value if isinstance(value, str) else ""
    if SECRET_NAME.search(name):
        return f"its name '{name}' says it holds a secret"
    if text.startswith(SECRET_PREFIXES):
        return "its value starts like a credential"
    if TOKEN_LIKE.match(text) and _entropy(text) >= MIN_TOKEN_ENTROPY_BITS:
        return "its value looks like a random token"
    return None


def compatibility_date(args, report: ReportViolation) -> None:
    """A Worker pins its runtime behaviour with a compatibility date."""
    if args.resource_type in (WORKER_VERSION, WORKER_SCRIPT) \
            and not args.props.get("compatibilityDate"):
        report(f"Worker '{args.name}' sets no compatibilityDate: the runtime's behaviour would "
               "change under it")


def no_secret_in_plain_text(args, report: ReportViolation) -> None:
    """Bindings of type plain_text are readable by anyone who can read the Worker's settings:
    a secret belongs in a secret_text binding."""
    for resource in args.resources:
        if resource.resource_type not in (WORKER_VERSION, WORKER_SCRIPT):
            continue
        for binding in resource.props.get("bindings") or []:
            if binding.get("type") != "plain_text":
                continue
            reason = looks_secret(binding.get("name", ""), binding.get("text"))
            if reason:
                report(f"plain-text binding '{binding.get('name')}' of '{resource.name}' looks "
                       f"like a secret ({reason}): bind it as secret_text", resource.urn)


def routes_in_environment_zone(args, report: ReportViolation) -> None:
    """Routes and custom domains live in the zone of the stack's environment (the environment
    stack's `cloudflare_zone_name` and `cloudflare_zone_id` outputs)."""
    routed = [r for r in args.resources if r.resource_type in (ROUTE, CUSTOM_DOMAIN)]
    if not routed:
        return
    environment = stack_context.environment_outputs(args.resources) or {}
    zone, zone_id = environment.get("cloudflare_zone_name"), environment.get("cloudflare_zone_id")
    if not zone or not zone_id:
        for resource in routed:
            report(f"'{resource.name}': the stack passes on no environment zone (its "
                   "`environment_cloudflare_zone_name` and `environment_cloudflare_zone_id` outputs)",
                   resource.urn)
        return
    for resource in routed:
        if resource.resource_type == ROUTE:
            pattern = resource.props.get("pattern") or ""
            host = pattern.split("/", 1)[0].removeprefix("*.")
        else:
            host = resource.props.get("hostname") or ""
        if host != zone and not host.endswith("." + zone):
            report(f"'{resource.name}' serves '{host}', outside the {zone} zone of this "
                   "environment", resource.urn)
        if resource.props.get("zoneId") != zone_id:
            report(f"'{resource.name}' is placed in zone id {resource.props.get('zoneId')}, not "
                   f"this environment's {zone_id}", resource.urn)
