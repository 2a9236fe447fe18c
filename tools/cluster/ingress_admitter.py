"""The local cluster's stand-in ingress controller: `python -m tools.cluster.ingress_admitter`.

The Kubernetes provider does not call an Ingress created until a controller has admitted it,
i.e. written an address into `.status.loadBalancer.ingress`. That wait stays on for real
deployments (components/service_ingress.py says why), and the local control plane runs no
ingress controller, so `pulumi up` of an exposed service would wait ten minutes and fail.

This process does the one part of a controller's job the API shows: like ingress-nginx
publishing its Service's address, it writes an address into the status of every Ingress that
has none. It routes no traffic: what the local cluster proves is that the API server accepts the
Ingress the program renders and that `up` completes once a controller admits it.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .kube import ApiError, Kube

INGRESSES = "/apis/networking.k8s.io/v1/ingresses"
ADDRESS = "127.0.0.1"


def admit_pending(kube: Kube, address: str = ADDRESS) -> list[str]:
    """Give every Ingress without an address this one; the `namespace/name` of each admitted."""
    admitted = []
    for ingress in kube.get(INGRESSES)["items"]:
        if ((ingress.get("status") or {}).get("loadBalancer") or {}).get("ingress"):
            continue
        meta = ingress["metadata"]
        kube.merge_patch(f"/apis/networking.k8s.io/v1/namespaces/{meta['namespace']}/ingresses/"
                         f"{meta['name']}/status",
                         {"status": {"loadBalancer": {"ingress": [{"ip": address}]}}})
        admitted.append(f"{meta['namespace']}/{meta['name']}")
    return admitted


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.cluster.ingress_admitter",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", type=Path, required=True,
                        help="the cluster's admin kubeconfig (context `local`)")
    parser.add_argument("--interval", type=float, default=0.5)
    args = parser.parse_args(argv)
    kube = Kube(args.kubeconfig, context="local")
    while True:
        try:
            for name in admit_pending(kube):
                print(f"ingress-admitter: admitted {name} at {ADDRESS}", flush=True)
        except (ApiError, OSError) as error:  # the API server busy or restarting: next tick
            print(f"ingress-admitter: {error}", flush=True)
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
