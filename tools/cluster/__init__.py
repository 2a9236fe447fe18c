"""The local Kubernetes control plane the end-to-end suite runs the real engine against."""

from .cluster import DEFAULT_DIR, Cluster, ClusterError, stop_recorded

__all__ = ["DEFAULT_DIR", "Cluster", "ClusterError", "stop_recorded"]
