"""ServiceMonitoring: how the environment's Prometheus (operator) scrapes one Go service, and
the alert rules it evaluates for it: a ServiceMonitor and a PrometheusRule
(monitoring.coreos.com/v1). Both kinds are the Prometheus operator's CRDs: the cluster must
have them before `pulumi up`, which is why the environment says whether monitoring is on."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

import pulumi
from pulumi_kubernetes.apiextensions import CustomResource
from pulumi_kubernetes.meta.v1 import ObjectMetaArgs

from components.alert_rules import CustomAlert, service_rule_groups
from components.kubernetes_objects import service_metadata
from components.service_signals import ServiceSignals

API_VERSION = "monitoring.coreos.com/v1"


@dataclass(frozen=True)
class ServiceMonitoringArgs:
    namespace: pulumi.Input[str]
    signals: ServiceSignals
    selector: Mapping[str, str]  # the Service's labels the ServiceMonitor selects it by
    port_name: str  # the Service port serving the metrics
    metrics_path: str
    scrape_interval: str
    runbooks_url: str
    custom_alerts: Sequence[CustomAlert] = ()
    labels: Mapping[str, str] = field(default_factory=dict)  # what Prometheus selects by, and ours
    # The job of every series: this label of the selected Services (each Service of the
    # service, a canary's included, carries its name), not each Service's own name.
    job_label: str = "app.kubernetes.io/name"
    pod_target_labels: Sequence[str] = ()  # pod labels copied onto its series (its track)


class ServiceMonitoring(pulumi.ComponentResource):
    """A ServiceMonitor scraping the service's Service, and a PrometheusRule with its alerts."""

    def __init__(self, name: str, args: ServiceMonitoringArgs,
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("platform:service_monitoring:ServiceMonitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        def meta() -> ObjectMetaArgs:
            return service_metadata(name, args.namespace, args.labels)

        CustomResource(f"{name}-service-monitor", api_version=API_VERSION, kind="ServiceMonitor",
                       metadata=meta(), spec={
                           "selector": {"matchLabels": dict(args.selector)},
                           "jobLabel": args.job_label,
                           **({"podTargetLabels": list(args.pod_target_labels)}
                              if args.pod_target_labels else {}),
                           "endpoints": [{"port": args.port_name, "path": args.metrics_path,
                                          "interval": args.scrape_interval, "scheme": "http"}]},
                       opts=child)
        CustomResource(f"{name}-prometheus-rule", api_version=API_VERSION, kind="PrometheusRule",
                       metadata=meta(), spec={"groups": service_rule_groups(
                           args.signals, args.runbooks_url, args.custom_alerts)},
                       opts=child)
        self.register_outputs({})
