"""Generate ARCHITECTURE.md from the code, so the architecture described is the one that runs.

    python -m offline.architecture            # write ARCHITECTURE.md
    python -m offline.architecture --check    # exit 1 when the committed ARCHITECTURE.md is not what the code gives

Every diagram is Mermaid, drawn from what the code says: the stacks and what each owns from
each stack's render (the graph `python -m offline.render` writes as graph.json), the packages
from the source's imports, the request path from the stack configs' routes and URLs, each
environment's allowed network flows from network-config-analyzer's reading of the rendered
NetworkPolicies (offline/connectivity.py), and the delivery path from .github/workflows/.
Everything is sorted, so two runs write the same bytes.
"""
from __future__ import annotations

import argparse
import ast
import re
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Optional
from urllib.parse import urlparse

import yaml

from infra.errors import PlatformError
from infra.project import PROJECT_ROOT
from infra.stack_files import discover_stacks, read_stack_config
from infra.stacks import promotion_order
from offline.connectivity import ANY_POD, NAME_LABEL, AnalyserMissing, Environment
from offline.mock_engine import shutdown
from offline.render import Renderer, graph

OUT = PROJECT_ROOT / "ARCHITECTURE.md"
NOT_DRAWN = {"tests"}  # the test suite imports everything; drawing it would say nothing
WORKFLOWS = PROJECT_ROOT / ".github" / "workflows"
TRIGGERS = {"pull_request": "pull request", "push": "push", "schedule": "schedule",
            "workflow_dispatch": "by hand", "workflow_run": "after another workflow"}


class Mermaid:
    """A flowchart under construction: nodes get short ids in the order they are added."""

    def __init__(self, direction: str = "LR"):
        self.lines = [f"flowchart {direction}"]
        self.ids: dict[str, str] = {}

    def node(self, key: str, label: str, shape: str = "rect", indent: int = 1) -> str:
        if key not in self.ids:
            self.ids[key] = f"n{len(self.ids)}"
            text = label.replace('"', "#quot;")
            opening, closing = {"rect": ("[", "]"), "round": ("(", ")"), "stadium": ("([", "])"),
                                "db": ("[(", ")]")}[shape]
            self.lines.append(f"{'    ' * indent}{self.ids[key]}{opening}\"{text}\"{closing}")
        return self.ids[key]

    def edge(self, src: str, dst: str, label: str = "", dotted: bool = False) -> None:
        arrow = "-.->" if dotted else "-->"
        quoted = label.replace('"', "#quot;")
        text = f'|"{quoted}"|' if label else ""
        self.lines.append(f"    {self.ids[src]} {arrow}{text} {self.ids[dst]}")

    def subgraph(self, key: str, title: str) -> None:
        self.ids.setdefault(key, f"g{len(self.ids)}")
        self.lines.append(f"    subgraph {self.ids[key]}[\"{title}\"]")

    def end(self) -> None:
        self.lines.append("    end")

    def text(self) -> str:
        return "```mermaid\n" + "\n".join(self.lines) + "\n```"


# -- the stacks ------------------------------------------------------------------------------


def _kind_name(resource: dict[str, Any]) -> Optional[str]:
    """How an owned object reads: `Deployment api-gateway`, `WorkersRoute ai-worker-staging-route-0`."""
    type_ = resource["type"]
    if type_.startswith("kubernetes:"):
        inputs = resource["inputs"]
        return f"{inputs.get('kind')} {(inputs.get('metadata') or {}).get('name')}"
    if type_.startswith(("pulumi:", "platform:")):
        return None  # the stack, providers, references, components: not objects in a cloud
    return f"{type_.rsplit(':', 1)[-1]} {resource['name']}"


