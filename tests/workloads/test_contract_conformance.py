"""Both workloads conform to contract/openapi.yaml, as an independent tool sees it: the contract
is a valid OpenAPI document (openapi-spec-validator), and schemathesis drives the real gateway
binary and the real Worker bundle in workerd, wired to each other as they are deployed, with
every check it has. Bounded: a fixed seed, a fixed number of examples per operation."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename

from tests.conftest import free_port, wait_until_healthy

REPO = Path(__file__).resolve().parents[2]
CONTRACT = REPO / "contract" / "openapi.yaml"
SCHEMATHESIS_CONFIG = REPO / "contract" / "schemathesis.toml"
WORKER_DIR = REPO / "workers" / "ai-worker"
CATALOG = REPO / "apps" / "api-gateway" / "catalog.json"
TOKEN = "conformance-token"
# Enough to reach every documented status of every operation in a few seconds each; the seed
# makes a failure reproducible (schemathesis prints the `st replay` and curl to do so).
MAX_EXAMPLES = 30
SEED = 20261126


def test_the_contract_is_a_valid_openapi_document():
    document, _ = read_from_filename(str(CONTRACT))
    validate(document)


@pytest.fixture(scope="module")
def workloads(go_service_binary, tmp_path_factory) -> Iterator[dict[str, str]]:
    """The gateway and the Worker on loopback, each calling the other with the shared token."""
    bundle = WORKER_DIR / "dist" / "worker.js"
    if not bundle.is_file():
        pytest.fail(f"no Worker bundle at {bundle}: run `make worker` (make test does)")
    node = shutil.which("node")
    if node is None:
        pytest.fail("no node on PATH: the Worker runs in workerd through miniflare")
    logs = tmp_path_factory.mktemp("conformance")
    gateway_port, worker_port = free_port(), free_port()
    gateway_url, worker_url = f"http://127.0.0.1:{gateway_port}", f"http://127.0.0.1:{worker_port}"
    started: list[subprocess.Popen] = []
    try:
        gateway_log = logs / "gateway.log"
        started.append(subprocess.Popen(
            [str(go_service_binary("api-gateway"))],
            env={"PATH": os.environ["PATH"], "PORT": str(gateway_port), "CATALOG_PATH": str(CATALOG),
                 "WORKER_URL": worker_url, "WORKER_API_TOKEN": TOKEN, "SHUTDOWN_DRAIN": "0s"},
            stdout=gateway_log.open("wb"), stderr=subprocess.STDOUT))
        worker_log = logs / "worker.log"
        started.append(subprocess.Popen(
            [node, str(WORKER_DIR / "local" / "serve.mjs")], cwd=WORKER_DIR,
            env={"PATH": os.environ["PATH"], "HOST": "127.0.0.1", "PORT": str(worker_port),
                 "GATEWAY_URL": gateway_url, "API_TOKEN": TOKEN},
            stdout=worker_log.open("wb"), stderr=subprocess.STDOUT))
        wait_until_healthy(gateway_url, started[0], gateway_log)
        wait_until_healthy(worker_url, started[1], worker_log)
        yield {"gateway": gateway_url, "worker": worker_url}
    finally:
        for process in started:
            process.terminate()
        for process in started:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def schemathesis(tag: str, base_url: str, workdir: Path, *headers: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(SCHEMATHESIS_CONFIG),
               "run", str(CONTRACT), "--url", base_url,
               "--include-tag", tag, "--checks", "all", "--mode", "all",
               "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED),
               "--request-timeout", "10", "--output-truncate", "true", "--no-color"]
    for header in headers:
        command += ["--header", header]
    # Run elsewhere than the repository: hypothesis keeps its example database in the cwd.
    return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=workdir,
                          env={**os.environ, "SCHEMATHESIS_TELEMETRY": "false"})


def report(result: subprocess.CompletedProcess) -> str:
    """The run's summary, at most a few thousand characters of it."""
    out = result.stdout + result.stderr
    start = out.find("FAILURES")
    return (out[start:] if start >= 0 else out)[-6000:]


@pytest.mark.parametrize("tag, headers", [
    ("gateway", ()),
    ("worker", (f"Authorization: Bearer {TOKEN}",)),
], ids=["gateway", "worker"])
def test_schemathesis_finds_no_contract_violation(workloads, tmp_path, tag, headers):
    result = schemathesis(tag, workloads[tag], tmp_path, *headers)
    assert result.returncode == 0, report(result)
    assert "No issues found" in result.stdout, report(result)
