"""Cloudflare's GraphQL Analytics API as a stand-in on loopback: the one query `platform rollout`
asks of it for a Worker (`workersInvocationsAdaptive` of one account, filtered by script, version
and time window), answered from the invocations the test records, aggregated as the API
aggregates a query without dimensions (one row, or none without any invocation).

It checks what it receives as the API would: the bearer token (else 401 and Cloudflare's
authentication error), a POST of JSON with `query` and `variables`, the filter naming every
variable it is given (`scriptName`, `scriptVersion`, `datetime_geq`, `datetime_leq`), the times
in RFC 3339. Every request is kept (`received`) for the test to read; `answers` are canned
answers (status, body) given, in order, before any query is served."""
from __future__ import annotations

import datetime as dt
import json
import math
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ACCOUNT = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"  # staging's cloudflare.account_id (Pulumi.staging.yaml)
TOKEN = "cloudflare-test-token"
FILTER = re.compile(r"workersInvocationsAdaptive\s*\(\s*limit:\s*\d+\s*,\s*filter:\s*\{(?P<filter>[^}]*)\}")


@dataclass(frozen=True)
class Invocation:
    """One invocation of a Worker version, as the analytics count it."""

    at: dt.datetime
    script: str
    version: str
    ok: bool = True  # False: an invocation error (an exception, exceeded resources)
    wall_time_us: float = 20_000.0


def _time(value: Any) -> dt.datetime:
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", value):
        raise ValueError(f"not an RFC 3339 UTC time: {value!r}")
    return dt.datetime.fromisoformat(value)


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


class CloudflareAnalyticsStandIn(ThreadingHTTPServer):
    token = TOKEN
    account = ACCOUNT

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.invocations: list[Invocation] = []
        self.received: list[dict[str, Any]] = []  # each query's JSON body
        self.answers: list[tuple[int, Any]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/client/v4/graphql"

    def record(self, script: str, version: str, count: int, errors: int = 0,
               at: dt.datetime | None = None, wall_time_us: float = 20_000.0) -> None:
        """`count` invocations of `version` (the first `errors` of them failed), at `at` (now)."""
        at = at or dt.datetime.now(dt.UTC)
        with self.lock:
            self.invocations += [Invocation(at, script, version, i >= errors, wall_time_us)
                                 for i in range(count)]

    def rows(self, variables: dict[str, Any]) -> list[dict[str, Any]]:
        start, end = _time(variables["start"]), _time(variables["end"])
        with self.lock:
            found = [i for i in self.invocations
                     if i.script == variables["scriptName"] and i.version == variables["scriptVersion"]
                     and start <= i.at.replace(microsecond=0) <= end]
        if not found:
            return []
        return [{"sum": {"requests": len(found), "errors": sum(not i.ok for i in found)},
                 "quantiles": {"wallTimeP99": _p99([i.wall_time_us for i in found])}}]


class _Handler(BaseHTTPRequestHandler):
    server: CloudflareAnalyticsStandIn

    def log_message(self, *args) -> None:  # quiet
        pass

    def _send(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        server = self.server
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")
        server.received.append(body)
        if self.headers.get("Authorization") != f"Bearer {server.token}":
            return self._send(401, {"success": False, "errors": [
                {"code": 10000, "message": "Authentication error"}]})
        if server.answers:
            return self._send(*server.answers.pop(0))
        if self.headers.get("Content-Type") != "application/json" or not isinstance(body, dict):
            return self._send(400, {"data": None, "errors": [{"message": "not a JSON query"}]})
        query, variables = body.get("query", ""), body.get("variables") or {}
        match = FILTER.search(query)
        if match is None:
            return self._send(200, {"data": None, "errors": [
                {"message": "the stand-in answers workersInvocationsAdaptive(limit, filter) only"}]})
        wanted = {"scriptName": "$scriptName", "scriptVersion": "$scriptVersion",
                  "datetime_geq": "$start", "datetime_leq": "$end"}
        named = dict(re.findall(r"(\w+):\s*(\$\w+)", match["filter"]))
        if named != wanted:
            return self._send(200, {"data": None, "errors": [
                {"message": f"filter {named} is not {wanted}"}]})
        if variables.get("accountTag") != server.account:
            return self._send(200, {"data": {"viewer": {"accounts": []}}, "errors": None})
        try:
            rows = server.rows(variables)
        except (KeyError, ValueError) as error:
            return self._send(200, {"data": None, "errors": [{"message": f"bad variables: {error}"}]})
        self._send(200, {"data": {"viewer": {"accounts": [{"workersInvocationsAdaptive": rows}]}},
                         "errors": None})


def start() -> CloudflareAnalyticsStandIn:
    server = CloudflareAnalyticsStandIn()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
