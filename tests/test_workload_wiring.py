"""The stacks and the workloads they deploy agree: each Go service, run as its own stack
configures it, serves its probes on its port and drains within its grace period, and each Worker
stack uploads exactly the bundle its Worker's build makes. Over every project's stacks: a new
team's service and Workers are held to it too (tests/fixtures/minimal-project)."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.conftest import Stack, free_port, http_status, stacks_of

GO_STACKS = stacks_of("go-service")
WORKER_STACKS = stacks_of("cloudflare-worker")


SECRET_VALUE = "test-secret"


def pod_environment(folder: Path, files_dir: Path, port: int) -> tuple[dict[str, str], dict]:
    """The container's environment as the Deployment declares it, with every mounted ConfigMap
    and Secret written below `files_dir` the way the kubelet would project them (a secret's
    value stands as SECRET_VALUE: the render never holds it)."""
    deployment = yaml.safe_load((folder / f"deployment-{folder_service(folder)}.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e["value"] if "value" in e else SECRET_VALUE for e in container["env"]}
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        if "configMap" in volume:
            source, name = "configmap", volume["configMap"]["name"]
        elif "secret" in volume:
            source, name = "secret", volume["secret"]["secretName"]
        else:
            continue  # scratch space (emptyDir): nothing to project
        manifest = yaml.safe_load((folder / f"{source}-{name}.yaml").read_text())
        data = {**manifest.get("data", {}), **manifest.get("stringData", {})}
        if source == "secret":
            data = {key: SECRET_VALUE for key in data}
        items = volume.get(source if source == "secret" else "configMap", {}).get("items")
        paths = {item["key"]: item["path"] for item in items} if items else {k: k for k in data}
        local = files_dir / mount["name"]
        for key, path in paths.items():
            (local / path).parent.mkdir(parents=True, exist_ok=True)
            (local / path).write_text(data[key])
        env = {k: v.replace(mount["mountPath"], str(local)) for k, v in env.items()}
    env["PORT"] = str(port)  # the manifest's port is checked below; locally any free port
    return env, {"pod": pod, "container": container}


def start_service(binary: Path, env: dict[str, str], base: str,
                  ready_path: str, stdout=subprocess.DEVNULL) -> subprocess.Popen:
    """The service's binary started with its pod's environment, once `ready_path` answers 200;
    its log lines go to `stdout` (a file, to read them)."""
    process = subprocess.Popen([str(binary)], env={"PATH": os.environ["PATH"], **env},
                               stdout=stdout, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if http_status(base + ready_path, timeout=2) == 200:
                return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    process.wait()
    raise AssertionError(f"{binary.name} never answered {ready_path}: "
                         f"{process.stderr.read().decode()}")


def folder_service(folder: Path) -> str:
    return next(folder.glob("deployment-*.yaml")).stem[len("deployment-"):]


@pytest.mark.parametrize("stack", GO_STACKS, ids=str)
def test_go_service_serves_its_probes_and_drains_within_the_grace_period(
        rendered_stack, go_service_binary, tmp_path, stack):
    folder = rendered_stack(stack)
    service = folder_service(folder)
    port = free_port()
    env, spec = pod_environment(folder, tmp_path, port)
    container, pod = spec["container"], spec["pod"]
    assert container["ports"][0]["containerPort"] == int(
        next(e["value"] for e in container["env"] if e["name"] == "PORT"))
    base = f"http://127.0.0.1:{port}"
    process = start_service(go_service_binary(service, stack.root), env, base,
                            container["startupProbe"]["httpGet"]["path"])
    try:
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert http_status(base + container[probe]["httpGet"]["path"], timeout=2) == 200, probe

        process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        readiness = container["readinessProbe"]["httpGet"]["path"]
        # Readiness fails once the signal is handled, well inside the drain window (the
        # balancer's cue to stop sending); polled, since a busy machine delivers it late.
        drain_ends = signalled + seconds(env["SHUTDOWN_DRAIN"])
        while (answer := http_status(base + readiness, timeout=2)) == 200 and time.monotonic() < drain_ends:
            time.sleep(0.02)
        assert answer == 503, "readiness must fail as soon as the drain starts"
        assert http_status(base + container["livenessProbe"]["httpGet"]["path"], timeout=2) == 200
        process.wait(timeout=pod["terminationGracePeriodSeconds"])
        took = time.monotonic() - signalled
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, process.stderr.read().decode()
    assert seconds(env["SHUTDOWN_DRAIN"]) <= took < pod["terminationGracePeriodSeconds"]


def seconds(duration: str) -> float:
    """A Go duration of whole units as the stacks write them ("5s", "500ms", "1m")."""
    for unit, factor in (("ms", 0.001), ("s", 1), ("m", 60)):
        if duration.endswith(unit) and duration[:-len(unit)].isdigit():
            return int(duration[:-len(unit)]) * factor
    raise AssertionError(f"unexpected duration {duration!r}")


@pytest.mark.parametrize("stack", GO_STACKS, ids=str)
def test_go_service_leaves_the_balancer_time_to_see_the_drain(rendered_stack, tmp_path, stack):
    """The gateway's zero-failure rolling restart (apps/api-gateway, balancer test) holds when
    readiness is polled often enough to take the pod out well inside the drain, and the pod may
    live through drain, shutdown timeout and the second a cut-off request gets to answer."""
    env, spec = pod_environment(rendered_stack(stack), tmp_path, free_port())
    probe = spec["container"]["readinessProbe"]
    drain, timeout = seconds(env["SHUTDOWN_DRAIN"]), seconds(env["SHUTDOWN_TIMEOUT"])
    assert probe["periodSeconds"] * probe["failureThreshold"] <= drain / 2
    assert spec["pod"]["terminationGracePeriodSeconds"] >= drain + timeout + 1


def worker_source(stack: Stack) -> Path:
    """The Worker's source folder, found from the stack's own config: the nearest folder above
    its bundle that holds a wrangler.toml."""
    bundle = stack.root / stack.configured("bundle")
    for folder in bundle.parents:
        if (folder / "wrangler.toml").is_file():
            return folder
        if folder == stack.root:
            break
    pytest.fail(f"stack {stack}: no wrangler.toml above its bundle {bundle}")


def wrangler(folder: Path) -> dict:
    return tomllib.loads((folder / "wrangler.toml").read_text())


@pytest.mark.parametrize("stack", WORKER_STACKS, ids=str)
def test_worker_stack_uploads_the_bundle_the_worker_tests_build(stack):
    folder = worker_source(stack)
    main = wrangler(folder)["main"]
    assert stack.root / stack.configured("bundle") == folder / main
    if (folder / "package.json").is_file():  # a built Worker: its build writes what is uploaded
        assert f"--outfile={main}" in json.loads((folder / "package.json").read_text())["scripts"]["build"]
    else:  # nothing to build: the module is the source itself
        assert (folder / main).suffix in (".js", ".mjs"), main


@pytest.mark.parametrize("stack", WORKER_STACKS, ids=str)
def test_worker_stack_matches_the_workers_runtime_settings_and_bindings(stack):
    config = stack.config
    local = wrangler(worker_source(stack))
    # The runtime settings are read from wrangler.toml (tests/test_cloudflare_worker.py).
    assert "compatibility_date" in local
    assert "platform:compatibility_date" not in config
    assert "platform:compatibility_flags" not in config
    assert config.get("platform:ai_binding") == local.get("ai", {}).get("binding")
    # Plain-text bindings: typed values, and URLs derived from the environment's base domain.
    plain = {*json.loads(config.get("platform:vars", "{}")),
             *json.loads(config.get("platform:url_vars", "{}"))}
    assert plain == set(local.get("vars", {}))
    # Secrets: wrangler.toml names them (so `wrangler types` types them); the stack binds each.
    assert set(json.loads(config.get("platform:secrets", "{}"))) == \
        set(local.get("secrets", {}).get("required", []))


@pytest.mark.parametrize("stack", WORKER_STACKS, ids=str)
def test_every_binding_a_worker_stack_sets_is_one_its_bundle_reads(stack):
    """A binding the code never reads is a typo in the stack file (or dead config)."""
    config = stack.config
    bundle = (stack.root / config["platform:bundle"]).read_text()
    names = [*json.loads(config.get("platform:vars", "{}")),
             *json.loads(config.get("platform:url_vars", "{}")),
             *json.loads(config.get("platform:secrets", "{}"))]
    if config.get("platform:ai_binding"):
        names.append(config["platform:ai_binding"])
    unread = [name for name in names if not re.search(rf"\.{name}\b", bundle)]
    assert not unread, f"stack {stack} binds {unread}, which {config['platform:bundle']} never reads"
