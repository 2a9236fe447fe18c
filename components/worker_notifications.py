"""WorkerNotifications: the Cloudflare notification policies that tell a Worker's owners it fails.

What Cloudflare offers (provider v6.23.1, `NotificationPolicy` of an account, by e-mail, webhook
or PagerDuty): no alert type is about one Worker, and none can be narrowed to one. The nearest,
`http_alert_edge_error` (the edge 5xx error rate judged against an SLO by burn rate over 1 h and
5 m), takes only two filters, `zones` and `slo`: it covers every host of the zone, the Worker's
routes among them. `failing_logpush_job_disabled_alert` (Cloudflare disabled a Logpush job that
kept failing) takes none: it covers every Logpush job of the account. Both are therefore
policies of the zone and of the account, named and described so, and one stack per zone must
own them: two Worker stacks of one zone (staging and production share example.com) that both
declared them would mail every zone-wide 5xx twice. `tests/test_worker_observability.py` holds
the repository to that.
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
    zone_name: str
    emails: Sequence[str]
    edge_error_slo: str  # e.g. "99.9"
    logpush: bool = False


class WorkerNotifications(pulumi.ComponentResource):
    """The zone's edge 5xx error-rate policy, and the account's Logpush-failure policy."""

    def __init__(self, name: str, args: WorkerNotificationsArgs,
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("platform:worker_notifications:WorkerNotifications", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        mechanisms = cloudflare.NotificationPolicyMechanismsArgs(
            emails=[cloudflare.NotificationPolicyMechanismsEmailArgs(id=email)
                    for email in args.emails])
        cloudflare.NotificationPolicy(
            f"{name}-edge-errors", account_id=args.account_id,
            name=f"zone {args.zone_name}: edge 5xx errors",
            description=(f"5xx answers at the edge of every host of zone {args.zone_name} (the "
                         f"routes of {name} among them) burn its {args.edge_error_slo}% SLO; "
                         "Cloudflare cannot narrow this alert to one Worker"),
            alert_type="http_alert_edge_error", enabled=True, mechanisms=mechanisms,
            filters=cloudflare.NotificationPolicyFiltersArgs(zones=[args.zone_id],
                                                             slos=[args.edge_error_slo]),
            opts=child)
        if args.logpush:
            cloudflare.NotificationPolicy(
                f"{name}-logpush-disabled", account_id=args.account_id,
                name="account: a Logpush job disabled",
                description=("Cloudflare disabled a Logpush job of the account that kept failing "
                             f"(the trace events of {name} are pushed by one); this alert has no "
                             "filter, so it covers every Logpush job of the account"),
                alert_type="failing_logpush_job_disabled_alert", enabled=True,
                mechanisms=mechanisms, opts=child)
        self.register_outputs({})
