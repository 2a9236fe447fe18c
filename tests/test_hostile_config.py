"""Hostile config: every stack file of the repository and of the minimal fixture project, mutated (wrong types, missing and unknown
keys, out-of-range and huge numbers, hostile strings in names, routes, labels and paths, YAML
anchors, duplicate keys and tags), either renders a valid graph or stops with one clear config
error naming the stack and listing its problems: never a traceback, never a partial render.

The property tests draw a bounded, reproducible set of examples per stack (derandomized), so
`make test` stays fast and CI sees the same cases every run."""
from __future__ import annotations

import copy
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.errors import ConfigError, PlatformError
from infra.project import PROJECT_ROOT
from infra.stack_files import read_stack_config, stack_file
from offline.mock_engine import STACK_REFERENCE, StackRun, run_stack
from offline.render import Renderer, object_files, write_stack

from tests.conftest import STACKS, Stack

EXAMPLES_PER_STACK = 12
KUBERNETES_VERSION = (PROJECT_ROOT / "tools" / "kubernetes-version").read_text().strip()

HOSTILE_STRINGS = [
    "", " ", "../../etc/passwd", "/etc/shadow", "..", "a/../../b", "C:\\Windows", "~root",
    "\x00", "nul\x00byte", "\x1b[2J\x1b[31mred", "line\nbreak", "tab\there", "\u202eevil",
    "é", "雪", "🙂", "$(rm -rf /)", "`id`", "${HOME}", "%s%s%n", "' OR 1=1 --", "<script>",
    "*", "*.*", "ai.example.com/../*", "https://evil.example.org/", "-leading-dash", "UPPER",
    "a" * 64, "a" * 254, "x" * 10_000, "0" * 64, "sha256:" + "f" * 64, "null", "true", "1e999",
    "[secret]", "platform:kind", "kubernetes.io/metadata.name", "app.kubernetes.io/name",
]
SCALARS = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([0, -1, 1023, 1024, 65535, 65536, 2**31, 2**63, 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(HOSTILE_STRINGS),
    st.text(max_size=40),
)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.one_of(st.sampled_from(HOSTILE_STRINGS), st.text(max_size=12)), inner,
                    max_size=4)), max_leaves=12)


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place in the config tree a mutation can hit."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths(child, prefix + (key,))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += paths(child, prefix + (index,))
    return found


