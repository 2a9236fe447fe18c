"""WorkerNotifications: the Cloudflare notification policies that tell a Worker's owners it fails.

What the Cloudflare provider (v6.23.1) offers: a `NotificationPolicy` of an account, for one of
Cloudflare's alert types, sent by e-mail, webhook or PagerDuty. None of its alert types is about
one Worker's errors; the nearest is `http_alert_edge_error`, the zone's edge 5xx error rate judged
against an SLO by burn rate over 1 h and 5 m, which covers the Worker's routes in that zone (and
every other host of the zone). A Worker that pushes its logs also gets
`failing_logpush_job_disabled_alert`, sent when Cloudflare disables a Logpush job that keeps
failing, so that missing logs do not go unnoticed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import pulumi_cloudflare as cloudflare


@dataclass(frozen=True)
class WorkerNotificationsArgs:
    account_id: pulumi.Input[str]
    zone_id: pulumi.Input[str]
    emails: Sequence[str]
    edge_error_slo: str  # e.g. "99.9"
    logpush: bool = False


class WorkerNotifications(pulumi.ComponentResource):
    """Edge 5xx error-rate notifications for the Worker's zone, and Logpush failure ones."""

    def __init__(self, name: str, args: WorkerNotificationsArgs,
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("platform:worker_notifications:WorkerNotifications", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        mechanisms = cloudflare.NotificationPolicyMechanismsArgs(
            emails=[cloudflare.NotificationPolicyMechanismsEmailArgs(id=email)
                    for email in args.emails])
        cloudflare.NotificationPolicy(
            f"{name}-edge-errors", account_id=args.account_id, name=f"{name}: edge 5xx errors",
            description=f"5xx answers in the zone of {name} burn its {args.edge_error_slo}% SLO",
            alert_type="http_alert_edge_error", enabled=True, mechanisms=mechanisms,
            filters=cloudflare.NotificationPolicyFiltersArgs(zones=[args.zone_id],
                                                             slos=[args.edge_error_slo]),
            opts=child)
        if args.logpush:
            cloudflare.NotificationPolicy(
                f"{name}-logpush-disabled", account_id=args.account_id,
                name=f"{name}: Logpush job disabled",
                description=f"Cloudflare disabled a failing Logpush job (the logs of {name})",
                alert_type="failing_logpush_job_disabled_alert", enabled=True,
                mechanisms=mechanisms, opts=child)
        self.register_outputs({})
