"""The workloads' types and validation rules are generated from contract/openapi.yaml
(contract/generate.py: oapi-codegen for Go, openapi-typescript for TypeScript) and committed;
a contract change without regenerating them fails here."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GENERATOR = REPO / "contract" / "generate.py"


def load_generator():
    spec = importlib.util.spec_from_file_location("contract_generate", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_generated_types_and_rules_are_fresh():
    result = subprocess.run([sys.executable, str(GENERATOR), "--check"], capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_generated_file_that_differs_or_is_missing_is_stale(tmp_path):
    generator = load_generator()
    committed = {name: tmp_path / "committed" / name for name in ("same", "changed", "missing")}
    fresh = {path: tmp_path / "fresh" / name for name, path in committed.items()}
    for path in [*committed.values(), *fresh.values()]:
        path.parent.mkdir(exist_ok=True)
    for name in ("same", "changed", "missing"):
        fresh[committed[name]].write_text("generated\n")
    committed["same"].write_text("generated\n")
    committed["changed"].write_text("edited by hand\n")
    assert generator.stale(list(committed.values()), fresh) == [committed["changed"], committed["missing"]]


def test_the_rules_cover_every_pattern_and_length_bound_of_the_contract():
    generator = load_generator()
    import yaml
    rules = dict(generator.rules(yaml.safe_load((REPO / "contract" / "openapi.yaml").read_text())))
    assert rules["ModuleNamePattern"] == "^[a-z][a-z0-9-]{0,62}$"
    assert rules["RequestIdPattern"] == "^[A-Za-z0-9._:-]{1,128}$"
    assert rules["CompletionRequestPromptMaxLength"] == 8000
    go = (REPO / "apps" / "api-gateway" / "contract_rules.gen.go").read_text()
    ts = (REPO / "workers" / "ai-worker" / "src" / "contract-rules.gen.ts").read_text()
    for name in rules:
        assert f"\t{name} " in go and f"export const {name} = " in ts, name
