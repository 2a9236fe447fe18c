"""The log searches of the alert runbooks find what the gateway really logs: the real binary
serves healthy and failing traffic (its Worker unreachable, so calls fail and the breaker
opens), its JSON log lines are captured, and each runbook's `kubectl logs ... | <search>` is
run as written (the part after the first `|`, by the shell) over them."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from components.alert_rules import STANDARD_ALERTS
from infra.project import PROJECT_ROOT
from tests.conftest import free_port, http_status
from tests.test_workload_wiring import start_service

RUNBOOKS = PROJECT_ROOT / "docs" / "runbooks"
GATEWAY = PROJECT_ROOT / "apps" / "api-gateway"
FENCED_SHELL = re.compile(r"```sh\n(.*?)```", re.S)


def log_searches(runbook: Path) -> list[str]:
    """The filters of the runbook's `kubectl logs` commands: what follows the first `|`."""
    searches = []
    for block in FENCED_SHELL.findall(runbook.read_text()):
        for line in block.splitlines():
            if line.startswith("kubectl ") and " logs " in line and "|" in line:
                searches.append(line.split("|", 1)[1].strip())
    return searches


@pytest.fixture(scope="module")
def gateway_log(go_service_binary, tmp_path_factory) -> list[str]:
    """The gateway's log lines after healthy reads, unknown routes, and Worker calls that fail
    (connection refused) until the breaker opens and answers 503 on its own."""
    folder = tmp_path_factory.mktemp("gateway-log")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"PORT": str(port), "CATALOG_PATH": str(GATEWAY / "catalog.json"),
           "WORKER_URL": f"http://127.0.0.1:{free_port()}", "WORKER_AUTH": "none",
           "BREAKER_FAILURES": "2", "LOG_LEVEL": "info"}
    log = folder / "stdout.log"
    with log.open("wb") as stdout:
        process = start_service(go_service_binary("api-gateway"), env, base, "/readyz",
                                stdout=stdout)
        try:
            statuses = [http_status(base + "/v1/modules"), http_status(base + "/v1/modules/summarize"),
                        http_status(base + "/v1/modules/no-such-module"), http_status(base + "/no-such-route")]
            statuses += [http_status(base + "/v1/ai/complete", {"module": "summarize", "prompt": "hi"})
                         for _ in range(3)]
        finally:
            process.terminate()
            process.wait(timeout=60)
    # Two calls fail (502) and open the breaker; the third is refused by it (503).
    assert statuses == [200, 200, 404, 404, 502, 502, 503], statuses
    return log.read_text().splitlines()


def answer_status(line: str) -> int | None:
    record = json.loads(line)
    return record.get("status") if record.get("msg") == "request" else None


def test_every_alert_runbook_has_a_log_search():
    for alert in STANDARD_ALERTS:
        assert log_searches(RUNBOOKS / f"{alert}.md"), f"{alert}.md has no log search"


def test_the_gateway_logs_json_at_go_slog_levels(gateway_log):
    levels = {json.loads(line)["level"] for line in gateway_log}
    assert levels <= {"DEBUG", "INFO", "WARN", "ERROR"}, levels
    # 5xx answers are access lines at INFO; failed Worker calls and the breaker are at WARN.
    assert any(answer_status(line) == 502 and '"level":"INFO"' in line for line in gateway_log)
    assert any('"level":"WARN"' in line for line in gateway_log)


@pytest.mark.parametrize("alert", STANDARD_ALERTS)
def test_each_runbooks_log_search_finds_the_failures_and_only_them(gateway_log, alert):
    wanted = [line for line in gateway_log
              if (answer_status(line) or 0) >= 500
              or json.loads(line)["level"] in ("WARN", "ERROR")]
    healthy = [line for line in gateway_log if (answer_status(line) or 500) < 500]
    assert wanted and healthy
    found: set[str] = set()
    for search in log_searches(RUNBOOKS / f"{alert}.md"):
        result = subprocess.run(["sh", "-c", search], input="\n".join(gateway_log) + "\n",
                                capture_output=True, text=True, timeout=30)
        assert result.returncode in (0, 1), result.stderr  # grep: 1 is "nothing found"
        lines = result.stdout.splitlines()
        assert lines, f"{alert}.md: `{search}` finds nothing in the gateway's log"
        assert not set(lines) & set(healthy), f"{alert}.md: `{search}` finds healthy answers"
        found.update(lines)
    assert sorted(set(wanted) - found) == [], f"{alert}.md: its searches miss these"
