"""The api-gateway's HTTP contract: the real binary, run on loopback, answers every gateway
route as contract/openapi.yaml says (status, content type and body schema)."""
from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import pytest
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
GATEWAY_DIR = REPO / "apps" / "api-gateway"
CATALOG = GATEWAY_DIR / "catalog.json"
CONTRACT_FILE = REPO / "contract" / "openapi.yaml"
CONTRACT_URI = "urn:platform:contract"
WORKER_TOKEN = "contract-test-token"
COMPLETION_MODEL = "@cf/meta/llama-3.1-8b-instruct"


# --- the contract ------------------------------------------------------------------------

@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Contract:
    """contract/openapi.yaml, read from disk, with response validation by operation and status."""

    def __init__(self, path: Path) -> None:
        self.doc = yaml.safe_load(path.read_text())
        self.registry = Registry().with_resource(
            CONTRACT_URI, Resource(contents=self.doc, specification=DRAFT202012))
        self.validated: set[tuple[str, int]] = set()

    def operations(self, tag: str) -> dict[str, set[int]]:
        """'METHOD /path' -> documented status codes, for every operation with `tag`."""
        ops = {}
        for path, item in self.doc["paths"].items():
            for method, op in item.items():
                if tag in op.get("tags", []):
                    ops[f"{method.upper()} {path}"] = {int(s) for s in op["responses"]}
        return ops

    def validator(self, pointer: str) -> Draft202012Validator:
        return Draft202012Validator({"$ref": f"{CONTRACT_URI}#{pointer}"}, registry=self.registry)

    def check_response(self, operation: str, resp: Response) -> Any:
        """Assert `resp` is one of the responses `operation` documents; return its JSON body."""
        method, path = operation.split(" ", 1)
        op = self.doc["paths"][path][method.lower()]
        assert "gateway" in op["tags"], f"{operation} is not a gateway operation"
        documented = op["responses"].get(str(resp.status))
        assert documented is not None, (
            f"{operation} answered {resp.status}, which the contract does not document "
            f"(documented: {sorted(op['responses'])}); body: {resp.body[:300]!r}")
        if "$ref" in documented:
            pointer = documented["$ref"].removeprefix("#")
            documented = self._resolve(pointer)
        else:
            pointer = "/paths/{}/{}/responses/{}".format(
                _escape(path), method.lower(), resp.status)
        body = self.check_body(resp, documented["content"], pointer + "/content")
        self.validated.add((operation, resp.status))
        return body

    def check_body(self, resp: Response, content: dict, pointer: str) -> Any:
        media_type = resp.headers.get("content-type", "").split(";")[0].strip()
        assert media_type in content, (
            f"content type {media_type!r}, contract allows {sorted(content)}")
        body = json.loads(resp.body)
        errors = sorted(self.validator(f"{pointer}/{_escape(media_type)}/schema").iter_errors(body),
                        key=str)
        assert not errors, "body violates the contract: " + "; ".join(
            f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors)
        return body

    def check_error(self, resp: Response) -> dict:
        """Assert `resp` carries the contract's Error body (for answers no operation lists)."""
        return self.check_body(resp, self._resolve("/components/responses/Error/content"),
                               "/components/responses/Error/content")

    def request_is_valid(self, operation: str, body: Any) -> bool:
        method, path = operation.split(" ", 1)
        pointer = "/paths/{}/{}/requestBody/content/application~1json/schema".format(
            _escape(path), method.lower())
        return self.validator(pointer).is_valid(body)

    def _resolve(self, pointer: str) -> Any:
        node = self.doc
        for part in pointer.strip("/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def covers(operation: str, *statuses: int) -> Callable:
    """Declare which documented responses a test provokes; checked at run time and by
    test_every_gateway_operation_and_documented_status_is_covered."""

    def mark(fn: Callable) -> Callable:
        fn.__contract_covers__ = getattr(fn, "__contract_covers__", set()) | {
            (operation, s) for s in statuses}
        return fn

    return mark


@pytest.fixture(scope="module")
def contract() -> Contract:
    return Contract(CONTRACT_FILE)


@pytest.fixture(autouse=True)
def declared_responses_are_really_validated(request, contract: Contract) -> Iterator[None]:
    """A test may only claim coverage of responses it actually checked against the contract."""
    declared = getattr(request.function, "__contract_covers__", set())
    contract.validated.clear()
    yield
    missing = declared - contract.validated
    assert not missing, f"declared but never validated: {sorted(missing)}"


# --- the stand-in AI Worker ----------------------------------------------------------------

@dataclass
class FakeWorker:
    """A loopback stand-in for the Worker's POST /v1/complete. The prompt picks the answer:
    'worker:404', 'worker:500', 'worker:slow' (slower than the gateway's timeout), else 200."""
    server: ThreadingHTTPServer
    requests: list[dict] = field(default_factory=list)

    @property
    def url(self) -> str:
        return "http://127.0.0.1:%d" % self.server.server_address[1]


def _fake_worker_handler(worker_requests: list[dict]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            worker_requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
            prompt = body.get("prompt", "")
            if prompt == "worker:404":
                self._send(404, {"error": {"code": "not_found",
                                           "message": "the Worker has no such module"}})
            elif prompt == "worker:500":
                self._send(500, {"error": {"code": "internal", "message": "model crashed"}})
            elif prompt == "worker:slow":
                time.sleep(2)
                self._send(200, {"module": body["module"], "model": COMPLETION_MODEL, "output": "late"})
            else:
                self._send(200, {"module": body["module"], "model": COMPLETION_MODEL,
                                 "output": f"echo: {prompt}"})

        def _send(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the gateway gave up on a slow answer, as it should

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture(scope="module")
def fake_worker() -> Iterator[FakeWorker]:
    requests: list[dict] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _fake_worker_handler(requests))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield FakeWorker(server=server, requests=requests)
    server.shutdown()
    server.server_close()


# --- the real gateway binary ---------------------------------------------------------------

@pytest.fixture(scope="module")
def gateway_binary(go_service_binary) -> Path:
    return go_service_binary("api-gateway")


class Gateway:
    """One gateway process on a free loopback port."""

    def __init__(self, binary: Path, log_path: Path, **env: str) -> None:
        self.port = free_port()
        self.log_path = log_path
        full_env = {"PATH": os.environ.get("PATH", ""), "PORT": str(self.port),
                    "CATALOG_PATH": str(CATALOG), **env}
        self.signalled = False
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen([str(binary)], env=full_env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"gateway exited at startup:\n{self.logs()}")
            try:
                if self.request("GET", "/readyz").status == 200:
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"gateway not ready after 10 s:\n{self.logs()}")

    def request(self, method: str, path: str, body: Optional[bytes | str | dict] = None,
                headers: Optional[dict[str, str]] = None) -> Response:
        if isinstance(body, dict):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers={
                **({"Content-Type": "application/json"} if body is not None else {}),
                **(headers or {})})
            r = conn.getresponse()
            return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        finally:
            conn.close()

    def logs(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")

    def sigterm(self) -> None:
        """Start the graceful shutdown. Only once: a second signal forces the exit."""
        if not self.signalled and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.signalled = True

    def stop(self) -> int:
        """SIGTERM (unless sent already) and wait for the exit code."""
        self.sigterm()
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
        finally:
            self.log.close()


@pytest.fixture(scope="module")
def start_gateway(gateway_binary: Path, tmp_path_factory) -> Iterator[Callable[..., Gateway]]:
    started: list[Gateway] = []

    def start(**env: str) -> Gateway:
        env.setdefault("SHUTDOWN_DRAIN", "0s")
        gw = Gateway(gateway_binary, tmp_path_factory.mktemp("logs") / "gateway.log", **env)
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.stop()


@pytest.fixture(scope="module")
def gateway(start_gateway, fake_worker: FakeWorker) -> Gateway:
    """The gateway wired to the stand-in Worker; the breaker is set never to trip here."""
    return start_gateway(WORKER_URL=fake_worker.url, WORKER_API_TOKEN=WORKER_TOKEN,
                         WORKER_TIMEOUT="500ms", BREAKER_FAILURES="1000")


# --- health --------------------------------------------------------------------------------

@covers("GET /healthz", 200)
def test_liveness_answers_ok(gateway, contract):
    resp = gateway.request("GET", "/healthz")
    assert contract.check_response("GET /healthz", resp) == {"status": "ok"}


@covers("GET /readyz", 200)
def test_readiness_answers_ready_while_serving(gateway, contract):
    resp = gateway.request("GET", "/readyz")
    assert contract.check_response("GET /readyz", resp) == {"status": "ready"}


@covers("GET /readyz", 503)
@covers("GET /healthz", 200)
def test_readiness_answers_draining_503_once_sigterm_arrived_while_liveness_stays_ok(
        start_gateway, contract):
    gw = start_gateway(SHUTDOWN_DRAIN="1s")
    gw.sigterm()
    deadline = time.monotonic() + 2
    resp = gw.request("GET", "/readyz")
    while resp.status != 503 and time.monotonic() < deadline:
        time.sleep(0.02)
        resp = gw.request("GET", "/readyz")
    assert contract.check_response("GET /readyz", resp) == {"status": "draining"}
    assert contract.check_response("GET /healthz", gw.request("GET", "/healthz")) == {"status": "ok"}
    assert gw.stop() == 0, gw.logs()


# --- the catalog ---------------------------------------------------------------------------

@covers("GET /v1/modules", 200)
def test_module_list_is_the_shipped_catalog_sorted_by_name(gateway, contract):
    body = contract.check_response("GET /v1/modules", gateway.request("GET", "/v1/modules"))
    shipped = json.loads(CATALOG.read_text())["modules"]
    assert body["modules"] == sorted(shipped, key=lambda m: m["name"])


@pytest.mark.parametrize("name", [m["name"] for m in json.loads(CATALOG.read_text())["modules"]])
@covers("GET /v1/modules/{name}", 200)
def test_each_catalog_module_is_served_by_name(gateway, contract, name):
    body = contract.check_response("GET /v1/modules/{name}",
                                   gateway.request("GET", f"/v1/modules/{name}"))
    assert body["name"] == name


@pytest.mark.parametrize("name", ["Summarize", "sum_marize", "9lives", "a" * 64, "%C3%A9t%C3%A9"])
@covers("GET /v1/modules/{name}", 400)
def test_a_malformed_module_name_is_a_bad_request(gateway, contract, name):
    resp = gateway.request("GET", f"/v1/modules/{name}")
    body = contract.check_response("GET /v1/modules/{name}", resp)
    assert resp.status == 400 and body["error"]["code"] == "bad_request"


@covers("GET /v1/modules/{name}", 404)
def test_an_unknown_module_is_not_found(gateway, contract):
    resp = gateway.request("GET", "/v1/modules/does-not-exist")
    body = contract.check_response("GET /v1/modules/{name}", resp)
    assert resp.status == 404 and body["error"]["code"] == "not_found"


# --- completions through the Worker ----------------------------------------------------------

COMPLETE = "POST /v1/ai/complete"


@covers(COMPLETE, 200)
def test_a_completion_is_forwarded_with_the_bearer_token_and_relayed(gateway, contract, fake_worker):
    request = {"module": "summarize", "prompt": "Summarize: the quick brown fox."}
    assert contract.request_is_valid(COMPLETE, request)
    resp = gateway.request("POST", "/v1/ai/complete", request, {"X-Request-Id": "contract-1"})
    body = contract.check_response(COMPLETE, resp)
    assert resp.status == 200
    assert body == {"module": "summarize", "model": COMPLETION_MODEL,
                    "output": "echo: Summarize: the quick brown fox."}
    forwarded = fake_worker.requests[-1]
    assert forwarded["path"] == "/v1/complete"
    assert forwarded["body"] == request
    assert forwarded["headers"]["Authorization"] == f"Bearer {WORKER_TOKEN}"
    assert forwarded["headers"]["X-Request-Id"] == "contract-1"
    assert resp.headers["x-request-id"] == "contract-1"


SCHEMA_VIOLATIONS = {
    "unknown_field": {"module": "summarize", "prompt": "x", "temperature": 0.7},
    "missing_prompt": {"module": "summarize"},
    "missing_module": {"prompt": "x"},
    "empty_prompt": {"module": "summarize", "prompt": ""},
    "prompt_over_8000_characters": {"module": "summarize", "prompt": "x" * 8001},
    "malformed_module_name": {"module": "Summarize", "prompt": "x"},
    "module_of_wrong_type": {"module": 7, "prompt": "x"},
}


@pytest.mark.parametrize("request_body", SCHEMA_VIOLATIONS.values(), ids=SCHEMA_VIOLATIONS.keys())
@covers(COMPLETE, 400)
def test_a_completion_request_violating_the_schema_is_a_bad_request(gateway, contract, request_body):
    assert not contract.request_is_valid(COMPLETE, request_body)
    resp = gateway.request("POST", "/v1/ai/complete", request_body)
    body = contract.check_response(COMPLETE, resp)
    assert resp.status == 400 and body["error"]["code"] == "bad_request"


@pytest.mark.parametrize("raw", ['{"module":', "", "[]", '{"module":"summarize","prompt":"x"}{}',
                                 '{"module":"summarize","prompt":"x","prompt":"y"}',
                                 '{"Module":"summarize","prompt":"x"}'],
                         ids=["truncated", "empty", "array", "two_objects", "duplicate_key",
                              "key_in_another_case"])
@covers(COMPLETE, 400)
def test_a_completion_body_that_is_not_one_json_object_is_a_bad_request(gateway, contract, raw):
    resp = gateway.request("POST", "/v1/ai/complete", raw)
    body = contract.check_response(COMPLETE, resp)
    assert resp.status == 400 and body["error"]["code"] == "bad_request"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x"])
@covers(COMPLETE, 415)
def test_a_completion_that_is_not_declared_json_is_unsupported(gateway, contract, fake_worker,
                                                              content_type):
    """A cross-site form POST needs no preflight: only a JSON body is ever acted on."""
    calls = len(fake_worker.requests)
    resp = gateway.request("POST", "/v1/ai/complete", {"module": "summarize", "prompt": "x"},
                           {"Content-Type": content_type})
    body = contract.check_response(COMPLETE, resp)
    assert resp.status == 415 and body["error"]["code"] == "unsupported_media_type"
    assert len(fake_worker.requests) == calls


@covers(COMPLETE, 404)
def test_a_completion_for_a_module_outside_the_catalog_is_not_found(gateway, contract, fake_worker):
    calls = len(fake_worker.requests)
    resp = gateway.request("POST", "/v1/ai/complete", {"module": "unknown-module", "prompt": "x"})
    body = contract.check_response(COMPLETE, resp)
    assert resp.status == 404 and body["error"]["code"] == "not_found"
    assert len(fake_worker.requests) == calls, "the Worker was asked about a module the catalog lacks"


@covers(COMPLETE, 404)
def test_a_worker_not_found_is_relayed_as_not_found(gateway, contract):
    resp = gateway.request("POST", "/v1/ai/complete", {"module": "classify", "prompt": "worker:404"})
    body = contract.check_response(COMPLETE, resp)
    assert resp.status == 404
    assert body["error"] == {"code": "not_found", "message": "the Worker has no such module",
                             "request_id": resp.headers["x-request-id"]}


@covers(COMPLETE, 200)
def test_the_longest_valid_prompt_fully_escaped_is_accepted(gateway, contract, fake_worker):
    """8000 characters outside the BMP, as json.dumps escapes them: 96,000 bytes of JSON."""
    request = {"module": "summarize", "prompt": "\U0001F642" * 8000}
    assert contract.request_is_valid(COMPLETE, request) and len(json.dumps(request)) > 96_000
    resp = gateway.request("POST", "/v1/ai/complete", json.dumps(request))
    assert contract.check_response(COMPLETE, resp)["output"] == "echo: " + request["prompt"]


@covers(COMPLETE, 413)
def test_a_completion_body_over_the_size_limit_is_payload_too_large(gateway, contract):
    resp = gateway.request("POST", "/v1/ai/complete",
                           {"module": "summarize", "prompt": "x" * 140_000})  # > MAX_BODY_BYTES
    body = contract.check_response(COMPLETE, resp)
    assert resp.status == 413 and body["error"]["code"] == "payload_too_large"


@covers(COMPLETE, 502)
def test_a_failing_worker_is_an_upstream_error(gateway, contract):
    resp = gateway.request("POST", "/v1/ai/complete", {"module": "summarize", "prompt": "worker:500"})
    body = contract.check_response(COMPLETE, resp)
    assert resp.status == 502 and body["error"]["code"] == "upstream_error"


@covers(COMPLETE, 504)
def test_a_worker_slower_than_the_timeout_is_an_upstream_timeout(gateway, contract):
    started = time.monotonic()
    resp = gateway.request("POST", "/v1/ai/complete", {"module": "summarize", "prompt": "worker:slow"})
    body = contract.check_response(COMPLETE, resp)
    assert resp.status == 504 and body["error"]["code"] == "upstream_timeout"
    assert time.monotonic() - started < 1.5, "the gateway waited past its 500ms WORKER_TIMEOUT"


@covers(COMPLETE, 503)
def test_a_completion_without_a_configured_worker_is_unavailable(start_gateway, contract):
    gw = start_gateway()
    resp = gw.request("POST", "/v1/ai/complete", {"module": "summarize", "prompt": "x"})
    body = contract.check_response(COMPLETE, resp)
    assert resp.status == 503 and body["error"]["code"] == "upstream_unavailable"


@covers(COMPLETE, 502, 503)
def test_an_open_circuit_breaker_is_unavailable_without_calling_the_worker(
        start_gateway, contract, fake_worker):
    gw = start_gateway(WORKER_URL=fake_worker.url, WORKER_API_TOKEN=WORKER_TOKEN,
                       BREAKER_FAILURES="2", BREAKER_COOLDOWN="10m")
    failing = {"module": "summarize", "prompt": "worker:500"}
    for _ in range(2):
        assert contract.check_response(COMPLETE, gw.request("POST", "/v1/ai/complete", failing)) \
            ["error"]["code"] == "upstream_error"
    calls = len(fake_worker.requests)
    resp = gw.request("POST", "/v1/ai/complete", {"module": "summarize", "prompt": "fine"})
    body = contract.check_response(COMPLETE, resp)
    assert resp.status == 503 and body["error"]["code"] == "upstream_unavailable"
    assert len(fake_worker.requests) == calls, "an open breaker still called the Worker"


# --- answers outside the documented operations are still contract errors ------------------------

@pytest.mark.parametrize("method, path", [("POST", "/healthz"), ("DELETE", "/readyz"),
                                          ("POST", "/v1/modules"), ("PUT", "/v1/modules/summarize"),
                                          ("GET", "/v1/ai/complete")])
def test_a_wrong_method_is_a_json_method_not_allowed_error(gateway, contract, method, path):
    resp = gateway.request(method, path)
    assert resp.status == 405 and "allow" in resp.headers
    assert contract.check_error(resp)["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize("path", ["/", "/v2/modules", "/v1/modules/summarize/versions"])
def test_an_unknown_path_is_a_json_not_found_error(gateway, contract, path):
    resp = gateway.request("GET", path)
    assert resp.status == 404
    assert contract.check_error(resp)["error"]["code"] == "not_found"


def test_every_error_carries_the_request_id_it_echoes(gateway, contract):
    resp = gateway.request("GET", "/v1/modules/nope", headers={"X-Request-Id": "trace-abc"})
    assert resp.headers["x-request-id"] == "trace-abc"
    assert contract.check_error(resp)["error"]["request_id"] == "trace-abc"
    generated = gateway.request("GET", "/v1/modules/nope", headers={"X-Request-Id": "bad id!"})
    assert generated.headers["x-request-id"] not in ("", "bad id!")
    assert contract.check_error(generated)["error"]["request_id"] == generated.headers["x-request-id"]


# --- coverage of the contract itself -------------------------------------------------------------

def test_every_gateway_operation_and_documented_status_is_covered(contract):
    declared: set[tuple[str, int]] = set()
    for obj in globals().values():
        declared |= getattr(obj, "__contract_covers__", set())
    documented = {(op, status) for op, statuses in contract.operations("gateway").items()
                  for status in statuses}
    assert not documented - declared, (
        f"gateway responses in the contract with no test: {sorted(documented - declared)}")
    assert not declared - documented, (
        f"tests claim responses the contract does not document: {sorted(declared - documented)}")
