"""The stacks and the workloads they deploy agree: probes, port and grace period match the
gateway's real behaviour, and Worker stacks upload exactly the bundle the Worker tests ran."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from infra.stack_files import read_stack_config
from infra.stacks import PROJECT_ROOT

from tests.conftest import free_port, stacks_of_kind

GO_STACKS = stacks_of_kind("go-service")
WORKER_STACKS = stacks_of_kind("cloudflare-worker")


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def pod_environment(folder: Path, files_dir: Path, port: int) -> tuple[dict[str, str], dict]:
    """The container's environment as the Deployment declares it, files as the pod mounts them."""
    deployment = yaml.safe_load((folder / f"deployment-{folder_service(folder)}.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value", "test-secret") for e in container["env"]}
    for mount in container["volumeMounts"]:
        if mount["name"] == "files":
            config_map = yaml.safe_load(next(folder.glob("configmap-*.yaml")).read_text())
            for name, content in config_map["data"].items():
                (files_dir / name).write_text(content)
            env = {k: v.replace(mount["mountPath"], str(files_dir)) for k, v in env.items()}
    env["PORT"] = str(port)  # the manifest's port is checked below; locally any free port
    return env, {"pod": pod, "container": container}


def folder_service(folder: Path) -> str:
    return next(folder.glob("deployment-*.yaml")).stem[len("deployment-"):]


@pytest.mark.parametrize("stack", GO_STACKS)
def test_go_service_serves_its_probes_and_drains_within_the_grace_period(
        rendered, go_service_binary, tmp_path, stack):
    folder = rendered / stack
    service = folder_service(folder)
    port = free_port()
    env, spec = pod_environment(folder, tmp_path, port)
    container, pod = spec["container"], spec["pod"]
    assert container["ports"][0]["containerPort"] == int(
        next(e["value"] for e in container["env"] if e["name"] == "PORT"))
    process = subprocess.Popen([str(go_service_binary(service))], env={"PATH": os.environ["PATH"], **env},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if status(base + container["startupProbe"]["httpGet"]["path"]) == 200:
                    break
            except OSError:
                time.sleep(0.05)
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert status(base + container[probe]["httpGet"]["path"]) == 200, probe

        process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        time.sleep(0.3)
        readiness = container["readinessProbe"]["httpGet"]["path"]
        assert status(base + readiness) == 503, "readiness must fail as soon as the drain starts"
        assert status(base + container["livenessProbe"]["httpGet"]["path"]) == 200
        process.wait(timeout=pod["terminationGracePeriodSeconds"])
        took = time.monotonic() - signalled
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, process.stderr.read().decode()
    drain = int(env["SHUTDOWN_DRAIN"].rstrip("s"))
    assert drain <= took < pod["terminationGracePeriodSeconds"]


def wrangler() -> dict:
    return tomllib.loads((PROJECT_ROOT / "workers" / "ai-worker" / "wrangler.toml").read_text())


@pytest.mark.parametrize("stack", WORKER_STACKS)
def test_worker_stack_uploads_the_bundle_the_worker_tests_build(stack):
    config = read_stack_config(stack).config
    worker_dir = PROJECT_ROOT / "workers" / stack.split(".")[0]
    package = (worker_dir / "package.json").read_text()
    bundle = Path(config["platform:bundle"])
    assert bundle == Path("workers") / stack.split(".")[0] / wrangler()["main"]
    assert f"--outfile={wrangler()['main']}" in package


@pytest.mark.parametrize("stack", WORKER_STACKS)
def test_worker_stack_matches_the_workers_runtime_settings_and_bindings(rendered, stack):
    config = read_stack_config(stack).config
    local = wrangler()
    assert config["platform:compatibility_date"] == local["compatibility_date"]
    assert local.get("compatibility_flags", []) == []
    assert config["platform:ai_binding"] == local["ai"]["binding"]
    assert set(json.loads(config["platform:vars"])) == set(local["vars"])
    assert set(json.loads(config["platform:secrets"])) == {"API_TOKEN"}
