"""What `pulumi up` runs uses only the Pulumi SDK's public API, so an SDK upgrade cannot break
a deployment through a renamed internal. The mock engine (render, tests) may use internals;
tests/test_mock_engine.py guards each one."""
from __future__ import annotations

import ast
from pathlib import Path

from infra.program import BUILDERS
from infra.stacks import PROJECT_ROOT

OUR_PACKAGES = ("infra", "components")
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


def private_sdk_uses(path: Path) -> list[str]:
    """Names starting with `_` taken from a `pulumi*` module: imported, or read as an attribute
    of a name bound to one."""
    tree = ast.parse(path.read_text())
    sdk_names: set[str] = set()
    uses = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0].startswith("pulumi"):
                    sdk_names.add((alias.asname or alias.name).split(".")[0])
                    uses += [f"import {alias.name}" for part in alias.name.split(".")
                             if part.startswith("_")]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pulumi"):
            for part in node.module.split("."):
                if part.startswith("_"):
                    uses.append(f"from {node.module} import ...")
            for alias in node.names:
                if alias.name.startswith("_"):
                    uses.append(f"from {node.module} import {alias.name}")
                sdk_names.add(alias.asname or alias.name)
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
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


def test_the_offline_tools_are_not_on_the_deploy_path():
    assert not {"infra.mock_engine", "infra.render", "infra.bench"} & set(deploy_path())


def test_nothing_on_the_deploy_path_uses_a_private_sdk_name():
    found = {module: uses for module, path in deploy_path().items()
             if (uses := private_sdk_uses(path))}
    assert found == {}


def test_the_check_sees_private_names_in_every_form(tmp_path):
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
        "other._fine\n")
    assert private_sdk_uses(sample) == [
        "from pulumi.runtime.sync_await import _sync_await", "from pulumi._utils import ...",
        "rpc._special_sig_key (line 5)", "s.SETTINGS._private (line 6)",
        "pulumi.runtime._x (line 7)"]
