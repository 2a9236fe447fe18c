"""What `pulumi up` runs uses only the public API of the SDKs it builds on (Pulumi, pydantic),
so an SDK upgrade cannot break a deployment through a renamed internal: no name starting with
`_`, no pydantic `__pydantic_*__` metadata, no module its SDK documents as internal (its
docstring says so, or says to use something else instead). The one exception is
infra/config/sdk.py, the adapter whose own tests fail loudly when those internals change. The
mock engine (render, tests) may use internals; tests/test_mock_engine.py guards each one."""
from __future__ import annotations

import ast
import importlib.util
import re
from functools import cache
from pathlib import Path

from infra.program import BUILDERS
from infra.project import PROJECT_ROOT

OUR_PACKAGES = ("infra", "components", "offline", "ops", "policy", "tools")
SDKS = ("pulumi", "pydantic")
ADAPTER = "infra.config.sdk"
# What an SDK module's docstring says when the module is not for its users.
DOCUMENTED_INTERNAL = re.compile(r"\binternal\b|\bplease use \S+ instead", re.IGNORECASE)
ENTRY_POINT = PROJECT_ROOT / "__main__.py"


def module_file(module: str) -> Path:
    path = PROJECT_ROOT.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def imported_modules(path: Path) -> set[str]:
    """Our modules `path` imports, statically or by `importlib.import_module("...")`."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant)):
            names = [node.args[0].value]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "run_module":
            names = [node.args[0].value] if isinstance(node.args[0], ast.Constant) else []
        for name in names:
            parts = name.split(".")
            if parts[0] in OUR_PACKAGES:
                for depth in range(1, len(parts) + 1):  # a package runs its __init__ first
                    candidate = ".".join(parts[:depth])
                    if module_file(candidate).is_file():
                        found.add(candidate)
    return found


def deploy_path() -> dict[str, Path]:
    """Every module of ours the CLI's entry point can run: from the root __main__.py, through
    `infra` (run as a module), to the builder each stack kind imports."""
    pending = {"infra", "infra.__main__", *BUILDERS.values()} | imported_modules(ENTRY_POINT)
    seen: dict[str, Path] = {}
    while pending:
        module = pending.pop()
        if module in seen:
            continue
        seen[module] = module_file(module)
        pending |= imported_modules(seen[module]) - set(seen)
    return seen


def is_sdk(module: str) -> bool:
    return module.split(".")[0].startswith(SDKS)


@cache
def documented_internal(module: str) -> bool:
    """Whether an installed SDK module's docstring says it is internal (read, not imported)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return False
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return False
    docstring = ast.get_docstring(ast.parse(Path(spec.origin).read_text())) or ""
    return bool(DOCUMENTED_INTERNAL.search(docstring))


def internal_sdk_uses(path: Path) -> list[str]:
    """Internal names taken from an SDK module: a name starting with `_` imported or read as an
    attribute of a name bound to an SDK module, a module documented as internal imported, and
    pydantic's `__pydantic_*__` metadata read from anything."""
    tree = ast.parse(path.read_text())
    sdk_names: set[str] = set()
    uses = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if is_sdk(alias.name):
                    sdk_names.add((alias.asname or alias.name).split(".")[0])
                    uses += [f"import {alias.name}" for part in alias.name.split(".")
                             if part.startswith("_")]
                    if documented_internal(alias.name):
                        uses.append(f"import {alias.name} (documented internal)")
        elif isinstance(node, ast.ImportFrom) and is_sdk(node.module or ""):
            for part in node.module.split("."):
                if part.startswith("_"):
                    uses.append(f"from {node.module} import ...")
            if documented_internal(node.module):
                uses.append(f"from {node.module} import ... (documented internal)")
            for alias in node.names:
                if alias.name.startswith("_"):
                    uses.append(f"from {node.module} import {alias.name}")
                elif documented_internal(f"{node.module}.{alias.name}"):
                    uses.append(f"from {node.module} import {alias.name} (documented internal)")
                sdk_names.add(alias.asname or alias.name)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("__pydantic_"):
            uses.append(f"{ast.unparse(node)} (line {node.lineno})")
        elif (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                and not node.attr.startswith("__")):
            root = node.value
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id in sdk_names:
                uses.append(f"{ast.unparse(node)} (line {node.lineno})")
    return uses


def test_the_deploy_path_covers_the_program_components_and_every_builder():
    modules = deploy_path()
    assert {"infra.program", "infra.environment_ref", "infra.config.loader",
            "components.go_service", "components.cloudflare_worker",
            "components.environment"} <= set(modules)
    assert set(BUILDERS.values()) <= set(modules)


def test_the_program_package_holds_only_what_pulumi_up_runs():
    # The offline proof (mock engine, render, docs, connectivity, benchmarks) lives in `offline`.
    in_package = {".".join(path.relative_to(PROJECT_ROOT).with_suffix("").parts).removesuffix(
        ".__init__") for path in (PROJECT_ROOT / "infra").rglob("*.py")}
    unreachable = in_package - set(deploy_path())
    assert unreachable == set(), f"modules in infra/ that `pulumi up` never runs: {unreachable}"


def test_the_offline_tools_are_not_on_the_deploy_path():
    outside = {m for m in deploy_path() if m.split(".")[0] not in ("infra", "components")}
    assert outside == set()


def test_nothing_on_the_deploy_path_but_the_adapter_uses_an_internal_sdk_name():
    found = {module: uses for module, path in deploy_path().items()
             if module != ADAPTER and (uses := internal_sdk_uses(path))}
    assert found == {}


def test_the_adapter_uses_only_the_internals_its_tests_pin():
    # A new internal in infra/config/sdk.py needs a test in tests/test_config_sdk.py first.
    assert ADAPTER in deploy_path()
    assert [use.split(" (line")[0] for use in internal_sdk_uses(module_file(ADAPTER))] == [
        "from pulumi.runtime import config (documented internal)",
        "model.__pydantic_decorators__"]


def test_the_check_sees_internal_names_in_every_form(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import pulumi\n"
        "from pulumi.runtime import rpc, settings as s\n"
        "from pulumi.runtime.sync_await import _sync_await\n"
        "from pulumi._utils import x\n"
        "rpc._special_sig_key\n"
        "s.SETTINGS._private\n"
        "pulumi.runtime._x\n"
        "pulumi.Output.__name__\n"
        "other._fine\n"
        "from pulumi.runtime import config\n"
        "import pulumi.runtime.config\n"
        "Model.__pydantic_decorators__\n"
        "from pydantic._internal import _decorators\n")
    assert internal_sdk_uses(sample) == [
        "from pulumi.runtime.sync_await import _sync_await", "from pulumi._utils import ...",
        "from pulumi.runtime import config (documented internal)",
        "import pulumi.runtime.config (documented internal)",
        "from pydantic._internal import ...", "from pydantic._internal import _decorators",
        "rpc._special_sig_key (line 5)", "s.SETTINGS._private (line 6)",
        "pulumi.runtime._x (line 7)", "Model.__pydantic_decorators__ (line 12)"]
