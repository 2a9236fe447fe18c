"""ARCHITECTURE.md is generated from the code (`python -m offline.architecture`) and committed up to date;
the architecture it draws holds: the packages import one way, every stack and every workflow
job is in it."""
from __future__ import annotations

import re

import pytest
import yaml

from infra.project import PROJECT_ROOT
from infra.stack_files import discover_stacks
from offline import architecture as docs


@pytest.fixture(scope="module")
def generated(repo_renderer) -> str:
    return docs.generate(repo_renderer)


def test_architecture_md_is_what_the_code_generates(generated):
    committed = (PROJECT_ROOT / "ARCHITECTURE.md").read_text()
    assert committed == generated, \
        "ARCHITECTURE.md is stale: run `.venv/bin/python -m offline.architecture` and review the diff"


def test_the_program_and_the_components_never_import_the_operators_command_or_the_policy_pack():
    edges = docs.package_imports(docs.modules(), docs.drawn_packages(docs.modules()))
    program = {"infra", "components"}
    assert not [e for e in edges if e[0] in program and e[1].split(".")[0] != e[0].split(".")[0]
                and e[1] not in program]
    assert not [e for e in edges if e[0] == "components"], "components know nothing of stacks or config"
    assert not [e for e in edges if e[0] == "policy"], "the policy pack imports nothing of the platform"
    assert ("infra", "components") in edges and ("offline", "infra") in edges


def test_the_packages_import_one_way_at_the_granularity_drawn():
    found = docs.modules()
    edges = set(docs.package_imports(found, docs.drawn_packages(found)))
    assert not [(a, b) for a, b in edges if (b, a) in edges]
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n}))
                   for n in graph.get(start, ()))
    assert not [p for p in graph if reaches(p, p, set())], "a cycle among the drawn packages"


def test_a_subpackage_imported_both_ways_with_its_parent_is_drawn_as_one_box(tmp_path):
    found = docs.modules()
    assert "infra.config" not in docs.drawn_packages(found)  # the config models use infra's names
    assert {"ops.engine", "ops.operator", "ops.planning", "ops.reporting"} <= set(
        docs.drawn_packages(found))


def test_every_stack_of_the_repository_is_drawn_with_what_it_owns(generated):
    for stack in discover_stacks():
        assert f'["{stack} (' in generated, f"{stack} has no box"
        assert f"| `{stack}` |" in generated


def test_every_job_of_every_workflow_is_on_the_delivery_path():
    text = "\n".join(docs.delivery_section())
    for path in sorted(docs.WORKFLOWS.glob("*.yml")):
        jobs = yaml.safe_load(path.read_text())["jobs"]
        for job_id in jobs:
            assert re.search(rf"\| `{re.escape(path.name)}` \| [^|]* \| `{re.escape(job_id)}` \|", text), \
                f"{path.name} job {job_id} is missing"


def test_a_job_waiting_for_another_is_drawn_after_it(tmp_path):
    (tmp_path / "ship.yml").write_text(yaml.safe_dump({
        "on": {"push": {}}, "jobs": {
            "build": {"runs-on": "x", "steps": [{"run": "make"}]},
            "deploy": {"runs-on": "x", "needs": "build", "environment": "production",
                       "steps": [{"run": "platform up app.production --yes"}]}}}))
    text = "\n".join(docs.delivery_section(tmp_path))
    assert '(["push"])' in text
    assert '"deploy<br>environment: production<br>platform up"' in text
    chart = text.split("```mermaid\n")[1].split("```")[0]
    ids = dict(re.findall(r'(n\d+)\["(build|deploy)', chart))
    assert f"{next(k for k, v in ids.items() if v == 'build')} --> " \
           f"{next(k for k, v in ids.items() if v == 'deploy')}" in chart


def test_a_url_a_component_calls_leads_to_the_route_that_serves_it(monkeypatch):
    graphs = {
        "staging": {"resources": [], "outputs": {}},
        "web.staging": {"resources": [
            {"type": "cloudflare:index/workersRoute:WorkersRoute", "name": "r",
             "inputs": {"pattern": "web.example.com/*"}},
            {"type": "cloudflare:index/workerVersion:WorkerVersion", "name": "v",
             "inputs": {"bindings": [{"name": "API_URL", "type": "plain_text", "text": "https://api.example.org/v1"}]}}],
            "outputs": {}},
        "api.staging": {"resources": [
            {"type": "kubernetes:apps/v1:Deployment", "name": "d", "inputs": {"spec": {"template": {"spec": {
                "containers": [{"env": [{"name": "WEB_URL", "value": "https://web.example.com/x"}]}]}}}}}],
            "outputs": {}},
    }
    kinds = {"web.staging": "cloudflare-worker", "api.staging": "go-service"}
    monkeypatch.setattr(docs, "kind_of", lambda stack: kinds.get(stack, "environment"))
    chart = "\n".join(docs.request_section(graphs)).split("### production")[0]
    nodes = dict(re.findall(r'(n\d+)[\[(]"([^"]+)"', chart))
    by_label = {v: k for k, v in nodes.items()}
    assert f'{by_label["api (go-service)"]} -->|"WEB_URL"| {by_label["route web.example.com/*"]}' in chart
    assert f'{by_label["web (cloudflare-worker)"]} -->|"API_URL"| {by_label["api.example.org (outside the platform)"]}' in chart


def test_no_workflow_expression_is_printed_raw(generated):
    assert "${{" not in generated
    assert docs.readable("${{ inputs.environment }}") == "the input environment"
    assert docs.readable({"name": "production"}) == "production"
