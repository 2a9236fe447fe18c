"""python -m tools.cluster up|down|status [--dir DIR] [--timeout SECONDS] [--foreground]

`up` starts the control plane and returns once it is ready, leaving it running
(`--foreground` keeps it in the foreground until interrupted); `down` stops
every process `up` started.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from .cluster import DEFAULT_DIR, Cluster, ClusterError, pid_alive, stop_recorded


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.cluster", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="cluster folder (default: build/cluster)")
    parser.add_argument("--timeout", type=float, default=120.0, help="readiness timeout in seconds")
    parser.add_argument("--foreground", action="store_true", help="up: stay until interrupted, then stop")
    args = parser.parse_args(argv)

    if args.command == "down":
        pids = stop_recorded(args.dir)
        print(f"cluster: stopped {len(pids)} processes" if pids else "cluster: not running")
        return 0

    if args.command == "status":
        state = args.dir / "state.json"
        if not state.exists():
            print("cluster: not running")
            return 1
        data = json.loads(state.read_text())
        alive = {name: pid_alive(pid) for name, pid in data["pids"].items()}
        print(json.dumps({"kubeconfig": data["kubeconfig"], "alive": alive}, indent=2))
        return 0 if all(alive.values()) else 1

    cluster = Cluster(directory=args.dir, timeout=args.timeout, tie_to_parent=args.foreground)
    try:
        cluster.start()
    except ClusterError as err:
        print(f"cluster: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("cluster: interrupted; stopped what was started", file=sys.stderr)
        return 130
    print(f"cluster: ready in {cluster.ready_seconds}s at {cluster.server}; "
          f"KUBECONFIG={cluster.kubeconfig}")
    if not args.foreground:
        return 0
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        while all(p.poll() is None for p in cluster.processes.values()):
            time.sleep(1)
        print("cluster: a component exited; stopping", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        peaks = cluster.stop()
        print("cluster: stopped; peak memory " + ", ".join(f"{n} {k // 1024} MiB" for n, k in peaks.items()))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