def stacks_section(graphs: dict[str, dict[str, Any]]) -> list[str]:
    lines = ["## The stacks and what each owns", "",
             "One Pulumi project, one stack per environment and per component in an environment",
             "(see the README's stack model). Each box is a stack and the objects it registers, from",
             "its render; a dotted arrow is a component stack reading its environment stack's",
             "outputs through a StackReference. No object is in two boxes.", ""]
    for env in promotion_order():
        chart = Mermaid("TB")
        stacks = [s for s in graphs if s.split(".")[-1] == env]
        for stack in stacks:
            chart.subgraph(stack, f"{stack} ({kind_of(stack)})")
            chart.node(f"{stack}/anchor", stack, "stadium", indent=2)
            for label in sorted(filter(None, map(_kind_name, graphs[stack]["resources"]))):
                chart.node(f"{stack}/{label}", label, indent=2)
            chart.end()
        for stack in stacks:
            if stack != env:
                chart.edge(f"{stack}/anchor", f"{env}/anchor", "StackReference", dotted=True)
        lines += [f"### {env}", "", chart.text(), ""]
    lines += ["| stack | kind | objects | outputs |", "| --- | --- | --- | --- |"]
    for stack, data in graphs.items():
        owned = [n for n in map(_kind_name, data["resources"]) if n]
        lines.append(f"| `{stack}` | {kind_of(stack)} | {len(owned)} | "
                     f"{', '.join(f'`{k}`' for k in sorted(data['outputs']))} |")
    return lines + [""]


def kind_of(stack: str) -> str:
    if "." not in stack:
        return "environment"
    return read_stack_config(stack).config.get("platform:kind", "")


# -- the packages ----------------------------------------------------------------------------


def source_packages(root: Path = PROJECT_ROOT) -> list[str]:
    """Every Python package of the platform (a folder with `__init__.py`, or a top-level folder
    holding such packages, like `tools/`), the test suite aside."""
    found = set()
    for init in root.glob("*/**/__init__.py"):
        parts = init.parent.relative_to(root).parts
        if parts[0] in NOT_DRAWN or "node_modules" in parts or parts[0].startswith("."):
            continue
        found.update(".".join(parts[:depth]) for depth in range(1, len(parts) + 1))
    return sorted(found)


def package_of(module: str, packages: Iterable[str]) -> Optional[str]:
    """The package a module belongs to: the longest that prefixes it."""
    found = [p for p in packages if module == p or module.startswith(p + ".")]
    return max(found, key=len) if found else None


def modules(root: Path = PROJECT_ROOT) -> dict[str, Path]:
    """Every module of the platform's packages: dotted name -> file."""
    found = {}
    for top in sorted({p.split(".")[0] for p in source_packages(root)}):
        for path in sorted((root / top).rglob("*.py")):
            if "node_modules" in path.parts or "bin" in path.parts:
                continue
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imports_of(path: Path, module: str) -> set[str]:
    """The modules `path` imports (relative imports resolved against `module`)."""
    tree = ast.parse(path.read_text())
    out = set()
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            out.add(base)
            out.update(f"{base}.{alias.name}" for alias in node.names)
    return out