@st.composite
def mutated(draw, config: dict) -> dict:
    """The config with one to three mutations: replace a value, delete a key, add a key."""
    config = copy.deepcopy(config)
    for _ in range(draw(st.integers(1, 3))):
        places = paths(config)
        where = draw(st.sampled_from(places)) if places else ()
        parent = config
        for part in where[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace" and where:
            parent[where[-1]] = draw(VALUES)
        elif action == "delete" and where and isinstance(parent, dict):
            del parent[where[-1]]
        else:
            target = parent[where[-1]] if where else config
            if isinstance(target, dict):
                key = draw(st.one_of(st.sampled_from(HOSTILE_STRINGS), st.text(max_size=12),
                                     st.just("platform:") | st.just("platform:extra")))
                target[key] = draw(VALUES)
            elif isinstance(target, list):
                target.append(draw(VALUES))
    return config


class Project:
    """A copy of a project's stack files in a scratch folder, one stack file rewritten."""

    def __init__(self, root: Path, source: Path = PROJECT_ROOT):
        self.root, self.source = root, source
        for path in [source / "Pulumi.yaml", *source.glob("Pulumi.*.yaml")]:
            shutil.copy2(path, root / path.name)

    def write(self, stack: str, text: str) -> None:
        stack_file(stack, self.root).write_text(text)

    def restore(self, stack: str) -> None:
        shutil.copy2(stack_file(stack, self.source), stack_file(stack, self.root))


def outcome(project: Project, stack: str,
            environments: Renderer) -> tuple[StackRun, PlatformError | None]:
    """Run the stack from the scratch project (its environment as the repository has it): what
    it registered, and its error if any. Any other exception escapes: it is the traceback an
    operator would have seen."""
    attempt = StackRun(stack=stack)
    try:
        config = read_stack_config(stack, project.root)
        run_stack(stack, config, resolve_stack=environments._outputs_of, run=attempt)
    except PlatformError as error:
        return attempt, error
    return attempt, None


def assert_renders_or_stops_cleanly(run: StackRun, error: PlatformError | None,
                                    stack: str) -> None:
    if error is not None:
        message = str(error)
        assert message.startswith(f"stack '{stack}': "), message
        assert "Traceback" not in message and "pydantic" not in message, message
        assert message.isprintable() or set(message) - set(filter(str.isprintable, message)) <= {"\n"}
        if isinstance(error, ConfigError):
            lines = message.splitlines()
            assert len(lines) == 1 + len(error.problems) and error.problems, message
            assert all(re.match(r"  - platform:.*: \S", line) for line in lines[1:]), message
        registered = {r.type for r in run.resources}
        assert registered <= {STACK_REFERENCE}, f"registered before refusing: {registered}"
        return
    # A valid graph: every object renders, and every Kubernetes manifest passes its schema.
    with tempfile.TemporaryDirectory() as out:
        write_stack(run, Path(out))
    for name, text in object_files(run).items():
        document = yaml.safe_load(text) if name.endswith(".yaml") else None
        # The Prometheus operator's kinds have no schema here: their CRDs judge them
        # (tests/test_service_monitoring.py).
        if document and not document["apiVersion"].startswith("monitoring.coreos.com/"):
            kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


@pytest.fixture(scope="module")
def projects(tmp_path_factory) -> dict[Path, Project]:
    """A scratch copy of each project, by the project's root."""
    return {root: Project(tmp_path_factory.mktemp(f"hostile-{root.name}"), root)
            for root in {s.root for s in STACKS}}


@pytest.fixture(scope="module")
def project(projects) -> Project:
    return projects[PROJECT_ROOT]


@pytest.mark.parametrize("target", STACKS, ids=str)
def test_a_mutated_stack_file_renders_or_stops_with_one_clear_error(projects, renderers,
                                                                   target: Stack):
    # The mutated stack reads its environment as that project has it.
    project, stack = projects[target.root], target.name
    original = yaml.safe_load(target.file.read_text())

    @settings(max_examples=EXAMPLES_PER_STACK, derandomize=True, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(config=mutated(original["config"]))
    def check(config):
        project.write(stack, yaml.safe_dump({**original, "config": config}, allow_unicode=True))
        assert_renders_or_stops_cleanly(*outcome(project, stack, renderers.of(target.root)),
                                        stack)

    try:
        check()
    finally:
        project.restore(stack)


def _edit(stack: str, old: str, new: str) -> str:
    text = stack_file(stack).read_text()
    assert old in text, f"{stack}: no {old!r} to edit"
    return text.replace(old, new, 1)


YAML_ODDITIES = {
    "duplicate_keys_are_refused_as_the_cli_refuses_them": (
        "ai-worker.staging", "  platform:ai_binding: AI\n",
        "  platform:ai_binding: AI\n  platform:ai_binding: OTHER\n",
        "column 3): the key 'platform:ai_binding' appears twice"),
    "an_unquoted_date_is_the_text_the_cli_passes": (
        "ai-worker.staging", '    GATEWAY_TIMEOUT_MS: "3000"\n',
        '    GATEWAY_TIMEOUT_MS: "3000"\n    RELEASED_ON: 2025-09-01\n', None),
    "anchors_and_aliases_are_plain_yaml": (
        "api-gateway.staging", "    liveness_path: /healthz\n",
        "    liveness_path: &health /healthz\n", None),
    "python_tags_are_never_constructed": (
        "ai-worker.staging", "  platform:ai_binding: AI\n",
        "  platform:ai_binding: !!python/object/apply:os.system [echo]\n",
        "could not determine a constructor for the tag"),
    "binary_values_are_refused": (
        "ai-worker.staging", "  platform:ai_binding: AI\n",
        "  platform:ai_binding: !!binary QUk=\n", "has no meaning in a stack file"),
    "unknown_tags_are_refused": (
        "ai-worker.staging", "  platform:ai_binding: AI\n", "  platform:ai_binding: !env AI\n",
        "could not determine a constructor for the tag '!env'"),
    "keys_are_strings": (
        "ai-worker.staging", "  platform:ai_binding: AI\n", "  platform:ai_binding: AI\n  7: x\n",
        "the key 7 is not a string"),
    "an_alias_bomb_is_refused_before_it_expands": (
        "ai-worker.staging", "  platform:ai_binding: AI\n", "  platform:ai_binding: AI\n" + "".join(
            f"  platform:l{i}: &l{i} [{', '.join([f'*l{i - 1}' if i else 'x'] * 10)}]\n"
            for i in range(7)),
        "holds more than 100000 values once its aliases are expanded"),
    "deep_nesting_is_refused": (
        "ai-worker.staging", "  platform:ai_binding: AI\n",
        "  platform:ai_binding: " + "[" * 2000 + "]" * 2000 + "\n", "nests deeper than 32 levels"),
    "control_characters_are_escaped_in_the_message": (
        "ai-worker.staging", "  platform:ai_binding: AI\n",
        '  platform:ai_binding: "\\e[2J\\0"\n', "'\\x1b[2J\\x00' is not a valid binding name"),
}


@pytest.mark.parametrize("stack, old, new, expected", YAML_ODDITIES.values(),
                         ids=YAML_ODDITIES.keys())
def test_yaml_oddities(project, repo_renderer, stack, old, new, expected):
    project.write(stack, _edit(stack, old, new))
    try:
        run, error = outcome(project, stack, repo_renderer)
        assert_renders_or_stops_cleanly(run, error, stack)
    finally:
        project.restore(stack)
    if expected is None:
        assert error is None, str(error)
        assert run.resources
    else:
        assert error is not None and expected in str(error), str(error)