def first_line(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    return " ".join(doc.split("\n\n")[0].split())


def package_imports(found: dict[str, Path],
                    packages: Iterable[str] | None = None) -> dict[tuple[str, str], set[str]]:
    """(importing package, imported package) -> the modules of the first that import the second."""
    packages = list(packages if packages is not None else source_packages())
    edges: dict[tuple[str, str], set[str]] = defaultdict(set)
    for module, path in found.items():
        source = package_of(module, packages)
        for imported in imports_of(path, module):
            target = package_of(imported, packages)
            if source and target and target != source and (imported in found or target == imported):
                edges[(source, target)].add(module)
    return edges


def drawn_packages(found: dict[str, Path]) -> list[str]:
    """The packages as drawn: a subpackage that imports its parent and is imported by it is one
    box with it (drawn apart, the two arrows would contradict "one way"), and so on up."""
    packages = source_packages()
    while True:
        edges = package_imports(found, packages)
        merged = [child for child in packages if "." in child
                  and (child, child.rsplit(".", 1)[0]) in edges
                  and (child.rsplit(".", 1)[0], child) in edges]
        if not merged:
            return packages
        packages = [p for p in packages if p not in merged]


def packages_section() -> list[str]:
    found = modules()
    packages = drawn_packages(found)
    edges = package_imports(found, packages)
    chart = Mermaid("LR")
    for package in packages:
        chart.node(package, f"{package}/".replace(".", "/"), "round")
    for (source, target), importers in sorted(edges.items()):
        chart.edge(source, target, f"{len(importers)} module{'s' if len(importers) > 1 else ''}")
    lines = ["## The packages and who imports whom", "",
             "An arrow is an import, from the source's `import` statements (the number of importing",
             "modules on it); a subpackage that imports its parent and is imported by it is drawn",
             "as one box with it, so every arrow points one way. Data flows one way: stack name →",
             "config model → component (`components/`) → resources, all in `infra/`, the program;",
             "`offline/` runs the program under mocks to prove it; `ops/` drives the engine from",
             "outside (its operator commands, CI planning and CI reporting over the shared",
             "`ops/engine/`), and `policy/` judges what the engine plans, importing nothing of the",
             "platform.", "", chart.text(), "",
             "| module | what it is for |", "| --- | --- |"]
    for module, path in found.items():
        lines.append(f"| `{module}` | {first_line(path).replace('|', '/')} |")
    return lines + [""]


# -- the request path ------------------------------------------------------------------------


def _urls(values: Iterable[tuple[str, Any]]) -> list[tuple[str, str]]:
    return sorted((name, value) for name, value in values
                  if isinstance(value, str) and re.match(r"^https?://", value))


def request_section(graphs: dict[str, dict[str, Any]]) -> list[str]:
    lines = ["## The request path", "",
             "Who calls whom, from the stack configs as rendered: a client reaches a Worker through",
             "its routes; the URLs a Worker's variables and a Go service's environment name are the",
             "calls it makes (to a route of another component when one matches the host). Inside the",
             "cluster a Go service admits only the callers its NetworkPolicy names (next section).", ""]
    for env in promotion_order():
        chart = Mermaid("LR")
        chart.node("client", "client", "round")
        routes: dict[str, str] = {}  # host -> route node key
        calls: list[tuple[str, str, str]] = []
        for stack, data in graphs.items():
            if stack.split(".")[-1] != env or "." not in stack:
                continue
            component = stack.split(".")[0]
            for resource in data["resources"]:
                inputs = resource["inputs"]
                if resource["type"].endswith(":WorkersRoute"):
                    pattern = inputs["pattern"]
                    chart.node(f"route/{pattern}", f"route {pattern}")
                    routes[pattern.split("/")[0]] = f"route/{pattern}"
                    calls.append(("client", f"route/{pattern}", "HTTPS"))
                    calls.append((f"route/{pattern}", stack, ""))
                if resource["type"].endswith(":WorkerVersion"):
                    for name, url in _urls((b["name"], b.get("text")) for b in inputs.get("bindings") or []):
                        calls.append((stack, url, name))
                if resource["type"] == "kubernetes:apps/v1:Deployment":
                    for container in inputs["spec"]["template"]["spec"]["containers"]:
                        for name, url in _urls((e["name"], e.get("value")) for e in container.get("env") or []):
                            calls.append((stack, url, name))
                if resource["type"] == "kubernetes:networking.k8s.io/v1:Ingress":
                    for rule in inputs["spec"].get("rules") or []:
                        chart.node(f"host/{rule['host']}", f"ingress {rule['host']}")
                        routes[rule["host"]] = f"host/{rule['host']}"
                        calls.append(("client", f"host/{rule['host']}", "HTTPS"))
                        calls.append((f"host/{rule['host']}", stack, ""))
            chart.node(stack, f"{component} ({kind_of(stack)})")
        for src, dst, label in sorted(calls):
            if dst.startswith("http"):
                host = urlparse(dst).hostname or dst
                dst = routes.get(host) or f"url/{host}"
                if dst.startswith("url/"):
                    chart.node(dst, f"{host} (outside the platform)")
            chart.edge(src, dst, label)
        lines += [f"### {env}", "", chart.text(), ""]
    return lines


# -- the network flows -----------------------------------------------------------------------


def _endpoint_label(name: str, environment: Environment) -> str:
    for endpoint in environment.endpoints:
        if str(endpoint) == name:
            labels = dict(endpoint.labels)
            if not endpoint.name.startswith("stand-in-"):
                return f"{endpoint.namespace}/{endpoint.name}"
            if labels == {NAME_LABEL: "undeclared"}:
                return f"{endpoint.namespace}: any other pod"
            if labels == ANY_POD:
                return f"{endpoint.namespace}: any pod"
            return f"{endpoint.namespace}: " + ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return name  # an address range


def _ports(connections: frozenset) -> str:
    return ", ".join(f"{protocol} {port}" for protocol, port in sorted(connections))


def network_section(renderer: Renderer) -> list[str]:
    lines = ["## Allowed network flows", "",
             "What network-config-analyzer computes from each environment's rendered NetworkPolicies",
             "(the environment's default-deny and DNS egress, each Go service's own policy): every",
             "connection allowed to or from a pod of the namespace, and nothing else. An address",
             "range is a block outside the cluster. `tests/test_network_connectivity.py` holds the",
             "same analysis equal to what the stack configs declare.", ""]
    for env in promotion_order():
        services = [(renderer, s, {}) for s in discover_stacks()
                    if s.endswith("." + env) and kind_of(s) == "go-service"]
        if not services:  # nothing but the environment's default-deny and DNS: no flow to draw
            continue
        environment = Environment(env, services)
        with tempfile.TemporaryDirectory() as folder:
            edges = environment.analysed(Path(folder))
        grouped: dict[tuple[str, frozenset], list[str]] = defaultdict(list)
        for (src, dst), connections in edges.items():
            grouped[(src, connections)].append(dst)
        chart = Mermaid("LR")
        rows = []
        for (src, connections), dsts in sorted(grouped.items(), key=lambda i: (i[0][0], sorted(i[1]))):
            pods = sorted(d for d in dsts if any(str(e) == d for e in environment.endpoints))
            blocks = sorted(d for d in dsts if d not in pods)
            chart.node(src, _endpoint_label(src, environment))
            for dst in pods:
                chart.node(dst, _endpoint_label(dst, environment))
                chart.edge(src, dst, _ports(connections))
                rows.append(f"| {_endpoint_label(src, environment)} | {_endpoint_label(dst, environment)} "
                            f"| {_ports(connections)} |")
            if blocks:
                key = "blocks:" + ",".join(blocks)
                chart.node(key, "addresses<br>" + "<br>".join(blocks), "db")
                chart.edge(src, key, _ports(connections))
                rows.append(f"| {_endpoint_label(src, environment)} | {', '.join(blocks)} "
                            f"| {_ports(connections)} |")
        lines += [f"### {env} (namespace `{environment.namespace}`)", "", chart.text(), "",
                  "| from | to | allowed |", "| --- | --- | --- |", *rows, ""]
    return lines


# -- the delivery path -----------------------------------------------------------------------


def _platform_commands(job: dict[str, Any]) -> list[str]:
    found = []
    for step in job.get("steps") or []:
        for match in re.finditer(r"\bplatform ([a-z][a-z-]+)", str(step.get("run") or "")):
            command = f"platform {match.group(1)}"
            if command not in found:
                found.append(command)
    return found


EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def readable(environment: Any) -> str:
    """A job's deployment environment as a reader says it: a workflow expression named by what
    it reads (`${{ inputs.environment }}` is "the input environment"), never printed raw."""
    if isinstance(environment, dict):
        environment = environment.get("name")
    if not environment:
        return ""

    def said(match: re.Match) -> str:
        words = re.sub(r"[^\w.-]+", " ", match[1]).split()
        source, _, name = (words[0] if words else "").partition(".")
        return {"inputs": f"the input {name}", "matrix": f"each {name} of the matrix",
                "github": f"the run's {name}", "needs": "a value of an earlier job"}.get(
            source, "a value chosen at run time")
    text = str(environment).strip()
    if EXPRESSION.fullmatch(text):
        return said(EXPRESSION.fullmatch(text))
    # Part of a name (`teardown-${{ matrix.env }}`): the name with a placeholder, then what fills it.
    # Upper case, not <env>: Markdown and Mermaid would read angle brackets as a tag.
    placeholders = [(re.sub(r"[^\w.-]+", " ", m[1]).split()[-1].rpartition(".")[2].upper(), said(m))
                    for m in EXPRESSION.finditer(text)]
    parts = iter(placeholders)
    name = EXPRESSION.sub(lambda m: next(parts)[0], text)
    return name + "".join(f" ({placeholder}: {meaning})" for placeholder, meaning in placeholders)


def delivery_section(folder: Path = WORKFLOWS) -> list[str]:
    chart = Mermaid("LR")
    order = {"pull_request": 0, "push": 1, "workflow_run": 2, "workflow_dispatch": 3, "schedule": 4}
    workflows = []
    for path in sorted(folder.glob("*.yml")):
        document = yaml.safe_load(path.read_text())
        on = document.get(True) or document.get("on") or {}
        triggers = sorted(on if isinstance(on, (dict, list)) else [on], key=lambda t: order.get(t, 9))
        workflows.append((order.get(triggers[0], 9), path.name, triggers, document))
    rows = []
    for _, name, triggers, document in sorted(workflows):
        for trigger in triggers:
            chart.node(f"on/{trigger}", TRIGGERS.get(trigger, trigger), "stadium")
        chart.subgraph(name, name)
        for job_id, job in document["jobs"].items():
            name_text = str(job.get("name") or "").split("$")[0].strip()
            label = job_id if name_text in ("", job_id) else f"{job_id}: {name_text}"
            environment = readable(job.get("environment"))
            commands = _platform_commands(job)
            text = label + (f"<br>environment: {environment}" if environment else "") + \
                "".join(f"<br>{c}" for c in commands)
            chart.node(f"{name}/{job_id}", text, indent=2)
            rows.append(f"| `{name}` | {', '.join(TRIGGERS.get(t, t) for t in triggers)} | `{job_id}` | "
                        f"{environment or ''} | {', '.join(f'`{c}`' for c in commands)} |")
        chart.end()
        for job_id, job in document["jobs"].items():
            needs = job.get("needs") or []
            for need in [needs] if isinstance(needs, str) else needs:
                chart.edge(f"{name}/{need}", f"{name}/{job_id}")
            if not needs:
                for trigger in triggers:
                    chart.edge(f"on/{trigger}", f"{name}/{job_id}")
    return ["## The delivery path", "",
            "From the workflows in `.github/workflows/`: what starts each, its jobs, what each job",
            "waits for, the deployment environment it runs in (its approvals and secrets), and the",
            "`platform` commands it runs. A pull request is previewed stack by stack (the affected",
            "stacks, environments first); a push to main deploys staging, then production behind the",
            "`production` environment's reviewers.", "", chart.text(), "",
            "| workflow | on | job | environment | runs |", "| --- | --- | --- | --- | --- |",
            *rows, ""]


# -- the document ----------------------------------------------------------------------------


def generate(renderer: Optional[Renderer] = None) -> str:
    """ARCHITECTURE.md's text (`renderer`: one that may already hold the stacks' runs)."""
    renderer = renderer or Renderer()
    graphs = {stack: graph(renderer.run(stack)) for stack in discover_stacks()}
    lines = ["# Architecture", "",
             "Generated from the code by `python -m offline.architecture`; `tests/test_docs_architecture.py`",
             "fails when this file is not what the code gives. Do not edit it by hand: change the",
             "code or the stack files, then run the generator.", ""]
    lines += stacks_section(graphs)
    lines += packages_section()
    lines += request_section(graphs)
    lines += network_section(renderer)
    lines += delivery_section()
    return "\n".join(lines).rstrip() + "\n"


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m offline.architecture", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when the committed ARCHITECTURE.md differs from what the code gives")
    args = parser.parse_args(argv)
    try:
        text = generate()
    except (PlatformError, AnalyserMissing) as error:  # a prerequisite not built: its make target
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        shutdown()
    if args.check:
        if OUT.read_text() != text:
            print(f"{OUT.name} is not what the code gives: run `python -m offline.architecture`", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT.relative_to(PROJECT_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
